package upstream

import "time"

// Update swaps in a new configuration for the backend (same name). Servers
// whose address is unchanged, under an unchanged protocol setting, keep
// their live state and warm connections, with new weights and limits;
// removed servers take no new requests, finish what they carry and close
// (see retire); new servers warm up. Requests already running finish on
// the state they started with.
func (b *Backend) Update(cfg Config) error {
	if err := b.Check(cfg); err != nil {
		return err
	}
	cfg.Name = b.name
	cfg.setDefaults()
	b.updateMu.Lock()
	defer b.updateMu.Unlock()
	b.base = cfg
	b.rediscoverLocked()
	b.applyLocked(b.withDiscoveredLocked(cfg))
	return nil
}

// applyLocked makes cfg, servers included, the backend's state: the work
// of Update, also done by DNS discovery when the set of servers changes.
// New servers joining servers already there ramp up over slow start.
func (b *Backend) applyLocked(cfg Config) {
	old := b.cur()
	st, added, removed := b.buildState(cfg, old)
	if len(old.servers) > 0 {
		now := time.Now().UnixNano()
		for _, s := range added {
			s.healthySince.Store(now)
		}
	}
	for _, s := range st.servers {
		if p := s.cur.Load(); p != nil {
			p.setLimits(cfg.limits(p.cfg.protocol))
		}
	}
	b.q.max.Store(int64(cfg.Queue.MaxPending))
	b.st.Store(st)
	for _, s := range removed {
		s.drain()
		b.retired = append(b.retired, s)
		// After Close, spawn refuses and Close shuts s down itself.
		b.spawn(func() { b.retire(s, cfg.DrainTimeout) })
	}
	b.warm(added)
	// New servers or raised limits may let queued requests through.
	b.q.wake()
	b.log.Info("backend updated", "backend", b.name, "servers", len(st.servers), "added", len(added), "removed", len(removed))
}

// Check reports whether Update would accept cfg, changing nothing, so that
// a caller updating several things at once can check them all first.
func (b *Backend) Check(cfg Config) error {
	cfg.Name = b.name
	cfg.setDefaults()
	return cfg.validate()
}

// drain stops new requests to s and closes its connections as they idle.
func (s *Server) drain() {
	s.retiring.Store(true)
	if p := s.cur.Load(); p != nil {
		p.drain()
	}
	s.retiredMu.Lock()
	defer s.retiredMu.Unlock()
	for _, p := range s.retired {
		p.drain()
	}
}

// retire waits until the drained server s has no connection left, or
// grace has passed, then shuts it down and forgets it. Backend.Close
// ends the wait early and shuts s down itself.
func (b *Backend) retire(s *Server, grace time.Duration) {
	t := time.NewTimer(grace)
	defer t.Stop()
wait:
	for !s.idle() {
		select {
		case <-s.kick:
		case <-t.C:
			b.log.Info("closing removed server after the drain timeout", "backend", b.name, "server", s.addr,
				"active", s.active.Load(), "timeout", grace)
			break wait
		case <-b.ctx.Done():
			return
		}
	}
	// Shut down before leaving b.retired, so that a server no longer
	// listed there has closed and released its metric series.
	s.shutDown()
	b.updateMu.Lock()
	for i, r := range b.retired {
		if r == s {
			b.retired = append(b.retired[:i], b.retired[i+1:]...)
			break
		}
	}
	b.updateMu.Unlock()
}

// changed is every pool's onChange: capacity may have appeared or a
// connection went away. It wakes the queue and, for a removed server, its
// retire goroutine.
func (s *Server) changed() {
	s.b.q.wake()
	if s.retiring.Load() {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// idle reports whether none of the server's pools has a connection left
// and no tunnel (WebSocket) is open.
func (s *Server) idle() bool {
	if s.tun.count() > 0 {
		return false
	}
	if p := s.cur.Load(); p != nil && p.stats().conns > 0 {
		return false
	}
	s.retiredMu.Lock()
	defer s.retiredMu.Unlock()
	for _, p := range s.retired {
		if p.stats().conns > 0 {
			return false
		}
	}
	return true
}

// shutDown closes s for good: its pools, their goroutines and connections,
// and its metric series. No pool is installed afterwards (a probe still
// running closes the one it made).
func (s *Server) shutDown() {
	s.poolMu.Lock()
	s.shut = true
	s.poolMu.Unlock()
	s.close()
	s.obs.release()
}
