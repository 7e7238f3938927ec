package upstream

// Acquisition: a request takes a connection slot on a server in rotation,
// in the balancer's order, opening a connection where the caps allow, or
// waits in the backend's FIFO queue (queue.go) until a slot frees.

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// acquire reserves a connection slot, waiting in the queue if need be. The
// slot's connection knows its pool and server; the request gives the slot
// back through them (see tracker.finish) or with pconn.release.
func (b *Backend) acquire(ctx context.Context, st *backendState, avoid *Server, deadline time.Time, info *RequestInfo) (*pconn, error) {
	if err := b.awaitDetection(ctx, st); err != nil {
		return nil, err
	}
	if b.q.len() == 0 {
		if c, err := b.try(st, avoid); c != nil || err != nil {
			return c, err
		}
	}
	return b.wait(ctx, st, avoid, deadline, info)
}

// try takes a free slot on any server in rotation, opening a connection
// where the caps allow. It never probes: servers whose protocol is unknown
// or that are down are out of rotation until their prober brings them
// back. It returns nil, nil when the caller should wait, and an error only
// when no server could be reached and none has an open connection.
func (b *Backend) try(st *backendState, avoid *Server) (*pconn, error) {
	servers := st.servers
	n := len(servers)
	if n == 0 {
		// Discovery has found no server yet.
		return nil, fmt.Errorf("%w in backend %q", ErrNoHealthyServer, b.name)
	}
	start := st.bal.first(servers)
	now := time.Now().UnixNano()
	sel, ok := eligible(servers, now, avoid)
	if !ok {
		return nil, fmt.Errorf("%w in backend %q", ErrNoHealthyServer, b.name)
	}
	var lastErr error
	slow := st.cfg.Health.SlowStart
	for i := range n {
		s := servers[(start+i)%n]
		if !sel.ok(s) || i == 0 && n > 1 && !s.admits(slow, now, b.coin) {
			continue
		}
		if p := s.cur.Load(); p != nil {
			if c := p.tryAcquire(); c != nil {
				return c, nil
			}
		}
	}
	for i := range n {
		s := servers[(start+i)%n]
		p := s.cur.Load()
		if p == nil || !sel.ok(s) {
			continue
		}
		err := p.grow()
		if errors.Is(err, ErrNoCapacity) {
			continue
		}
		if err != nil {
			s.failed(st)
			if p.stats().conns == 0 {
				// Out of rotation until its prober sees it answer.
				s.unreachable(err)
			}
			lastErr = err
			continue
		}
		return p.tryAcquire(), nil
	}
	if lastErr != nil && !anyOpen(servers) {
		return nil, lastErr
	}
	return nil, nil
}

func anyOpen(servers []*Server) bool {
	for _, s := range servers {
		if p := s.cur.Load(); p != nil && p.stats().conns > 0 {
			return true
		}
	}
	return false
}

// wait parks the request in the FIFO queue until a slot frees up, the queue
// timeout passes or the client leaves.
func (b *Backend) wait(ctx context.Context, st *backendState, avoid *Server, deadline time.Time, info *RequestInfo) (*pconn, error) {
	w := &waiter{ch: make(chan struct{}, 1)}
	if !b.q.enqueue(w) {
		b.obs.rejected(reasonFull)
		return nil, ErrQueueFull
	}
	start := time.Now()
	if info != nil {
		defer func() { info.QueueWait += time.Since(start) }()
	}
	wait, timeoutErr := st.cfg.Queue.Timeout, ErrQueueTimeout
	if !deadline.IsZero() && time.Until(deadline) < wait {
		wait, timeoutErr = time.Until(deadline), ErrTotalTimeout
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	leave := func(err error, reason string) (*pconn, error) {
		if b.q.remove(w) {
			// We were woken but will not use the slot: pass it on.
			b.q.wake()
		}
		if reason != "" {
			b.obs.rejected(reason)
		}
		b.obs.waited(time.Since(start))
		return nil, err
	}
	for {
		c, err := b.try(st, avoid)
		if c != nil || err != nil {
			b.q.remove(w)
			// Capacity often frees in bulk (a new connection, a burst of
			// completions): let the next waiter look too.
			b.q.wake()
			b.obs.waited(time.Since(start))
			return c, err
		}
		select {
		case <-w.ch:
			b.q.requeue(w)
		case <-timer.C:
			return leave(timeoutErr, reasonTimeout)
		case <-ctx.Done():
			return leave(fmt.Errorf("%w: %w", ErrClientGone, context.Cause(ctx)), reasonClientGone)
		case <-b.ctx.Done():
			return leave(ErrClosed, "")
		}
	}
}
