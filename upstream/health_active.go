package upstream

// Active health checks: a health request to every server each interval,
// over its pooled connections, with HAProxy's fall/rise semantics.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// healthLoop checks every server of the backend each interval, all servers
// concurrently and each at most one check at a time, until the backend
// closes. The configuration is read at each round, so reloads apply.
func (b *Backend) healthLoop(ctx context.Context) {
	every(ctx, 0, func() time.Duration { return b.healthRound(ctx) })
}

// healthRound checks every server once, and returns the wait before the
// next round.
func (b *Backend) healthRound(ctx context.Context) time.Duration {
	st := b.cur()
	hc := st.cfg.Health
	if !hc.Enabled {
		for _, s := range st.servers {
			s.markHealthy(b, true)
		}
		return time.Second
	}
	done := make(chan struct{}, len(st.servers))
	for _, s := range st.servers {
		go func() {
			defer func() { done <- struct{}{} }()
			err := b.check(ctx, st, s)
			s.recordCheck(b, hc, err)
		}()
	}
	for range st.servers {
		<-done
	}
	return hc.Interval
}

// check sends one health request to s over its pool.
func (b *Backend) check(ctx context.Context, st *backendState, s *Server) error {
	hc := st.cfg.Health
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	p := s.cur.Load()
	if p == nil {
		return errUndetected
	}
	c := p.tryAcquire(false)
	if c == nil {
		// Busy connections carry live traffic, which passive health
		// watches; open one only if there is none at all.
		if p.stats().conns > 0 {
			return nil
		}
		if err := p.grow(); err != nil {
			return err
		}
		if c = p.tryAcquire(false); c == nil {
			return nil
		}
	}
	defer c.done()
	cc := c.cc
	host := hc.Host
	if host == "" {
		host = s.addr
	}
	req, err := http.NewRequestWithContext(ctx, hc.Method, "http://"+s.addr+hc.Path, nil)
	if err != nil {
		cc.Release()
		return err
	}
	req.Host = host
	req.Header.Set("User-Agent", "sluice-health-check")
	resp, err := cc.RoundTrip(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != hc.ExpectStatus {
		return fmt.Errorf("status %d, want %d", resp.StatusCode, hc.ExpectStatus)
	}
	return nil
}

// recordCheck applies fall/rise to one check's result.
func (s *Server) recordCheck(b *Backend, hc HealthConfig, err error) {
	if err != nil {
		s.obs.checks(false)
		s.passStreak = 0
		s.failStreak++
		if s.failStreak >= hc.Fall && !s.unhealthy.Load() {
			b.log.Warn("upstream server down", "backend", b.name, "server", s.addr, "checks_failed", s.failStreak, "err", err)
			s.markHealthy(b, false)
		}
		return
	}
	s.obs.checks(true)
	s.failStreak = 0
	s.passStreak++
	if s.passStreak >= hc.Rise && s.unhealthy.Load() {
		b.log.Info("upstream server up", "backend", b.name, "server", s.addr, "checks_passed", s.passStreak)
		s.markHealthy(b, true)
	}
}

func (s *Server) markHealthy(b *Backend, up bool) {
	was := !s.unhealthy.Swap(!up)
	if up && !was {
		s.healthySince.Store(time.Now().UnixNano())
		b.q.wake()
	}
	s.refreshUp()
}
