// Package runtime runs a configured gateway. It opens the listeners
// (client, TLS, HTTP/3 and admin), builds the backends and the gateway from
// a config.Config, applies reloads to them, owns the access log's sink and
// the stats page's history, and shuts everything down in order. Command
// main parses flags and signals and calls New, Run, Reload and Shutdown.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
)

// Options are what New takes besides the configuration.
type Options struct {
	// Logger receives the gateway's log. Nil discards it.
	Logger *slog.Logger
	// Load reads the configuration again, for Reload and POST /reload.
	// Nil in quick mode: a reload is refused.
	Load func() (*config.Config, error)
}

// A Runtime is one gateway, from its listeners to its backends. New opens
// it, Run serves, Shutdown drains and closes; Reload may be called at any
// time in between, from any goroutine.
type Runtime struct {
	log       *slog.Logger
	live      *live // backends, gateway, certificates, access log
	edge      *edge // client-facing listeners and servers
	adminLn   net.Listener
	admin     *http.Server
	hist      *history    // the stats page's sampler, started by Run
	listening atomic.Bool // /readyz: true from Run until Shutdown

	// errc receives each listener goroutine's result; one slot per
	// goroutine, so none blocks after Run has returned.
	errc    chan error
	serving sync.WaitGroup // the listener goroutines; Shutdown waits

	mu    sync.Mutex // guards state
	state runState
}

// runState is where a Runtime is in its life.
type runState int

const (
	stateOpen     runState = iota // New returned, Run not called
	stateRunning                  // Run called
	stateShutDown                 // Shutdown called
)

// errShutDown answers Run after Shutdown, and a second Shutdown.
var errShutDown = errors.New("runtime: already shut down")

// New opens the listeners and starts the backends cfg describes; it does
// not serve yet. On error everything opened is closed again.
func New(cfg *config.Config, opts Options) (*Runtime, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	lv := newLive(reg, log, opts.Load)
	fail := func(err error) (*Runtime, error) {
		lv.close()
		return nil, err
	}
	udp, tlsAddr, altSvc, err := listenUDP(cfg, log)
	if err != nil {
		return fail(err)
	}
	if err := lv.start(cfg, altSvc); err != nil {
		if udp != nil {
			udp.Close()
		}
		tlsAddr.close()
		return fail(err)
	}
	e, err := openEdge(cfg, lv.g, lv.certs, udp, tlsAddr)
	if err != nil {
		return fail(err)
	}
	adminLn, err := net.Listen("tcp", cfg.Admin)
	if err != nil {
		e.close()
		return fail(fmt.Errorf("admin listen %s: %w", cfg.Admin, err))
	}
	r := &Runtime{
		log:     log,
		live:    lv,
		edge:    e,
		adminLn: lv.gm.Listeners().Watch(adminLn, "admin", log),
		hist:    newHistory(historyEvery, historyLen, newSampler(lv).fill),
		errc:    make(chan error, 4),
	}
	r.admin = &http.Server{
		Handler:           adminHandler(reg, lv, r.hist, &r.listening, cfg.Pprof),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	return r, nil
}

// Run serves every listener until ctx is done, a listener fails, whose
// error it returns, or Shutdown closes them. It does not drain: the caller
// calls Shutdown next, whatever Run returned.
func (r *Runtime) Run(ctx context.Context) error {
	r.mu.Lock()
	if was := r.state; was != stateOpen {
		r.mu.Unlock()
		if was == stateShutDown {
			return errShutDown
		}
		return errors.New("runtime: Run called twice")
	}
	r.state = stateRunning
	r.hist.start()
	r.edge.serve(&r.serving, r.errc)
	r.serving.Go(func() {
		err := r.admin.Serve(r.adminLn)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		r.errc <- err
	})
	r.mu.Unlock()
	r.listening.Store(true)
	r.log.Info("sluice listening", append(r.edge.logAttrs(), "admin", r.adminLn.Addr().String(), "backends", r.live.names())...)
	select {
	case <-ctx.Done():
		return nil
	case err := <-r.errc:
		return err
	}
}

// Reload reads the configuration again (Options.Load) and applies it, or
// keeps the running one and says why; see live.reload. SIGHUP and POST
// /reload both come here, one at a time.
func (r *Runtime) Reload() error { return r.live.reload() }

// Shutdown drains the gateway within shutdown_grace, or until ctx is done
// if that comes first, then closes everything:
//
//   - /readyz turns 503 at once so load balancers stop sending new clients;
//   - the client listeners close, idle connections close, HTTP/2 and
//     HTTP/3 clients get GOAWAY, HTTP/1.1 requests still running are
//     answered with "Connection: close", and Shutdown waits for them;
//   - protocol switches (WebSocket), which the servers do not see, get
//     what is left of the grace period;
//   - the admin listener, which kept serving /readyz and /metrics, closes;
//   - the backends, kept open until then so in-flight requests could
//     finish, close last, with the access log.
//
// The error says what was cut at the end of the grace period; it is
// logged too.
func (r *Runtime) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	was := r.state
	r.state = stateShutDown
	r.mu.Unlock()
	if was == stateShutDown {
		return errShutDown
	}
	r.listening.Store(false)
	grace := r.live.config().ShutdownGrace
	r.log.Info("shutting down", "grace", grace)
	sctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	var errs []error
	if was == stateRunning {
		if err := r.edge.shutdown(sctx); err != nil {
			r.log.Warn("client connections cut at end of grace period", "err", err)
			errs = append(errs, err)
		}
	} else {
		r.edge.close()
		r.adminLn.Close()
	}
	if err := r.live.g.CloseTunnels(sctx); err != nil {
		r.log.Warn("tunnels cut at end of grace period", "err", err)
		errs = append(errs, err)
	}
	r.admin.Close()
	r.serving.Wait()
	if was == stateRunning {
		r.hist.close()
	}
	r.live.close()
	return errors.Join(errs...)
}
