package upstream

// One attempt's lifetime: its upstream context, timers and connection slot
// (tracker), and the response body that ends them when the client is done.

import (
	"context"
	"errors"
	"io"
	"net/http/httptrace"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// errClientLeft cancels an upstream request whose client left abortGrace ago.
var errClientLeft = errors.New("upstream: client left")

// tracker holds one attempt's upstream context, timers and slot, and ends
// them once. It is the attempt's context.Context: values come from the
// client's context, cancellation from the tracker alone, so that the
// client leaving does not reset the stream at once. One allocation holds
// the context, the trace hooks and the response body wrapper.
type tracker struct {
	parent   context.Context // the client's: values only
	deadline time.Time       // total timeout, or zero
	done     chan struct{}   // closed by cancel

	mu     sync.Mutex // guards err, reason and afters
	err    error      // context.Canceled or DeadlineExceeded once cancelled
	reason error      // the cause given to cancel
	afters []*afterFunc

	c     *pconn  // the connection whose slot the attempt holds
	url   url.URL // the attempt's copy of the request URL
	trace httptrace.ClientTrace
	wrote atomic.Bool // request headers written
	body  body
	stop  func() bool // unregisters from the client's context
	timer *time.Timer
	total *time.Timer // the total timeout, when there is one
	idle  time.Duration

	inBody   atomic.Bool
	leaving  atomic.Bool // the client left; the grace timer runs
	draining atomic.Bool // the body is drained on Close
	ended    bool
}

var _ context.Context = (*tracker)(nil)

func (t *tracker) Deadline() (time.Time, bool) { return t.deadline, !t.deadline.IsZero() }
func (t *tracker) Done() <-chan struct{}       { return t.done }
func (t *tracker) Value(key any) any           { return t.parent.Value(key) }

func (t *tracker) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// cause is why the attempt was cancelled, or nil.
func (t *tracker) cause() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reason
}

// cancel ends the attempt's context with cause (nil: context.Canceled).
func (t *tracker) cancel(cause error) {
	t.mu.Lock()
	if t.err != nil {
		t.mu.Unlock()
		return
	}
	t.err = context.Canceled
	if cause == ErrTotalTimeout {
		t.err = context.DeadlineExceeded
	}
	if cause == nil {
		cause = t.err
	}
	t.reason = cause
	close(t.done)
	afters := t.afters
	t.afters = nil
	t.mu.Unlock()
	for _, a := range afters {
		go a.f()
	}
}

type afterFunc struct{ f func() }

// AfterFunc lets contexts derived from the tracker (net/http's HTTP/1.1
// client derives one per request) follow its cancellation without a
// goroutine each, as context.AfterFunc would.
func (t *tracker) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	t.mu.Lock()
	if t.err != nil {
		t.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	t.afters = append(t.afters, a)
	t.mu.Unlock()
	return func() bool {
		t.mu.Lock()
		defer t.mu.Unlock()
		for i, x := range t.afters {
			if x == a {
				t.afters = append(t.afters[:i], t.afters[i+1:]...)
				return true
			}
		}
		return false
	}
}

// fire runs when the timer expires or the client leaves.
func (t *tracker) fire() {
	switch {
	case t.draining.Load():
		t.cancel(ErrIdleTimeout)
	case t.parent.Err() != nil:
		// The client left: the request gets abortGrace to finish before
		// it is reset.
		if t.leaving.CompareAndSwap(false, true) {
			time.AfterFunc(abortGrace, func() { t.cancel(errClientLeft) })
		}
	case t.inBody.Load():
		t.cancel(ErrIdleTimeout)
	default:
		t.cancel(ErrResponseHeaderTimeout)
	}
}

func (t *tracker) totalExpired() { t.cancel(ErrTotalTimeout) }

// bodyPhase switches the timer to the idle timeout.
func (t *tracker) bodyPhase() {
	t.inBody.Store(true)
	if t.idle > 0 {
		t.timer.Reset(t.idle)
	} else {
		t.timer.Stop()
	}
}

func (t *tracker) finish() {
	if t.ended {
		return
	}
	t.ended = true
	t.timer.Stop()
	t.stop()
	if t.total != nil {
		t.total.Stop()
	}
	t.cancel(nil)
	t.c.server().active.Add(-1)
	t.c.pool.done()
}

// body wraps a response body so that closing it early drains (or, over
// h2c, abandons) instead of resetting the stream, so that a stalled stream ends after the idle
// timeout, and so the request's slot is accounted for.
type body struct {
	rc  io.ReadCloser
	t   *tracker
	eof bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		// Say which of our timeouts ended the stream, not just "canceled".
		if c := b.t.cause(); c == ErrIdleTimeout || c == ErrTotalTimeout {
			err = c
		}
	case b.t.idle > 0:
		b.t.timer.Reset(b.t.idle)
	}
	return n, err
}

// abandoner is a response body that can be dropped without blocking and
// without an immediate reset: the h2c client's (client.Body.Abandon).
type abandoner interface{ Abandon(grace time.Duration) }

func (b *body) Close() error {
	if a, ok := b.rc.(abandoner); ok && !b.eof {
		// The connection's reader drops the rest and resets the stream
		// only if it has not ended within abortGrace; the caller does not
		// wait for it.
		a.Abandon(abortGrace)
		b.t.finish()
		return nil
	}
	if !b.eof {
		// Bound the drain in time as well as in bytes.
		b.t.draining.Store(true)
		b.t.timer.Reset(abortGrace)
		io.CopyN(io.Discard, b.rc, drainLimit)
	}
	err := b.rc.Close()
	b.t.finish()
	return err
}

type upgradedBody struct {
	io.ReadWriteCloser
	t *tracker
}

func (u *upgradedBody) Close() error {
	err := u.ReadWriteCloser.Close()
	u.t.finish()
	return err
}
