package runtime

import (
	"fmt"
	"log/slog"
	"net/http"
	"sort"
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
	plan := planReload(lv.cfg, cfg)
	for _, name := range plan.update {
		b := lv.backends[name]
		ucfg := cfg.Backends[name]
		if err := b.Check(ucfg); err != nil {
			return fail(err)
		}
		rts[name], updates[b] = b, ucfg
	}
	for _, name := range plan.add {
		b, err := upstream.New(cfg.Backends[name], lv.um, lv.log)
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
	for _, name := range plan.remove {
		b := lv.backends[name]
		delete(lv.backends, name)
		lv.retire(b, cfg.ShutdownGrace)
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
