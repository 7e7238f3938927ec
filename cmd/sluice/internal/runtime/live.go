package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/upstream"
)

// live owns the live backends and gateway and applies configurations to
// them: the first at start, later ones on reload.
type live struct {
	log     *slog.Logger
	load    func() (*config.Config, error) // nil: nothing to reload
	um      *upstream.Metrics
	gm      *gateway.Metrics
	reloads *prometheus.CounterVec

	// reloading holds a token while a reload runs: SIGHUP and POST /reload
	// take turns, so each reads, checks and applies a config whole.
	reloading chan struct{}

	mu       sync.Mutex // serialises apply; guards the fields below
	cfg      *config.Config
	backends map[string]*upstream.Backend
	g        *gateway.Gateway
	// certs serve tls_listen and HTTP/3; nil without them. Reloads swap
	// their content, never the pointer the listeners hold.
	certs    *gateway.Certs
	altSvc   string             // Alt-Svc of TCP responses, set by start
	alog     *gateway.AccessLog // nil when off; fixed at start
	sink     *logSink           // alog's file; nil when off
	retiring sync.WaitGroup     // backends removed by a reload, closing after the grace
	closed   chan struct{}
}

func newLive(reg prometheus.Registerer, log *slog.Logger, load func() (*config.Config, error)) *live {
	lv := &live{
		log:       log,
		load:      load,
		um:        upstream.NewMetrics(reg),
		gm:        gateway.NewMetrics(reg),
		backends:  map[string]*upstream.Backend{},
		closed:    make(chan struct{}),
		reloading: make(chan struct{}, 1),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_reloads_total",
			Help: "Configuration reloads (SIGHUP or POST /reload), by result (success, error).",
		}, []string{"result"}),
	}
	reg.MustRegister(lv.reloads)
	return lv
}

// errNoReload is the answer to a reload in quick mode.
var errNoReload = errors.New("reload: no config file (quick mode); restart with new flags instead")

// errShuttingDown is the answer to a reload asked for during shutdown.
var errShuttingDown = errors.New("reload: shutting down")

// reload reads the configuration again and applies it, or keeps the running
// one and says why. One reload runs at a time; others wait their turn.
func (lv *live) reload() error {
	select {
	case lv.reloading <- struct{}{}:
	case <-lv.closed:
		return errShuttingDown
	}
	defer func() { <-lv.reloading }()
	if lv.sink != nil {
		// Whatever the config says: logrotate sends SIGHUP after moving
		// the file away.
		if err := lv.sink.reopen(); err != nil {
			lv.log.Error("access log not reopened; still writing the old file", "err", err)
		}
	}
	err := lv.reloadOnce()
	if err != nil {
		lv.reloads.WithLabelValues("error").Inc()
		lv.log.Error("reload failed; still running the previous config", "err", err)
		return err
	}
	lv.reloads.WithLabelValues("success").Inc()
	lv.log.Info("reloaded config", "backends", lv.names())
	return nil
}

func (lv *live) reloadOnce() error {
	if lv.load == nil {
		return errNoReload
	}
	cfg, err := lv.load()
	if err != nil {
		return err
	}
	cur := lv.config()
	if changed := restartKeys(cur, cfg); len(changed) > 0 {
		return fmt.Errorf("reload: %s: these keys need a restart to change; the running config is kept", strings.Join(changed, "; "))
	}
	var useCerts func()
	if lv.certs != nil {
		// Read the files again even when their names did not change:
		// renewed certificates are usually written over the old ones.
		// They are put in use by apply, once nothing else can fail: a
		// failed reload keeps the old certificates with the old config.
		set, err := gateway.ReadCerts(cfg.TLSCerts)
		if err != nil {
			return fmt.Errorf("reload: tls_certs: %w", err)
		}
		useCerts = func() { lv.certs.Use(set) }
	}
	return lv.apply(cfg, useCerts)
}

// restartKeys lists the keys whose change needs a restart, with their old
// and new values: they are fixed in the listeners and servers when these
// are built.
func restartKeys(cur, next *config.Config) []string {
	var out []string
	diff := func(key string, a, b any) {
		if a != b {
			out = append(out, fmt.Sprintf("%s %v -> %v", key, a, b))
		}
	}
	diff("listen", cur.Listen, next.Listen)
	diff("admin", cur.Admin, next.Admin)
	diff("tls_listen", quoted(cur.TLSListen), quoted(next.TLSListen))
	diff("http3", cur.HTTP3, next.HTTP3)
	diff("proxy_protocol", cur.ProxyProtocol, next.ProxyProtocol)
	diff("pprof", cur.Pprof, next.Pprof)
	diff("access_log.mode", cur.AccessLog.Mode, next.AccessLog.Mode)
	diff("access_log.sample", cur.AccessLog.Sample, next.AccessLog.Sample)
	diff("access_log.format", cur.AccessLog.Format, next.AccessLog.Format)
	diff("access_log.path", cur.AccessLog.Path, next.AccessLog.Path)
	a, b := cur.Limits, next.Limits
	diff("limits.max_conns", a.MaxConns, b.MaxConns)
	diff("limits.read_header_timeout", a.ReadHeaderTimeout, b.ReadHeaderTimeout)
	diff("limits.idle_timeout", a.IdleTimeout, b.IdleTimeout)
	diff("limits.max_header_bytes", a.MaxHeaderBytes, b.MaxHeaderBytes)
	diff("limits.max_header_count", a.MaxHeaderCount, b.MaxHeaderCount)
	diff("limits.max_request_body", a.MaxRequestBody, b.MaxRequestBody)
	diff("limits.h2_max_concurrent_streams", a.H2MaxConcurrentStreams, b.H2MaxConcurrentStreams)
	diff("limits.h2_max_resets_per_second", a.H2MaxResetsPerSecond, b.H2MaxResetsPerSecond)
	if !slices.Equal(cur.TrustedProxies, next.TrustedProxies) {
		out = append(out, fmt.Sprintf("trusted_proxies %v -> %v", cur.TrustedProxies, next.TrustedProxies))
	}
	if !slices.Equal(cur.ProxyProtocolFrom, next.ProxyProtocolFrom) {
		out = append(out, fmt.Sprintf("proxy_protocol_from %v -> %v", cur.ProxyProtocolFrom, next.ProxyProtocolFrom))
	}
	return out
}

func quoted(s string) string { return fmt.Sprintf("%q", s) }

// start loads the certificates and applies the first configuration;
// altSvc is the Alt-Svc value advertising HTTP/3, or "".
func (lv *live) start(cfg *config.Config, altSvc string) error {
	if cfg.TLSListen != "" {
		certs, err := gateway.LoadCerts(cfg.TLSCerts)
		if err != nil {
			return fmt.Errorf("tls_certs: %w", err)
		}
		lv.certs = certs
	}
	lv.altSvc = altSvc
	al, sink, err := newAccessLog(cfg.AccessLog, lv.log)
	if err != nil {
		return err
	}
	lv.alog, lv.sink = al, sink
	return lv.apply(cfg, nil)
}

// apply makes cfg the running configuration, all or nothing. Existing
// backends are updated in place (servers that stay keep their
// connections), new ones start, and removed ones stop taking requests at
// once and close after the shutdown grace, so requests they carry can
// finish. commit, when not nil, runs once nothing can fail any more, just
// before the backends change (the reload's certificates).
func (lv *live) apply(cfg *config.Config, commit func()) error {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	// Prepare: build the new backends and check every update, changing
	// nothing that is live.
	var added []*upstream.Backend
	fail := func(err error) error {
		for _, b := range added {
			b.Close()
		}
		return err
	}
	rts := map[string]http.RoundTripper{}
	updates := map[*upstream.Backend]upstream.Config{}
	for name, ucfg := range cfg.Backends {
		if b, ok := lv.backends[name]; ok {
			if err := b.Check(ucfg); err != nil {
				return fail(err)
			}
			rts[name], updates[b] = b, ucfg
			continue
		}
		b, err := upstream.New(ucfg, lv.um, lv.log)
		if err != nil {
			return fail(err)
		}
		added = append(added, b)
		rts[name] = b
	}
	gcfg := cfg.Gateway()
	// Commit. The gateway swaps its routes whole or fails without a
	// change; after it nothing fails: the backend updates were checked.
	if lv.g == nil {
		gcfg.AltSvc, gcfg.AccessLog = lv.altSvc, lv.alog
		g, err := gateway.New(gcfg, rts, lv.gm, lv.log)
		if err != nil {
			return fail(err)
		}
		lv.g = g
	} else if err := lv.g.Update(gcfg.Routes, rts, gcfg.ErrorPages); err != nil {
		return fail(err)
	}
	if commit != nil {
		commit()
	}
	for b, ucfg := range updates {
		if err := b.Update(ucfg); err != nil {
			// Check accepted this very config; say so if that ever breaks.
			lv.log.Error("backend update refused after its check passed", "backend", b.Name(), "err", err)
		}
	}
	for _, b := range added {
		lv.backends[b.Name()] = b
		b.Start()
	}
	for name, b := range lv.backends {
		if _, ok := cfg.Backends[name]; !ok {
			delete(lv.backends, name)
			lv.retire(b, cfg.ShutdownGrace)
		}
	}
	lv.cfg = cfg
	return nil
}

// retire closes a backend no route uses any more, after grace.
func (lv *live) retire(b *upstream.Backend, grace time.Duration) {
	lv.retiring.Add(1)
	go func() {
		defer lv.retiring.Done()
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
		case <-lv.closed:
		}
		b.Close()
	}()
}

func (lv *live) config() *config.Config {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	return lv.cfg
}

// snapshot lists the live backends, sorted by name.
func (lv *live) snapshot() []*upstream.Backend {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	bs := make([]*upstream.Backend, 0, len(lv.backends))
	for _, b := range lv.backends {
		bs = append(bs, b)
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].Name() < bs[j].Name() })
	return bs
}

func (lv *live) names() []string {
	var names []string
	for _, b := range lv.snapshot() {
		names = append(names, b.Name())
	}
	return names
}

// close stops every backend, retired ones included.
func (lv *live) close() {
	// A reload still running finishes first; none starts after (the token
	// is never given back).
	lv.reloading <- struct{}{}
	close(lv.closed)
	lv.retiring.Wait()
	for _, b := range lv.snapshot() {
		b.Close()
	}
	if lv.sink != nil {
		if err := lv.sink.Close(); err != nil {
			lv.log.Warn("access log close", "err", err)
		}
	}
}
