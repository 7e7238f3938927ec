package upstream

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Runtime administration: an operator drains a server (no new requests;
// those in flight finish and its connections stay open and warm) or
// changes its weight, without a reload. The state lives on the Server, so
// it survives a reload for every server that stays, and is lost on
// restart.

// MaxWeight is the largest server weight, as in the config.
const MaxWeight = 1000

var (
	// ErrUnknownServer: no server of the backend has that address.
	ErrUnknownServer = errors.New("upstream: unknown server")
	// ErrWeightRange: a weight outside 1..MaxWeight.
	ErrWeightRange = errors.New("upstream: weight out of range")
)

// adminState is what an operator set on a server at run time.
type adminState struct {
	// drained takes the server out of rotation while keeping its
	// connections; health checks and probes go on.
	drained atomic.Bool
	// weight overrides the configured weight when above zero.
	weight atomic.Int32
}

// StateDrain is the ServerStats.State of a drained server.
const StateDrain = "drain"

// SetDrain drains the server at addr (drain true: no new requests, those
// in flight finish, connections stay warm) or puts it back in rotation.
// It returns the server's state afterwards.
func (b *Backend) SetDrain(addr string, drain bool) (ServerStats, error) {
	// updateMu orders the change with a reload's adoptAdmin.
	b.updateMu.Lock()
	s := b.server(addr)
	if s == nil {
		b.updateMu.Unlock()
		return ServerStats{}, b.unknown(addr)
	}
	changed := s.admin.drained.Swap(drain) != drain
	b.updateMu.Unlock()
	if changed {
		verb := "enabled"
		if drain {
			verb = "drained"
		}
		b.log.Info("upstream server "+verb+" by the admin API", "backend", b.name, "server", s.addr)
	}
	s.syncAdmin()
	if !drain {
		b.q.wake()
	}
	return b.serverStats(addr), nil
}

// SetWeight sets the weight of the server at addr, 1..MaxWeight, in place
// of the configured one; balancing follows at once. The weight holds over
// reloads until one changes that server's weight in the config.
func (b *Backend) SetWeight(addr string, weight int) (ServerStats, error) {
	if weight < 1 || weight > MaxWeight {
		return ServerStats{}, fmt.Errorf("%w: %d, want 1..%d", ErrWeightRange, weight, MaxWeight)
	}
	b.updateMu.Lock()
	st := b.cur()
	s := st.server(addr)
	if s == nil {
		b.updateMu.Unlock()
		return ServerStats{}, b.unknown(addr)
	}
	s.admin.weight.Store(int32(weight))
	// A new generation with a balancer for the new weights; requests
	// running keep the one they started with.
	next := *st
	next.bal, _ = newBalancer(st.cfg.Balance, st.servers)
	b.st.Store(&next)
	b.updateMu.Unlock()
	s.syncAdmin()
	b.log.Info("upstream server weight set by the admin API", "backend", b.name, "server", s.addr, "weight", weight)
	b.q.wake()
	return b.serverStats(addr), nil
}

func (b *Backend) unknown(addr string) error {
	return fmt.Errorf("%w %q in backend %q", ErrUnknownServer, addr, b.name)
}

func (b *Backend) server(addr string) *Server { return b.cur().server(addr) }

func (st *backendState) server(addr string) *Server {
	for _, s := range st.servers {
		if s.addr == addr {
			return s
		}
	}
	return nil
}

// serverStats is the Stats row of the server at addr.
func (b *Backend) serverStats(addr string) ServerStats {
	for _, ss := range b.Stats().Servers {
		if ss.Address == addr {
			return ss
		}
	}
	return ServerStats{Address: addr}
}

// reconfigure stores a reloaded server's config. A runtime weight is
// dropped when the reload changes the configured weight: the newer word
// wins.
func (s *Server) reconfigure(sc *ServerConfig) {
	if s.conf.Load().Weight != sc.Weight {
		s.admin.weight.Store(0)
	}
	s.conf.Store(sc)
}

// adoptAdmin gives the servers a reload created the runtime state of the
// server they replace at the same address (a change of protocol setting
// rebuilds every server).
func adoptAdmin(old *backendState, added []*Server) {
	if old == nil {
		return
	}
	for _, s := range added {
		if o := old.server(s.addr); o != nil {
			s.admin.drained.Store(o.admin.drained.Load())
			if o.conf.Load().Weight == s.conf.Load().Weight {
				s.admin.weight.Store(o.admin.weight.Load())
			}
		}
	}
}

// syncAdmin sets the server's admin gauges from its state.
func (s *Server) syncAdmin() {
	d := 0.0
	if s.admin.drained.Load() {
		d = 1
	}
	s.obs.drained.Set(d)
	s.obs.weight.Set(float64(s.weight()))
}

// adminMetrics are the gauges of the runtime state.
type adminMetrics struct {
	drained, weight *prometheus.GaugeVec
}

func newAdminMetrics() adminMetrics {
	return adminMetrics{
		drained: gaugeVec("sluice_server_drained", "1 while the server is drained through the admin API (no new requests, connections kept), else 0.", "backend", "server"),
		weight:  gaugeVec("sluice_server_weight", "The server's weight in use: the configured one, or the one set through the admin API.", "backend", "server"),
	}
}

func (a adminMetrics) vecs() []*prometheus.GaugeVec {
	return []*prometheus.GaugeVec{a.drained, a.weight}
}
