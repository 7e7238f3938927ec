package upstream

// Snapshots of a backend, its servers and their connections, for the stats
// page, readiness and logs.

import (
	"time"
)

// ConnStats is a snapshot of one open upstream connection, for the stats
// page.
type ConnStats struct {
	ID       uint64    `json:"id"`
	Backend  string    `json:"backend"`
	Server   string    `json:"server"`
	Protocol string    `json:"protocol"`
	Opened   time.Time `json:"opened"`
	Active   int       `json:"streams_active"`
	// Limit is the concurrent streams the connection allows: the lower of
	// the server's SETTINGS and the config (1 for HTTP/1.1).
	Limit    int    `json:"streams_limit"`
	Requests uint64 `json:"requests"` // client requests sent on it
	// GoAway is when the server's first GOAWAY arrived; zero if none has.
	GoAway time.Time `json:"last_goaway,omitzero"`
	// PingRTT is the round trip of the last PING acknowledged, zero
	// before any (h2c only; the client pings idle connections).
	PingRTT time.Duration `json:"-"`
	PingAt  time.Time     `json:"last_ping,omitzero"`
}

// Conns appends a snapshot of every open connection of the backend's
// servers, including those of servers draining after a reload, to dst.
func (b *Backend) Conns(dst []ConnStats) []ConnStats {
	for _, s := range b.cur().servers {
		dst = s.conns(dst)
	}
	b.updateMu.Lock()
	defer b.updateMu.Unlock()
	for _, s := range b.retired {
		dst = s.conns(dst)
	}
	return dst
}

func (s *Server) conns(dst []ConnStats) []ConnStats {
	p := s.cur.Load()
	if p == nil {
		return dst
	}
	limit := p.limits().maxStreams
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		if c.cc.Err() != nil {
			continue
		}
		cs := ConnStats{
			ID: c.id, Backend: s.b.name, Server: s.addr, Protocol: p.cfg.protocol, Opened: c.opened,
			Active: c.cc.InFlight(), Requests: c.reqs.Load(),
		}
		cs.Limit = min(cs.Active+c.cc.Available(), limit)
		if c.goingAway.Load() || cs.Limit == 0 {
			cs.Limit = cs.Active
		}
		if at := c.goAwayAt.Load(); at != 0 {
			cs.GoAway = time.Unix(0, at)
		}
		if pc, ok := c.cc.(interface {
			PingRTT() (time.Duration, time.Time)
		}); ok {
			cs.PingRTT, cs.PingAt = pc.PingRTT()
		}
		dst = append(dst, cs)
	}
	return dst
}

// Stats is a snapshot of a backend for metrics, readiness and logs.
type Stats struct {
	Name    string        `json:"name"`
	Pending int           `json:"queue_pending"`
	Servers []ServerStats `json:"servers"`
	// Discovery is the DNS discovery's state, nil without one.
	Discovery *DiscoveryStats `json:"discovery,omitempty"`
}

// ServerStats is a snapshot of one server.
type ServerStats struct {
	Address  string `json:"address"`
	Protocol string `json:"protocol"` // h2c, h1, or "" before detection
	// State is up, down (failed health checks or unreachable), ejected
	// (passive health), drain (drained through the admin API; Drained
	// stays set while it is also down or ejected) or draining (removed by
	// a reload).
	State   string `json:"state"`
	Drained bool   `json:"drained"`
	// Weight is the weight in use, configured or set at run time.
	Weight int `json:"weight"`
	Conns  int `json:"connections"`
	Active int `json:"active_streams"`
	// MaxStreams lists, per open connection, the concurrent streams it
	// allows: the lower of the server's SETTINGS and the config.
	MaxStreams []int  `json:"max_streams_per_connection"`
	Requests   uint64 `json:"requests"` // attempts sent, ever
	Errors     uint64 `json:"errors"`   // failed attempts and 5xx answers, ever
	Usable     bool   `json:"usable"`

	// Tunnels counts the connections held for protocol switches
	// (WebSocket), apart from Conns.
	Tunnels int `json:"tunnels"`
}

// Stats snapshots the backend.
func (b *Backend) Stats() Stats {
	st := b.cur()
	out := Stats{Name: b.name, Pending: b.q.len(), Servers: make([]ServerStats, 0, len(st.servers)), Discovery: b.discoveryStats()}
	now := time.Now().UnixNano()
	for _, s := range st.servers {
		ss := ServerStats{
			Address: s.addr, Protocol: s.Protocol(), Active: int(s.active.Load()), Usable: s.usable(),
			Requests: s.requests.Load(), Errors: s.errors.Load(), State: "up", Tunnels: s.tun.count(),
			Drained: s.admin.drained.Load(), Weight: s.weight(),
		}
		switch {
		case s.ejected(now):
			ss.State = "ejected"
		case !s.healthy(now):
			ss.State = "down"
		case ss.Drained:
			ss.State = StateDrain
		}
		if p := s.cur.Load(); p != nil {
			ss.MaxStreams = p.maxStreams()
			ss.Conns = len(ss.MaxStreams)
		}
		out.Servers = append(out.Servers, ss)
	}
	b.updateMu.Lock()
	for _, s := range b.retired {
		ss := ServerStats{Address: s.addr, Protocol: s.Protocol(), Active: int(s.active.Load()), State: "draining",
			Requests: s.requests.Load(), Errors: s.errors.Load(), Tunnels: s.tun.count(), Weight: s.weight()}
		if p := s.cur.Load(); p != nil {
			ss.MaxStreams = p.maxStreams()
			ss.Conns = len(ss.MaxStreams)
		}
		if ss.Conns > 0 || ss.Active > 0 || ss.Tunnels > 0 {
			out.Servers = append(out.Servers, ss)
		}
	}
	b.updateMu.Unlock()
	return out
}
