package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/upstream"
)

// serve runs the gateway described by cfg until ctx is cancelled.
func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	um := upstream.NewMetrics(reg)
	gm := gateway.NewMetrics(reg)

	names := make([]string, 0, len(cfg.Backends))
	for name := range cfg.Backends {
		names = append(names, name)
	}
	sort.Strings(names)
	backends := make([]*upstream.Backend, 0, len(names))
	defer func() {
		for _, b := range backends {
			b.Close()
		}
	}()
	rts := make(map[string]http.RoundTripper, len(names))
	for _, name := range names {
		b, err := upstream.New(backendConfig(name, cfg.Backends[name]), um, logger)
		if err != nil {
			return err
		}
		backends = append(backends, b)
		rts[name] = b
	}

	routes := make([]gateway.Route, len(cfg.Routes))
	for i, r := range cfg.Routes {
		routes[i] = gateway.Route{Host: r.Host, PathPrefix: r.PathPrefix, Backend: r.Backend}
	}
	var pages map[int]gateway.ErrorPage
	for code, p := range cfg.ErrorPages {
		if pages == nil {
			pages = make(map[int]gateway.ErrorPage, len(cfg.ErrorPages))
		}
		pages[code] = gateway.NewErrorPage(p.Path, p.Body)
	}
	g, err := gateway.New(gateway.Config{Routes: routes, ErrorPages: pages}, rts, gm, logger)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	adminLn, err := net.Listen("tcp", cfg.Admin)
	if err != nil {
		ln.Close()
		return fmt.Errorf("admin listen %s: %w", cfg.Admin, err)
	}
	for _, b := range backends {
		b.Start()
	}

	var listening atomic.Bool
	admin := &http.Server{
		Handler:           adminHandler(reg, backends, &listening),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	srv := gateway.NewServer(g)
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	go func() {
		err := admin.Serve(adminLn)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	listening.Store(true)
	logger.Info("sluice listening", "listen", ln.Addr().String(), "admin", adminLn.Addr().String(), "backends", names)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	// Draining: /readyz turns 503 at once so load balancers stop sending
	// new clients; Shutdown closes the listener and idle connections, sends
	// GOAWAY to h2c clients, answers HTTP/1.1 requests still running with
	// "Connection: close", and waits for them. The admin listener keeps
	// serving /readyz and /metrics until then, and the backends stay open
	// (the deferred Close) so that in-flight requests can finish.
	listening.Store(false)
	logger.Info("shutting down", "grace", cfg.ShutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("client connections cut at end of grace period", "err", err)
	}
	admin.Close()
	return runErr
}

// backendConfig maps the file's backend section to the upstream package's.
func backendConfig(name string, b config.Backend) upstream.Config {
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
		H2C: upstream.H2CConfig{
			ConnsPerServer: b.H2C.ConnsPerServer, MaxStreamsPerConn: b.H2C.MaxStreamsPerConn,
			PingInterval: b.H2C.PingInterval, PingTimeout: b.H2C.PingTimeout,
		},
		H1:                    upstream.H1Config{ConnsPerServer: b.H1.ConnsPerServer, IdleTimeout: b.H1.IdleTimeout},
		Queue:                 upstream.QueueConfig{MaxPending: b.Queue.MaxPending, Timeout: b.Queue.Timeout},
		ConnectTimeout:        b.Timeouts.Connect,
		ResponseHeaderTimeout: b.Timeouts.ResponseHeader,
		IdleTimeout:           b.Timeouts.Idle,
		TotalTimeout:          b.Timeouts.Total,
		Health:                upstream.HealthConfig(b.Health),
		Retries:               b.Retries,
		RetryBodyLimit:        int64(b.RetryBodyLimit),
		IdempotentMethods:     b.IdempotentMethods,
		Passive: upstream.PassiveConfig{
			ConsecutiveFailures: b.Passive.ConsecutiveFailures, EjectFor: b.Passive.EjectFor,
			MaxEjectFor: b.Passive.MaxEjectFor, MaxEjectedPercent: b.Passive.MaxEjectedPercent,
		},
	}
}
