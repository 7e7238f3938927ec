package upstream

// Update swaps in a new configuration for the backend (same name). Servers
// whose address is unchanged, under an unchanged protocol setting, keep
// their live state and warm connections, with new weights and limits;
// removed servers take no new requests, finish what they carry and close;
// new servers warm up. Requests already running finish on the state they
// started with.
func (b *Backend) Update(cfg Config) error {
	cfg.Name = b.name
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	b.updateMu.Lock()
	defer b.updateMu.Unlock()
	old := b.cur()
	st, added, removed := b.buildState(cfg, old)
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
	}
	b.warm(added)
	// New servers or raised limits may let queued requests through.
	b.q.wake()
	b.log.Info("backend updated", "backend", b.name, "servers", len(st.servers), "added", len(added), "removed", len(removed))
	return nil
}

// drain stops new requests to s and closes its connections as they idle.
func (s *Server) drain() {
	if p := s.cur.Load(); p != nil {
		p.drain()
	}
	s.retiredMu.Lock()
	defer s.retiredMu.Unlock()
	for _, p := range s.retired {
		p.drain()
	}
}
