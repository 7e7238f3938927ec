package runtime

// The mapping from the config file's types to the upstream and gateway
// packages' configs. Nothing here has state of its own.

import (
	"time"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/upstream"
)

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

// resetLimit maps limits.h2_max_resets_per_second, where 0 is off, to
// gateway.Config.ResetLimit, where 0 is the default and off is negative.
func resetLimit(perSecond int) int {
	if perSecond == 0 {
		return -1
	}
	return perSecond
}

// certPairs maps the config's certificate pairs to the gateway's.
func certPairs(cfg *config.Config) []gateway.CertPair {
	pairs := make([]gateway.CertPair, len(cfg.TLSCerts))
	for i, p := range cfg.TLSCerts {
		pairs[i] = gateway.CertPair{CertFile: p.Cert, KeyFile: p.Key}
	}
	return pairs
}

// gatewayConfig is the client-facing configuration of cfg; only routes and
// error pages change after start. altSvc advertises HTTP/3 ("" without);
// alog is the access log, nil when off.
func gatewayConfig(cfg *config.Config, routes []gateway.Route, pages map[int]gateway.ErrorPage, altSvc string, alog *gateway.AccessLog) gateway.Config {
	l := cfg.Limits
	return gateway.Config{
		Routes:               routes,
		ErrorPages:           pages,
		MaxConns:             l.MaxConns,
		ReadHeaderTimeout:    l.ReadHeaderTimeout,
		IdleTimeout:          l.IdleTimeout,
		MaxHeaderBytes:       l.MaxHeaderBytes,
		MaxHeaderCount:       l.MaxHeaderCount,
		MaxRequestBody:       l.MaxRequestBody,
		MaxConcurrentStreams: l.H2MaxConcurrentStreams,
		ResetLimit:           resetLimit(l.H2MaxResetsPerSecond),
		TrustedProxies:       cfg.TrustedProxies,
		AltSvc:               altSvc,
		AccessLog:            alog,
	}
}

// errorPages maps the config's error pages to the gateway's; nil when none.
func errorPages(cfg *config.Config) map[int]gateway.ErrorPage {
	var pages map[int]gateway.ErrorPage
	for code, p := range cfg.ErrorPages {
		if pages == nil {
			pages = make(map[int]gateway.ErrorPage, len(cfg.ErrorPages))
		}
		pages[code] = gateway.NewErrorPage(p.Path, p.Body)
	}
	return pages
}

// gatewayRoutes maps the config's routes to the gateway's.
func gatewayRoutes(cfg *config.Config) []gateway.Route {
	routes := make([]gateway.Route, len(cfg.Routes))
	for i, r := range cfg.Routes {
		routes[i] = gateway.Route{Host: r.Host, PathPrefix: r.PathPrefix, Backend: r.Backend}
	}
	return routes
}
