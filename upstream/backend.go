// Package upstream owns backends: their servers, the choice of server for a
// request, the per-server connection pools (h2c or HTTP/1.1), protocol
// detection, and the bounded FIFO queue where requests wait for a free
// connection slot. A Backend is an http.RoundTripper for the gateway.
package upstream

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/upstream/sendq"
)

// Backend is a named group of servers sharing a queue and a balance policy.
// Its configuration and server list can be swapped by Update without
// touching the connections of servers that stay.
type Backend struct {
	name string
	st   atomic.Pointer[backendState]
	q    queue
	att  attempts        // the attempts in flight, swept for their timeouts
	obs  *backendMetrics // the backend's series; obs.m is the whole set
	// bodies counts the request bodies held for retries, against
	// retry_body_memory.
	bodies bodyMemory
	log    *slog.Logger
	// coin draws slow start's admissions (see Server.admits):
	// rand.Float64, or a test's deterministic source.
	coin func() float64

	// heads writes the request heads of the backend's HTTP/1.1
	// connections (package sendq); closed by Close after the connections.
	heads *sendq.Queue

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // warm-up, probe, prober, health and retire goroutines
	bgMu   sync.Mutex     // orders spawn's wg.Add before Close's cancel and Wait

	// detectCh is closed (and cleared) when a server's first detection
	// ends, waking requests in awaitDetection; detectMu guards it.
	detectMu sync.Mutex
	detectCh chan struct{}

	updateMu sync.Mutex // serialises Update; guards retired
	// retired were removed by Update and are draining; each leaves the
	// list once its retire goroutine has shut it down (connections closed,
	// metric series released).
	retired []*Server
	// base is the configuration given to New or Update, without the
	// discovered servers; disc is the running DNS discovery, nil without
	// one; started is set by Start. All three guarded by updateMu.
	base    Config
	disc    *discovery
	started bool
	// lookupFor makes a discovery's resolver (tests replace it).
	lookupFor func(DiscoveryConfig) lookupFunc
}

// backendState is one configuration generation. Requests load it once and
// use it throughout, so a reload never changes a request midway.
type backendState struct {
	cfg     Config
	servers []*Server
	bal     balancer
	// idempotent holds the methods that may be retried after the server
	// may have seen them.
	idempotent map[string]bool
}

func (b *Backend) cur() *backendState { return b.st.Load() }

// New builds a backend; Start opens its first connections.
func New(cfg Config, m *Metrics, log *slog.Logger) (*Backend, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Backend{
		name:   cfg.Name,
		obs:    m.forBackend(cfg.Name),
		log:    log,
		coin:   rand.Float64,
		ctx:    ctx,
		cancel: cancel,
		base:   cfg,
		heads:  sendq.New(headQueueLen),

		lookupFor: dnsLookup,
	}
	b.q.take = b.takeFor
	b.q.send = b.presend
	st, _, _ := b.buildState(cfg, nil)
	b.q.max.Store(int64(cfg.Queue.MaxPending))
	b.st.Store(st)
	m.register(b)
	return b, nil
}

// buildState makes a state for cfg, reusing the servers of old whose
// address and protocol setting are unchanged. It returns the servers it
// created and the old ones it dropped.
func (b *Backend) buildState(cfg Config, old *backendState) (st *backendState, added, removed []*Server) {
	reuse := map[string]*Server{}
	if old != nil && old.cfg.Protocol == cfg.Protocol {
		for _, s := range old.servers {
			reuse[s.addr] = s
		}
	}
	st = &backendState{cfg: cfg, idempotent: map[string]bool{}}
	for _, m := range append(defaultIdempotent, cfg.IdempotentMethods...) {
		st.idempotent[m] = true
	}
	for _, sc := range cfg.Servers {
		if s, ok := reuse[sc.Address]; ok {
			delete(reuse, sc.Address)
			s.reconfigure(&sc)
			st.servers = append(st.servers, s)
			continue
		}
		s := &Server{addr: sc.Address, b: b, obs: b.obs.forServer(sc.Address), kick: make(chan struct{}, 1)}
		s.conf.Store(&sc)
		if cfg.Protocol != Auto {
			s.cur.Store(s.newPool(cfg.Protocol, &cfg))
		}
		st.servers = append(st.servers, s)
		added = append(added, s)
	}
	if old != nil {
		for _, s := range old.servers {
			if reuse[s.addr] == s {
				removed = append(removed, s)
			}
		}
	}
	adoptAdmin(old, added)
	for _, s := range st.servers {
		s.syncAdmin()
	}
	st.bal, _ = newBalancer(cfg.Balance, st.servers)
	return st, added, removed
}

// Name is the backend's name.
func (b *Backend) Name() string { return b.name }

// Servers lists the backend's current servers.
func (b *Backend) Servers() []*Server { return b.cur().servers }

// Start detects protocols and opens one connection per server in the
// background, and starts re-probing HTTP/1.1 servers in auto mode.
func (b *Backend) Start() {
	b.warm(b.cur().servers)
	b.spawn(func() { b.probeLoop(b.ctx) })
	b.spawn(func() { b.healthLoop(b.ctx) })
	b.updateMu.Lock()
	b.started = true
	b.rediscoverLocked()
	b.updateMu.Unlock()
}

func (b *Backend) warm(servers []*Server) {
	for _, s := range servers {
		b.spawn(s.warm)
	}
}

// Ready reports whether at least one server may take requests, counting
// drained servers: readiness follows health, draining is the operator's.
func (b *Backend) Ready() bool {
	now := time.Now().UnixNano()
	for _, s := range b.cur().servers {
		if s.healthy(now) {
			return true
		}
	}
	return false
}

// Close stops background work, fails queued requests and closes every
// upstream connection.
func (b *Backend) Close() {
	b.bgMu.Lock()
	b.cancel()
	b.bgMu.Unlock()
	b.q.closeAll()
	b.wg.Wait()
	for _, s := range b.cur().servers {
		s.shutDown()
	}
	for _, s := range takeAll(&b.updateMu, &b.retired) {
		s.shutDown()
	}
	b.heads.Close()
	b.obs.unregister(b)
}

// headQueueLen bounds the request heads waiting for the backend's send
// queue; beyond it a request writes its own head.
const headQueueLen = 1024

// Slots is how many requests the backend's servers in rotation can take
// at once: for each, its connections times the streams each may carry
// (h2c), or its connections (HTTP/1.1), by the protocol it was found to
// speak. The HTTP/1.1 front end lets no more requests run at once than
// all backends have slots (gateway/h1's admission).
func (b *Backend) Slots() int {
	st := b.cur()
	h2c := st.cfg.H2C.ConnsPerServer * st.cfg.H2C.MaxStreamsPerConn
	h1 := st.cfg.H1.ConnsPerServer
	n := 0
	now := time.Now().UnixNano()
	for _, s := range st.servers {
		if !s.healthy(now) {
			continue
		}
		if s.cur.Load().cfg.protocol == H1 {
			n += h1
		} else {
			n += h2c
		}
	}
	return n
}
