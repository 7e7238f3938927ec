package main

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
	"github.com/sluice-gw/sluice/upstream"
)

// serve runs the gateway described by cfg until ctx is cancelled. reload,
// when not nil, reads the configuration again for SIGHUP and POST /reload.
func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger, reload func() (*config.Config, error)) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rt := newLive(reg, logger, reload)
	defer rt.close()

	udp, tlsAddr, altSvc, err := listenUDP(cfg, logger)
	if err != nil {
		return err
	}
	if err := rt.start(cfg, altSvc); err != nil {
		if udp != nil {
			udp.Close()
		}
		return err
	}
	e, err := openEdge(cfg, rt.g, rt.certs, udp, tlsAddr)
	if err != nil {
		return err
	}
	adminLn, err := net.Listen("tcp", cfg.Admin)
	if err != nil {
		e.close()
		return fmt.Errorf("admin listen %s: %w", cfg.Admin, err)
	}
	adminLn = rt.gm.Listeners().Watch(adminLn, "admin", logger)

	// The stats page's history: one sampler goroutine, stopped when
	// serve returns.
	hist := newHistory(historyEvery, historyLen, newSampler(rt).fill)
	hist.start()
	defer hist.close()

	var listening atomic.Bool
	admin := &http.Server{
		Handler:           adminHandler(reg, rt, hist, &listening, cfg.Pprof),
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
	logger.Info("sluice listening", append(e.logAttrs(), "admin", adminLn.Addr().String(), "backends", rt.names())...)

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
			rt.reload()
		}
	}
	// Draining: /readyz turns 503 at once so load balancers stop sending
	// new clients; shutdown closes the listeners and idle connections,
	// sends GOAWAY to HTTP/2 and HTTP/3 clients, answers HTTP/1.1 requests
	// still running with "Connection: close", and waits for them. The admin listener keeps
	// serving /readyz and /metrics until then, and the backends stay open
	// (the deferred close) so that in-flight requests can finish.
	listening.Store(false)
	grace := rt.config().ShutdownGrace
	logger.Info("shutting down", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := e.shutdown(sctx); err != nil {
		logger.Warn("client connections cut at end of grace period", "err", err)
	}
	// Protocol switches (WebSocket) are hijacked connections, which
	// Shutdown does not see: they get what is left of the grace period.
	if err := rt.g.CloseTunnels(sctx); err != nil {
		logger.Warn("tunnels cut at end of grace period", "err", err)
	}
	admin.Close()
	return runErr
}

// backendConfig maps the file's backend section to the upstream package's;
// grace (shutdown_grace) also bounds how long a server removed by a reload
// may finish its requests.
func backendConfig(name string, b config.Backend, grace time.Duration) upstream.Config {
	servers := make([]upstream.ServerConfig, len(b.Servers))
	for i, s := range b.Servers {
		servers[i] = upstream.ServerConfig{Address: s.Address, Weight: s.Weight, Backup: s.Backup}
	}
	return upstream.Config{
		Name:          name,
		Protocol:      b.Protocol,
		Balance:       b.Balance,
		ProbeInterval: b.ProbeInterval,
		Servers:       servers,
		Discovery: upstream.DiscoveryConfig{Name: b.Discovery.DNS, Type: b.Discovery.Type, Port: b.Discovery.Port,
			Interval: b.Discovery.Interval, Resolver: b.Discovery.Resolver},
		H2C: upstream.H2CConfig{
			ConnsPerServer: b.H2C.ConnsPerServer, MaxStreamsPerConn: b.H2C.MaxStreamsPerConn,
			PingInterval: b.H2C.PingInterval, PingTimeout: b.H2C.PingTimeout,
		},
		H1:                    upstream.H1Config{ConnsPerServer: b.H1.ConnsPerServer, IdleTimeout: b.H1.IdleTimeout, MaxTunnels: b.H1.MaxTunnels},
		Queue:                 upstream.QueueConfig{MaxPending: b.Queue.MaxPending, Timeout: b.Queue.Timeout},
		ConnectTimeout:        b.Timeouts.Connect,
		ResponseHeaderTimeout: b.Timeouts.ResponseHeader,
		IdleTimeout:           b.Timeouts.Idle,
		TotalTimeout:          b.Timeouts.Total,
		DrainTimeout:          grace,
		Health:                upstream.HealthConfig(b.Health),
		Retries:               b.Retries,
		RetryBodyLimit:        int64(b.RetryBodyLimit),
		IdempotentMethods:     b.IdempotentMethods,
		Passive: upstream.PassiveConfig{
			ConsecutiveFailures: b.Passive.ConsecutiveFailures, EjectFor: b.Passive.EjectFor,
			MaxEjectFor: b.Passive.MaxEjectFor, MaxEjectedPercent: b.Passive.MaxEjectedPercent,
			ProbeInterval: b.Passive.ProbeInterval,
		},
	}
}
