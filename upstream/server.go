package upstream

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	h1client "github.com/sluice-gw/sluice/h1compat/client"
	"github.com/sluice-gw/sluice/h2c"
	"github.com/sluice-gw/sluice/h2c/client"
)

// Server is the live state of one upstream server: its connection pool for
// the protocol in use and its in-flight count.
type Server struct {
	addr string
	conf atomic.Pointer[ServerConfig] // weight and backup change on reload
	b    *Backend
	obs  *serverObserver

	// cur is the pool in use; nil until auto detection has run. Set once
	// from nil by the server's prober, then swapped only by reprobe, both
	// through install.
	cur    atomic.Pointer[pool]
	poolMu sync.Mutex // serialises install with shutDown
	shut   bool       // guarded by poolMu: shutDown ran, no new pool

	// goAwayAt is when one of the server's connections last received a
	// GOAWAY (UnixNano; 0: never): for a while after, its 404s and 503s
	// on any connection are suspect (suspectAnswer).
	goAwayAt atomic.Int64

	// retiring is set when a reload removed the server; from then on
	// pool changes also wake kick, the retire goroutine's signal.
	retiring atomic.Bool
	kick     chan struct{} // capacity 1

	// retired holds pools drained after a protocol switch, closed with the
	// server.
	retiredMu sync.Mutex
	retired   []*pool

	// tun holds the server's tunnels (tunnel.go), outside the pools.
	tun tunnels

	// active counts requests between slot acquisition and body close.
	active atomic.Int64
	// requests and errors count attempts and failures, for the stats page.
	requests, errors atomic.Uint64
	// down is set when the server could not be reached (a dial or probe
	// failed with no connection left open) and cleared by its prober once
	// enough probes in a row pass. A down server takes no requests.
	down atomic.Bool

	// Passive health: failures in a row and the ejection deadline
	// (UnixNano). failures is reset by any success.
	failures     atomic.Int32
	ejectedUntil atomic.Int64
	// ejectMu serialises ejecting and ending an ejection early; it guards
	// ejections, ejectedAt and answerEjected. Lock order: ejectMu before
	// upMu.
	ejectMu sync.Mutex
	// ejections is the exponent of the ejection multiplier: an ejection
	// lasts EjectFor << ejections. It grows by one per ejection and decays
	// by one per EjectFor spent in rotation (see ejectLocked).
	ejections int
	// ejectedAt is when the current or last ejection began.
	ejectedAt time.Time
	// answerEjected: the last ejection was for bad answers (502, 503,
	// 504), which a connect probe cannot disprove.
	answerEjected bool

	// probing is set while a prober goroutine runs for the server (see
	// Backend.watch).
	probing atomic.Bool

	// upMu serialises computing and setting the sluice_server_up gauge, so
	// the last state change wins.
	upMu sync.Mutex

	// Active health: unhealthy takes the server out of rotation; the
	// streaks count checks in a row (owned by the checker goroutine);
	// healthySince (UnixNano) starts the slow-start ramp.
	unhealthy    atomic.Bool
	failStreak   int
	passStreak   int
	healthySince atomic.Int64

	// admin is the state set through the admin API (admin.go).
	admin adminState
}

func (s *Server) weight() int {
	if w := s.admin.weight.Load(); w > 0 {
		return int(w)
	}
	return max(s.conf.Load().Weight, 1)
}

func (s *Server) backup() bool { return s.conf.Load().Backup }

// Address is the server's host:port.
func (s *Server) Address() string { return s.addr }

// Protocol is the protocol in use ("h2c", "h1"), or "" before detection.
func (s *Server) Protocol() string {
	if p := s.cur.Load(); p != nil {
		return p.cfg.protocol
	}
	return ""
}

// install makes p the pool in use in place of old, unless another pool
// got there first or the server was shut down; then p is closed.
func (s *Server) install(old, p *pool) bool {
	s.poolMu.Lock()
	ok := !s.shut && s.cur.CompareAndSwap(old, p)
	s.poolMu.Unlock()
	if !ok {
		p.close()
	}
	return ok
}

func (s *Server) newPool(proto string, cfg *Config) *pool {
	pc := poolConfig{
		server:   s,
		protocol: proto,
		addr:     s.addr,
		limits:   cfg.limits(proto),
		onChange: s.changed,
		obs:      s.obs,
		log:      s.b.log.With("backend", s.b.name),
	}
	addr := s.addr
	switch proto {
	case H2C:
		ccfg := client.Config{
			PingInterval: cfg.H2C.PingInterval,
			PingTimeout:  cfg.H2C.PingTimeout,
			// A new value applies to connections dialled after a reload.
			MaxBodyStreams: cfg.H2C.MaxBodyStreamsPerConn,
		}
		pc.dial = func(ctx context.Context, c *pconn) (clientConn, func(func()), error) {
			// The connection tells the pool of GOAWAY as it arrives (so the
			// replacement dials while the old one drains), and of the
			// server's stream limit through the state hook (Available).
			cfg := ccfg
			cfg.OnGoAway = c.goneAway
			cfg.OnWindowLeak = c.windowLeaked
			cc, err := client.Dial(ctx, addr, cfg)
			if err != nil {
				return nil, nil, err
			}
			return cc, func(f func()) { cc.SetStateHook(func(*client.Conn) { f() }) }, nil
		}
	default:
		pc.mru = true
		pc.dial = func(ctx context.Context, c *pconn) (clientConn, func(func()), error) {
			cc, err := h1client.Dial(ctx, addr, h1client.Config{Sender: s.b.heads})
			if err != nil {
				return nil, nil, err
			}
			return &h1Conn{Conn: cc, c: c}, func(f func()) { cc.SetStateHook(func(*h1client.Conn) { f() }) }, nil
		}
	}
	return newPool(pc)
}

// limits are the pool tunables cfg sets for proto.
func (c *Config) limits(proto string) poolLimits {
	if proto == H2C {
		return poolLimits{maxConns: c.H2C.ConnsPerServer, maxStreams: c.H2C.MaxStreamsPerConn, connectTimeout: c.ConnectTimeout}
	}
	return poolLimits{maxConns: c.H1.ConnsPerServer, maxStreams: 1, connectTimeout: c.ConnectTimeout, idleTimeout: c.H1.IdleTimeout}
}

// reprobe checks an HTTP/1.1 server in auto mode for h2c and switches it
// over when it answers: new requests use h2c, the HTTP/1.1 connections
// finish what they carry and close.
func (s *Server) reprobe(ctx context.Context) {
	old := s.cur.Load()
	if old == nil || old.cfg.protocol != H1 {
		return
	}
	cfg := &s.b.cur().cfg
	isH2C, err := h2c.Probe(ctx, s.addr, cfg.ConnectTimeout)
	if err != nil || !isH2C {
		return
	}
	if !s.install(old, s.newPool(H2C, cfg)) {
		return
	}
	old.drain()
	s.retiredMu.Lock()
	s.retired = append(s.retired, old)
	s.retiredMu.Unlock()
	s.b.log.Info("upstream protocol upgraded", "backend", s.b.name, "server", s.addr, "protocol", H2C)
	s.b.q.wake()
}

// warm opens the first connection of a server whose protocol is known, so
// the first client request does not pay for it and readiness reflects
// reality. Auto servers are warmed by their prober after detection.
func (s *Server) warm() {
	p := s.cur.Load()
	if p == nil {
		s.b.watch(s)
		return
	}
	if p.stats().conns > 0 {
		return
	}
	if err := p.grow(); err != nil && !errors.Is(err, ErrNoCapacity) {
		s.unreachable(err)
	}
}

// usable reports whether the server may take requests: its protocol is
// known, and it is not ejected, down or failing active health checks.
func (s *Server) usable() bool { return s.inRotation(time.Now().UnixNano()) }

func (s *Server) close() {
	s.tun.closeAll()
	if p := s.cur.Load(); p != nil {
		p.close()
	}
	for _, p := range takeAll(&s.retiredMu, &s.retired) {
		p.close()
	}
}

// takeAll empties *list under mu and returns what it held, for closing
// outside the lock.
func takeAll[T any](mu *sync.Mutex, list *[]T) []T {
	mu.Lock()
	defer mu.Unlock()
	all := *list
	*list = nil
	return all
}

// probeLoop re-probes HTTP/1.1 servers of an auto backend every
// ProbeInterval, as configured at each tick.
func (b *Backend) probeLoop(ctx context.Context) {
	every(ctx, b.cur().cfg.ProbeInterval, func() time.Duration {
		st := b.cur()
		if st.cfg.Protocol == Auto {
			for _, s := range st.servers {
				s.reprobe(ctx)
			}
		}
		return st.cfg.ProbeInterval
	})
}
