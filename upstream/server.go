package upstream

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/h1compat"
	"github.com/sluice-gw/sluice/h2c"
)

// Protocols a backend can force, or detect with Auto.
const (
	Auto = "auto"
	H2C  = "h2c"
	H1   = "h1"
)

// ServerConfig is one upstream server of a backend.
type ServerConfig struct {
	// Address is host:port.
	Address string
	// Weight is the share of requests for round robin. Zero means 1.
	Weight int
	// Backup servers take requests only when no primary is usable.
	Backup bool
}

// Server is the live state of one upstream server: its connection pool for
// the protocol in use and its in-flight count.
type Server struct {
	cfg ServerConfig
	b   *Backend
	obs *serverObserver

	// cur is the pool in use; nil until auto detection has run.
	cur     atomic.Pointer[pool]
	probeMu sync.Mutex // serialises detection, so one probe runs at a time

	// retired holds pools drained after a protocol switch, closed with the
	// server.
	retiredMu sync.Mutex
	retired   []*pool

	// active counts requests between slot acquisition and body close.
	active atomic.Int64
	// down is set when the last attempt to reach the server failed and
	// cleared by the next success.
	down atomic.Bool

	// Passive health: failures in a row, the ejection deadline (UnixNano)
	// and how many ejections in a row (for doubling).
	failures     atomic.Int32
	ejectedUntil atomic.Int64
	ejections    atomic.Int32
}

func (s *Server) weight() int { return max(s.cfg.Weight, 1) }

// Address is the server's host:port.
func (s *Server) Address() string { return s.cfg.Address }

// Protocol is the protocol in use ("h2c", "h1"), or "" before detection.
func (s *Server) Protocol() string {
	if p := s.cur.Load(); p != nil {
		return p.cfg.protocol
	}
	return ""
}

// pool returns the pool in use, detecting the protocol first in auto mode.
func (s *Server) pool(ctx context.Context) (*pool, error) {
	if p := s.cur.Load(); p != nil {
		return p, nil
	}
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	if p := s.cur.Load(); p != nil {
		return p, nil
	}
	isH2C, err := h2c.Probe(ctx, s.cfg.Address, s.b.cfg.ConnectTimeout)
	if err != nil {
		s.down.Store(true)
		return nil, &DialError{Addr: s.cfg.Address, Err: err}
	}
	proto := H1
	if isH2C {
		proto = H2C
	}
	p := s.newPool(proto)
	s.cur.Store(p)
	s.b.log.Info("upstream protocol detected", "backend", s.b.cfg.Name, "server", s.cfg.Address, "protocol", proto)
	return p, nil
}

func (s *Server) newPool(proto string) *pool {
	b := s.b
	cfg := poolConfig{
		protocol:       proto,
		addr:           s.cfg.Address,
		connectTimeout: b.cfg.ConnectTimeout,
		onChange:       b.q.wake,
		obs:            s.obs,
	}
	addr := s.cfg.Address
	switch proto {
	case H2C:
		cfg.maxConns = b.cfg.H2C.ConnsPerServer
		cfg.maxStreams = b.cfg.H2C.MaxStreamsPerConn
		cfg.dial = func(ctx context.Context, c *pconn) (*http.ClientConn, error) {
			return h2c.Dial(ctx, b.h2t, addr, func(h2c.GoAway) { c.goneAway() })
		}
	default:
		cfg.maxConns = b.cfg.H1.ConnsPerServer
		cfg.maxStreams = 1
		cfg.idleTimeout = b.cfg.H1.IdleTimeout
		cfg.mru = true
		cfg.dial = func(ctx context.Context, _ *pconn) (*http.ClientConn, error) { return h1compat.Dial(ctx, b.h1t, addr) }
	}
	return newPool(cfg)
}

// reprobe checks an HTTP/1.1 server in auto mode for h2c and switches it
// over when it answers: new requests use h2c, the HTTP/1.1 connections
// finish what they carry and close.
func (s *Server) reprobe(ctx context.Context) {
	old := s.cur.Load()
	if old == nil || old.cfg.protocol != H1 {
		return
	}
	isH2C, err := h2c.Probe(ctx, s.cfg.Address, s.b.cfg.ConnectTimeout)
	if err != nil || !isH2C {
		return
	}
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	if !s.cur.CompareAndSwap(old, s.newPool(H2C)) {
		return
	}
	old.drain()
	s.retiredMu.Lock()
	s.retired = append(s.retired, old)
	s.retiredMu.Unlock()
	s.b.log.Info("upstream protocol upgraded", "backend", s.b.cfg.Name, "server", s.cfg.Address, "protocol", H2C)
	s.b.q.wake()
}

// warm detects the protocol and opens the first connection, so the first
// client request does not pay for it and readiness reflects reality.
func (s *Server) warm(ctx context.Context) {
	p, err := s.pool(ctx)
	if err != nil {
		s.b.log.Warn("upstream unreachable", "backend", s.b.cfg.Name, "server", s.cfg.Address, "err", err)
		return
	}
	if p.stats().conns > 0 {
		return
	}
	if err := p.grow(); err != nil {
		s.down.Store(true)
		s.b.log.Warn("upstream unreachable", "backend", s.b.cfg.Name, "server", s.cfg.Address, "err", err)
		return
	}
	s.down.Store(false)
}

// usable reports whether the server may take requests: it is not ejected,
// and not known to be unreachable or still has open connections.
func (s *Server) usable() bool {
	if s.ejected(time.Now().UnixNano()) {
		return false
	}
	if !s.down.Load() {
		return true
	}
	p := s.cur.Load()
	return p != nil && p.stats().conns > 0
}

func (s *Server) close() {
	if p := s.cur.Load(); p != nil {
		p.close()
	}
	s.retiredMu.Lock()
	retired := s.retired
	s.retired = nil
	s.retiredMu.Unlock()
	for _, p := range retired {
		p.close()
	}
}

// probeLoop re-probes HTTP/1.1 servers of an auto backend every interval.
func (b *Backend) probeLoop(ctx context.Context) {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, s := range b.servers {
			s.reprobe(ctx)
		}
	}
}
