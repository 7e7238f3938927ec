package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
)

// Serve runs the gateway described by cfg until ctx is cancelled. reload,
// when not nil, reads the configuration again for SIGHUP and POST /reload.
func Serve(ctx context.Context, cfg *config.Config, logger *slog.Logger, reload func() (*config.Config, error)) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	lv := newLive(reg, logger, reload)
	defer lv.close()

	udp, tlsAddr, altSvc, err := listenUDP(cfg, logger)
	if err != nil {
		return err
	}
	if err := lv.start(cfg, altSvc); err != nil {
		if udp != nil {
			udp.Close()
		}
		return err
	}
	e, err := openEdge(cfg, lv.g, lv.certs, udp, tlsAddr)
	if err != nil {
		return err
	}
	adminLn, err := net.Listen("tcp", cfg.Admin)
	if err != nil {
		e.close()
		return fmt.Errorf("admin listen %s: %w", cfg.Admin, err)
	}
	adminLn = lv.gm.Listeners().Watch(adminLn, "admin", logger)

	// The stats page's history: one sampler goroutine, stopped when
	// serve returns.
	hist := newHistory(historyEvery, historyLen, newSampler(lv).fill)
	hist.start()
	defer hist.close()

	var listening atomic.Bool
	admin := &http.Server{
		Handler:           adminHandler(reg, lv, hist, &listening, cfg.Pprof),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	// One slot per goroutine, so none blocks sending after serve returns.
	errc := make(chan error, 4)
	e.serve(errc)
	go func() {
		err := admin.Serve(adminLn)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	listening.Store(true)
	logger.Info("sluice listening", append(e.logAttrs(), "admin", adminLn.Addr().String(), "backends", lv.names())...)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var runErr error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case runErr = <-errc:
			break wait
		case <-hup:
			// Errors are logged and counted by reload itself.
			lv.reload()
		}
	}
	// Draining: /readyz turns 503 at once so load balancers stop sending
	// new clients; shutdown closes the listeners and idle connections,
	// sends GOAWAY to HTTP/2 and HTTP/3 clients, answers HTTP/1.1 requests
	// still running with "Connection: close", and waits for them. The admin listener keeps
	// serving /readyz and /metrics until then, and the backends stay open
	// (the deferred close) so that in-flight requests can finish.
	listening.Store(false)
	grace := lv.config().ShutdownGrace
	logger.Info("shutting down", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := e.shutdown(sctx); err != nil {
		logger.Warn("client connections cut at end of grace period", "err", err)
	}
	// Protocol switches (WebSocket) are hijacked connections, which
	// Shutdown does not see: they get what is left of the grace period.
	if err := lv.g.CloseTunnels(sctx); err != nil {
		logger.Warn("tunnels cut at end of grace period", "err", err)
	}
	admin.Close()
	return runErr
}
