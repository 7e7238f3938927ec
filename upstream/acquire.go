package upstream

// Acquisition: a request takes a connection slot on a server in rotation,
// in the balancer's order, opening a connection where the caps allow, or
// waits in the backend's FIFO queue (queue.go) until a slot frees.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	h1client "github.com/sluice-gw/sluice/h1compat/client"
)

// acquire reserves a connection slot, waiting in the queue if need be. The
// slot's connection knows its pool and server; the request gives the slot
// back through them (see tracker.finish) or with pconn.release.
//
// early, when not nil, is the request to send, without a body: if the
// request waits for an HTTP/1.1 connection, the goroutine that frees one
// writes early's head on it at once (presend), and the connection's
// RoundTrip of the same request only reads the answer.
//
// unchecked lets an HTTP/1.1 slot skip its connection's liveness peek
// (h1compat/client's ReserveUnchecked), for a request the caller sends
// again if the connection turns out closed (see RoundTripInfo).
func (b *Backend) acquire(ctx context.Context, st *backendState, avoid *Server, deadline time.Time, info *RequestInfo, early *http.Request, unchecked bool) (*pconn, error) {
	if err := b.awaitDetection(ctx, st); err != nil {
		return nil, err
	}
	if b.q.len() == 0 {
		if c, err := b.try(st, avoid, unchecked); c != nil || err != nil {
			return c, err
		}
	}
	return b.wait(ctx, st, avoid, deadline, info, early, unchecked)
}

// try takes a free slot on any server in rotation, opening a connection
// where the caps allow. It never probes: servers whose protocol is unknown
// or that are down are out of rotation until their prober brings them
// back. It returns nil, nil when the caller should wait, and an error only
// when no server could be reached and none has an open connection.
func (b *Backend) try(st *backendState, avoid *Server, unchecked bool) (*pconn, error) {
	c, sc, err := b.takeFree(st, avoid, unchecked)
	if c != nil || err != nil {
		return c, err
	}
	servers := st.servers
	n := len(servers)
	var lastErr error
	for i := range n {
		s := servers[(sc.start+i)%n]
		p := s.cur.Load()
		if p == nil || !sc.sel.ok(s) {
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
		return p.tryAcquire(unchecked), nil
	}
	if lastErr != nil && !anyOpen(servers) {
		return nil, lastErr
	}
	return nil, nil
}

// scan is where takeFree looked: the balancer's first server and the
// servers eligible, for try to open a connection in the same order.
type scan struct {
	start int
	sel   selection
}

// takeFree reserves a free slot on an open connection of a server in
// rotation, in the balancer's order, without dialling. It returns nil and
// where it looked when there is none, and an error when no server is in
// rotation.
func (b *Backend) takeFree(st *backendState, avoid *Server, unchecked bool) (*pconn, scan, error) {
	servers := st.servers
	n := len(servers)
	if n == 0 {
		// Discovery has found no server yet.
		return nil, scan{}, fmt.Errorf("%w in backend %q", ErrNoHealthyServer, b.name)
	}
	start := st.bal.first(servers)
	now := time.Now().UnixNano()
	sel, ok := eligible(servers, now, avoid)
	if !ok {
		return nil, scan{}, fmt.Errorf("%w in backend %q", ErrNoHealthyServer, b.name)
	}
	slow := st.cfg.Health.SlowStart
	for i := range n {
		s := servers[(start+i)%n]
		if !sel.ok(s) || i == 0 && n > 1 && !s.admits(slow, now, b.coin) {
			continue
		}
		if p := s.cur.Load(); p != nil {
			if c := p.tryAcquire(unchecked); c != nil {
				return c, scan{}, nil
			}
		}
	}
	return nil, scan{start: start, sel: sel}, nil
}

// takeFor is the queue's take function (queue.wake): a free slot for a
// waiter, or whether it should run try itself because a connection may
// be opened or no server is in rotation (try then says which).
func (b *Backend) takeFor(st *backendState, avoid *Server, unchecked bool) (*pconn, bool) {
	c, sc, err := b.takeFree(st, avoid, unchecked)
	if c != nil || err != nil {
		return c, err != nil
	}
	for _, s := range st.servers {
		if p := s.cur.Load(); p != nil && sc.sel.ok(s) && p.canGrow() {
			return nil, true
		}
	}
	return nil, false
}

// presend is the queue's send function: it writes req's head on c, a
// connection just handed to req's waiter, when c is an HTTP/1.1 one and
// req's client is still there. A failed write closes c, and the
// request's RoundTrip on it reports the error (nothing of it was read by
// the server, so it may be retried).
func (b *Backend) presend(c *pconn, req *http.Request, info *RequestInfo) {
	h, ok := c.cc.(*h1Conn)
	if !ok || req.Context().Err() != nil {
		return
	}
	// What send would build: the server's address in the URL, and the
	// header list as a map (built once, kept in info for send).
	out := *req
	u := *req.URL
	u.Scheme, u.Host = "http", c.server().addr
	out.URL = &u
	var order []string
	if info != nil && info.Header != nil {
		out.Header, order = info.Header.Map(), info.Header.Order()
	}
	if h.PresendOrder(&out, order) == nil {
		c.handedOn.Store(true)
	}
}

func anyOpen(servers []*Server) bool {
	for _, s := range servers {
		if p := s.cur.Load(); p != nil && p.stats().conns > 0 {
			return true
		}
	}
	return false
}

// wait parks the request in the FIFO queue until a slot is handed to it,
// the queue timeout passes or the client leaves. The waiter is pooled and
// the queue's deadlines share one timer, so waiting allocates nothing.
func (b *Backend) wait(ctx context.Context, st *backendState, avoid *Server, deadline time.Time, info *RequestInfo, early *http.Request, unchecked bool) (*pconn, error) {
	start := time.Now()
	w := b.q.get()
	w.st, w.avoid, w.unchecked = st, avoid, unchecked
	w.early, w.info = early, info
	w.deadline, w.timeoutErr = start.Add(st.cfg.Queue.Timeout), ErrQueueTimeout
	if !deadline.IsZero() && deadline.Before(w.deadline) {
		w.deadline, w.timeoutErr = deadline, ErrTotalTimeout
	}
	head, err := b.q.enqueue(w)
	if err != nil {
		b.q.put(w)
		if err == ErrQueueFull {
			b.obs.rejected(reasonFull)
		}
		return nil, err
	}
	if head {
		// A slot may have freed between try and enqueue, when nobody
		// was queued to take it.
		b.q.wake()
	}
	c, err, keep := b.await(ctx, w)
	if keep {
		b.q.put(w)
	}
	d := time.Since(start)
	if info != nil {
		info.QueueWait += d
	}
	b.obs.waited(d)
	return c, err
}

// await waits for w's turn: a slot handed over, the deadline, the backend
// closing, the client leaving, or the queue asking w to try for itself.
// keep reports whether w may be recycled: not when the client context's
// watcher (waitWatch) may still be running and touch it.
func (b *Backend) await(ctx context.Context, w *waiter) (c *pconn, err error, keep bool) {
	// A context that tells of its end by a callback has it end the wait
	// (waitWatch), so that the wait is a plain receive: a select would lock
	// two channels, and ask ctx for a Done channel it may have to make.
	cn, _ := ctx.(h1client.CancelNotifier)
	keep = true
	for {
		// A token already there (wake, run by wait as the queue's head,
		// handed w a slot at once) is taken without waiting.
		select {
		case <-w.ch:
		default:
			switch {
			case cn == nil:
				select {
				case <-w.ch:
				case <-ctx.Done():
					return nil, b.leave(ctx, w), keep
				}
			case !cn.OnCancel((*waitWatch)(w)):
				return nil, b.leave(ctx, w), keep
			default:
				<-w.ch
				// false: the watcher ran or runs now (it found w out of
				// the queue, or ended the wait), and may touch w still.
				keep = cn.StopOnCancel() && keep
			}
		}
		switch {
		case w.c != nil:
			return w.c, nil, keep
		case w.err == errWaitGone:
			// The watcher took w out of the queue: nothing was handed.
			b.obs.rejected(reasonClientGone)
			return nil, fmt.Errorf("%w: %w", ErrClientGone, context.Cause(ctx)), keep
		case w.err == ErrClosed:
			return nil, w.err, keep
		case w.err != nil:
			b.obs.rejected(reasonTimeout)
			return nil, w.err, keep
		}
		// Try for itself, back at the head of the queue meanwhile so that
		// a slot freed during the try is not missed. No watcher is set
		// meanwhile: the client leaving is seen at the next wait.
		if !b.q.requeue(w) {
			return nil, ErrClosed, keep
		}
		c, err := b.try(w.st, w.avoid, w.unchecked)
		if c == nil && err == nil {
			continue
		}
		if !b.q.remove(w) {
			<-w.ch
			if w.c != nil {
				// Handed a second slot meanwhile (never with the request
				// written on it: the queue does not send for a waiter
				// that is trying for itself).
				if c == nil {
					c, err = w.c, nil
				} else {
					w.c.release()
				}
			}
		}
		// Capacity often comes in bulk (a new connection): the queue
		// hands out the rest.
		b.q.wake()
		return c, err, keep
	}
}

// leave takes w out of the queue for a client that went away, giving
// back whatever was handed to it meanwhile, and returns await's error.
func (b *Backend) leave(ctx context.Context, w *waiter) error {
	if !b.q.remove(w) {
		// It left the queue by another's hand just now.
		<-w.ch
		if w.c != nil {
			// Giving the slot back wakes the next waiter.
			b.giveBack(w.c, w.early, w.st)
		} else if w.err == nil {
			// It was to try for itself: let the next one.
			b.q.wake()
		}
	}
	b.obs.rejected(reasonClientGone)
	return fmt.Errorf("%w: %w", ErrClientGone, context.Cause(ctx))
}
