package upstream

// Passive health: servers that keep failing live traffic are ejected for a
// while, never more than passive.max_ejected_percent of a backend at once.
// Their prober (probe.go) may end an ejection early.

import (
	"time"
)

// failed records a failure of s to carry a request (a connection, reset or
// timeout error) and ejects it once it has failed ConsecutiveFailures
// times in a row, if the backend can spare it.
func (s *Server) failed(st *backendState) { s.fail(st, false) }

// failedAnswer records a 502, 503 or 504 answer: the server is reachable,
// so a connect probe cannot end the ejection early; only an active health
// check, or the ejection running out, brings it back.
func (s *Server) failedAnswer(st *backendState) { s.fail(st, true) }

func (s *Server) fail(st *backendState, answered bool) {
	s.errors.Add(1)
	now := time.Now()
	if s.ejected(now.UnixNano()) {
		// Requests sent before the ejection failing after it: the streak
		// starts again when the ejection ends.
		return
	}
	n := s.failures.Add(1)
	pc := st.cfg.Passive
	if pc.ConsecutiveFailures <= 0 || int(n) < pc.ConsecutiveFailures {
		return
	}
	s.ejectMu.Lock()
	if s.ejectedUntil.Load() > now.UnixNano() || !canEject(st, s, now.UnixNano()) {
		s.ejectMu.Unlock()
		return
	}
	d := s.ejectLocked(now, pc, answered)
	s.ejectMu.Unlock()
	s.failures.Store(0)
	s.obs.ejections.Inc()
	s.b.log.Warn("upstream server ejected", "backend", s.b.name, "server", s.addr, "for", d)
	s.refreshUp()
	s.b.watch(s)
}

// ejectLocked ejects s from now and returns for how long. The multiplier
// decays first, as in Envoy's outlier detection: its exponent drops by one
// for every EjectFor that passed since the last ejection ended, so a
// server that failed once long ago is not punished as a repeat offender.
func (s *Server) ejectLocked(now time.Time, pc PassiveConfig, answered bool) time.Duration {
	k := s.ejections
	if ended := time.Unix(0, s.ejectedUntil.Load()); k > 0 && now.After(ended) {
		k = max(k-int(now.Sub(ended)/pc.EjectFor), 0)
	}
	d := pc.EjectFor << min(k, 20)
	if d > pc.MaxEjectFor || d <= 0 {
		d = pc.MaxEjectFor
	}
	s.ejections = k + 1
	s.ejectedAt = now
	s.answerEjected = answered
	s.ejectedUntil.Store(now.Add(d).UnixNano())
	return d
}

// endEjection ends an ejection early, when probes show the server answers
// again; it reports false when the ejection may not end early (bad answers
// without active health checks) or has already ended.
func (s *Server) endEjection(now time.Time, health bool) bool {
	s.ejectMu.Lock()
	defer s.ejectMu.Unlock()
	if !s.ejected(now.UnixNano()) || s.answerEjected && !health {
		return false
	}
	s.ejectedUntil.Store(now.UnixNano())
	return true
}

// succeeded records a success, ending any failure streak. It leaves the
// ejection multiplier alone: that decays with time in rotation.
func (s *Server) succeeded() {
	if s.failures.Load() != 0 {
		s.failures.Store(0)
	}
}

func (s *Server) ejected(now int64) bool { return s.ejectedUntil.Load() > now }

// inRotation reports whether s may take new requests: it is healthy and
// not drained through the admin API.
func (s *Server) inRotation(now int64) bool {
	return !s.admin.drained.Load() && s.healthy(now)
}

// healthy reports whether s could take requests, drained or not: its
// protocol is known, it is not ejected by passive health, not down
// (unreachable) and not marked down by active checks.
func (s *Server) healthy(now int64) bool {
	return !s.ejected(now) && !s.down.Load() && !s.unhealthy.Load() && s.cur.Load() != nil
}

// canEject reports whether s may be ejected: with it, at most
// MaxEjectedPercent of the backend's servers out of rotation. The others
// count if they are ejected, drained, down or failing active checks, so
// that ejection never empties a backend an operator has drained a server
// of, or a dead server has left: its failures would become every
// request's 503 then.
func canEject(st *backendState, s *Server, now int64) bool {
	out := 0
	for _, o := range st.servers {
		if o != s && (o.ejected(now) || o.admin.drained.Load() || o.down.Load() || o.unhealthy.Load()) {
			out++
		}
	}
	return (out+1)*100 <= st.cfg.Passive.MaxEjectedPercent*len(st.servers)
}
