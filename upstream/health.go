package upstream

import (
	"time"
)

// PassiveConfig ejects servers that keep failing (connect errors, resets,
// 502/503/504 from the server). Zero values pick the defaults.
type PassiveConfig struct {
	// ConsecutiveFailures ejects a server after this many failures in a
	// row. Zero turns passive health off.
	ConsecutiveFailures int
	// EjectFor is the first ejection's length; it doubles on each repeat.
	// Zero means 10s.
	EjectFor time.Duration
	// MaxEjectFor caps the doubling. Zero means 5m.
	MaxEjectFor time.Duration
	// MaxEjectedPercent caps the share of a backend's servers ejected at
	// once, so a backend-wide problem never empties it. Zero ejects none.
	MaxEjectedPercent int
}

// failed records a failure of s and ejects it once it has failed
// ConsecutiveFailures times in a row, if the backend can spare it.
func (s *Server) failed(st *backendState) {
	s.errors.Add(1)
	n := s.failures.Add(1)
	pc := st.cfg.Passive
	if pc.ConsecutiveFailures <= 0 || int(n) < pc.ConsecutiveFailures {
		return
	}
	now := time.Now()
	if s.ejectedUntil.Load() > now.UnixNano() || !canEject(st, now.UnixNano()) {
		return
	}
	d := pc.EjectFor << min(s.ejections.Load(), 20)
	if d > pc.MaxEjectFor || d <= 0 {
		d = pc.MaxEjectFor
	}
	s.ejectedUntil.Store(now.Add(d).UnixNano())
	s.ejections.Add(1)
	s.failures.Store(0)
	s.obs.ejections.Inc()
	s.b.log.Warn("upstream server ejected", "backend", s.b.name, "server", s.addr, "for", d)
}

// succeeded records a success, ending any failure streak. A success after an
// ejection ran out resets the doubling.
func (s *Server) succeeded() {
	if s.failures.Load() != 0 {
		s.failures.Store(0)
	}
	if s.ejections.Load() != 0 && s.ejectedUntil.Load() < time.Now().UnixNano() {
		s.ejections.Store(0)
	}
}

func (s *Server) ejected(now int64) bool { return s.ejectedUntil.Load() > now }

// inRotation reports whether s may take new requests: not ejected by
// passive health and not marked down by active checks.
func (s *Server) inRotation(now int64) bool { return !s.ejected(now) && !s.unhealthy.Load() }

// canEject reports whether one more server may be ejected.
func canEject(st *backendState, now int64) bool {
	ejected := 0
	for _, s := range st.servers {
		if s.ejected(now) {
			ejected++
		}
	}
	return (ejected+1)*100 <= st.cfg.Passive.MaxEjectedPercent*len(st.servers)
}

// selection says which servers a request may use right now: servers not
// ejected, primaries before backups, and not the server that just failed
// when another will do.
type selection struct {
	now     int64
	backups bool // no primary is usable: use backups
	avoid   *Server
}

func (sel selection) ok(s *Server) bool {
	return s.backup() == sel.backups && s.inRotation(sel.now) && s != sel.avoid
}

// eligible builds the selection, and reports false when no server at all
// may take the request.
func eligible(servers []*Server, now int64, avoid *Server) (selection, bool) {
	for _, backups := range []bool{false, true} {
		n, onlyAvoid := 0, false
		for _, s := range servers {
			if s.backup() == backups && s.inRotation(now) {
				n++
				onlyAvoid = s == avoid
			}
		}
		if n == 0 {
			continue
		}
		sel := selection{now: now, backups: backups, avoid: avoid}
		if n == 1 && onlyAvoid {
			// The server that failed is the only one left: retry it.
			sel.avoid = nil
		}
		return sel, true
	}
	return selection{}, false
}
