package upstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-gw/sluice/h2c"
)

// Background probing. A server whose protocol is not yet known (auto mode),
// that is down (unreachable) or that is ejected has a prober: one goroutine
// per such server, owned by the backend (started under bgMu into b.wg,
// stopped by Close through b.ctx), which exits once the server is back in
// rotation or removed by a reload. Requests never probe and never wait for
// a probe, except the very first ones of a backend, which wait for the
// first detection to end (see awaitDetection).

// errUndetected: the server's protocol is not known yet.
var errUndetected = errors.New("upstream: protocol not detected yet")

// defaultRise is how many probes in a row must pass to bring a server back
// when active health checks are off (with them, health.rise applies).
const defaultRise = 2

// spawn runs f in a goroutine owned by the backend, unless it is closed.
func (b *Backend) spawn(f func()) bool {
	b.bgMu.Lock()
	defer b.bgMu.Unlock()
	if b.ctx.Err() != nil {
		return false
	}
	b.wg.Go(f)
	return true
}

// every runs f after first, then again after each wait f returns, until
// ctx ends: the loop of the backend's periodic goroutines, which read their
// interval from the configuration in force at each round.
func every(ctx context.Context, first time.Duration, f func() time.Duration) {
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(f())
	}
}

// watch makes sure a prober runs for s. It never blocks.
func (b *Backend) watch(s *Server) {
	if !s.probing.CompareAndSwap(false, true) {
		return
	}
	if !b.spawn(func() { b.prober(s) }) {
		s.probing.Store(false)
	}
}

// needsProbe reports whether s has something for a prober to do.
func (s *Server) needsProbe(now int64) bool {
	return s.cur.Load() == nil || s.down.Load() || s.ejected(now)
}

func (b *Backend) prober(s *Server) {
	for {
		b.probeRun(s)
		s.probing.Store(false)
		// A failure recorded while this run was deciding to stop saw
		// probing still set and started nothing: look once more.
		if b.ctx.Err() != nil || !b.member(s) || !s.needsProbe(time.Now().UnixNano()) ||
			!s.probing.CompareAndSwap(false, true) {
			return
		}
	}
}

// member reports whether s belongs to the backend's current state.
func (b *Backend) member(s *Server) bool {
	for _, x := range b.cur().servers {
		if x == s {
			return true
		}
	}
	return false
}

// probeRun probes s until it is back in rotation: every ProbeInterval,
// backing off to twice that while probes fail, and a quarter interval after
// a pass so that a returning server is confirmed fast. rise passes in a row
// bring back a server that is down or ejected; the first detection of a
// server that never failed needs one.
func (b *Backend) probeRun(s *Server) {
	began := time.Now()
	out := s.down.Load() || s.ejected(began.UnixNano())
	first := s.cur.Load() == nil && !out
	var delay time.Duration
	if !first {
		// The server has just failed: give it an interval.
		delay = b.cur().cfg.Passive.ProbeInterval
	}
	passes, fails := 0, 0
	var ejectedAt time.Time // start of an ejection seen during the run
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-timer.C:
		}
		if !b.member(s) {
			return
		}
		st := b.cur()
		cfg := &st.cfg
		now := time.Now()
		ejected := s.ejected(now.UnixNano())
		out = out || ejected || s.down.Load()
		if ejected && ejectedAt.IsZero() {
			ejectedAt = s.ejectionStart()
		}
		if s.cur.Load() != nil && !s.down.Load() && !ejected {
			b.backInRotation(s, out, began, ejectedAt, now)
			return
		}
		if ejected && !s.down.Load() && !s.earlyReturn(cfg) {
			// Ejected for bad answers, and only a health check could
			// show they are over: wait the ejection out.
			timer.Reset(time.Duration(s.ejectedUntil.Load() - now.UnixNano()))
			continue
		}
		err := b.probe(st, s)
		s.obs.probed(err == nil)
		if err != nil {
			s.probeFailed(st, err)
			if first {
				b.detected()
			}
			passes, fails, first = 0, fails+1, false
			timer.Reset(probeBackoff(cfg.Passive.ProbeInterval, fails))
			continue
		}
		passes, fails = passes+1, 0
		rise := defaultRise
		if cfg.Health.Enabled {
			rise = cfg.Health.Rise
		}
		if first || passes >= rise {
			s.down.Store(false)
			s.failures.Store(0)
			s.endEjection(now, cfg.Health.Enabled)
			if first {
				b.detected()
			}
			timer.Reset(0)
			continue
		}
		timer.Reset(cfg.Passive.ProbeInterval / 4)
	}
}

// probeBackoff is the wait after fails failed probes in a row: the
// interval, doubling, at most twice the interval, so that a server that
// comes back is noticed within about two intervals.
func probeBackoff(interval time.Duration, fails int) time.Duration {
	return interval << min(fails-1, 1)
}

// earlyReturn reports whether passing probes may end s's ejection before it
// runs out: always with active health checks (the probe is the health
// request); without, only if the ejection was for failures a connect can
// disprove (refused, reset, timed out), not for 5xx answers.
func (s *Server) earlyReturn(cfg *Config) bool {
	if cfg.Health.Enabled {
		return true
	}
	s.ejectMu.Lock()
	defer s.ejectMu.Unlock()
	return !s.answerEjected
}

// backInRotation records that s takes requests again. A server that was
// out ramps up over slow start; how long it was out is logged and, if it
// was ejected, observed.
func (b *Backend) backInRotation(s *Server, out bool, began, ejectedAt, now time.Time) {
	s.refreshUp()
	b.q.wake()
	if !out {
		return
	}
	s.healthySince.Store(now.UnixNano())
	attrs := []any{"backend", b.name, "server", s.addr, "out_for", now.Sub(began).Round(time.Millisecond)}
	if !ejectedAt.IsZero() {
		d := now.Sub(ejectedAt)
		s.obs.ejectionLen.Observe(d.Seconds())
		attrs = append(attrs, "ejected_for", d.Round(time.Millisecond))
	}
	b.log.Info("upstream server back in rotation", attrs...)
}

// probe checks s once with a context of its own: the health request when
// active health checks are on and the protocol is known; otherwise a
// connect and the h2c preface, which also detects the protocol of an auto
// server (and then opens its first connection).
func (b *Backend) probe(st *backendState, s *Server) error {
	cfg := &st.cfg
	p := s.cur.Load()
	if p != nil && cfg.Health.Enabled {
		return b.check(b.ctx, st, s)
	}
	ctx, cancel := context.WithTimeout(b.ctx, cfg.ConnectTimeout)
	defer cancel()
	isH2C, err := h2c.Probe(ctx, s.addr, cfg.ConnectTimeout)
	if err != nil {
		return &DialError{Addr: s.addr, Err: err}
	}
	if p != nil {
		if p.cfg.protocol == H2C && !isH2C {
			return &DialError{Addr: s.addr, Err: h2c.ErrNotH2C}
		}
		return nil
	}
	proto := H1
	if isH2C {
		proto = H2C
	}
	// The first connection is opened before the pool is installed: requests
	// held in awaitDetection then find it ready, where a request let in
	// while it was still being dialled would dial a second one.
	p = s.newPool(proto, cfg)
	err = p.grow()
	if !s.install(nil, p) {
		return nil
	}
	b.log.Info("upstream protocol detected", "backend", b.name, "server", s.addr, "protocol", proto)
	if err != nil && !errors.Is(err, ErrNoCapacity) {
		return err
	}
	return nil
}

// ejectionStart is when the current or last ejection of s began.
func (s *Server) ejectionStart() time.Time {
	s.ejectMu.Lock()
	defer s.ejectMu.Unlock()
	return s.ejectedAt
}

// probeFailed marks s down and counts the failure for passive health,
// unless s is already ejected.
func (s *Server) probeFailed(st *backendState, err error) {
	s.unreachable(err)
	if !s.ejected(time.Now().UnixNano()) {
		s.failed(st)
	}
}

// unreachable marks s down after a failed dial or probe, and starts its
// prober.
func (s *Server) unreachable(err error) {
	if !s.down.Swap(true) {
		s.b.log.Warn("upstream server down", "backend", s.b.name, "server", s.addr, "err", err)
	}
	s.refreshUp()
	s.b.watch(s)
}

// refreshUp sets sluice_server_up from the server's state. Called after
// every change of that state; upMu makes the last caller's view win.
func (s *Server) refreshUp() {
	s.upMu.Lock()
	defer s.upMu.Unlock()
	v := 0.0
	if s.healthy(time.Now().UnixNano()) {
		v = 1
	}
	s.obs.up.Set(v)
}

// detected wakes requests waiting in awaitDetection: a detection ended.
func (b *Backend) detected() {
	b.detectMu.Lock()
	if b.detectCh != nil {
		close(b.detectCh)
		b.detectCh = nil
	}
	b.detectMu.Unlock()
	b.q.wake()
}

// awaitDetection holds a request while no server of st is in rotation and
// some server's first detection is still running, so that the first
// requests after a start or a reload neither fail nor need the queue. The
// wait is bounded by the connect timeout of that detection.
func (b *Backend) awaitDetection(ctx context.Context, st *backendState) error {
	pending := func() bool {
		now := time.Now().UnixNano()
		pending := false
		for _, s := range st.servers {
			if s.inRotation(now) {
				return false
			}
			if s.cur.Load() == nil && !s.down.Load() {
				b.watch(s)
				pending = true
			}
		}
		return pending
	}
	for pending() {
		b.detectMu.Lock()
		if b.detectCh == nil {
			b.detectCh = make(chan struct{})
		}
		ch := b.detectCh
		b.detectMu.Unlock()
		// A detection may have ended before the channel was taken.
		if !pending() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrClientGone, context.Cause(ctx))
		case <-b.ctx.Done():
			return ErrClosed
		}
	}
	return nil
}
