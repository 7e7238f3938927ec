package upstream

import "time"

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
	// GoAway is when the server's GOAWAY arrived; zero if it has not.
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
