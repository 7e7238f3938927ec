package upstream

// One attempt's lifetime: its upstream context, timers and connection slot
// (tracker), and the response body that ends them when the client is done.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
	"time"
)

// errClientLeft cancels an upstream request whose client left abortGrace ago.
var errClientLeft = errors.New("upstream: client left")

// tracker holds one attempt's upstream context, timers and slot, and ends
// them once. The attempt's context keeps the client's values but not its
// cancellation (context.WithoutCancel), so that the client leaving does not
// reset the stream at once; it is cancelled, with a cause, by the tracker's
// timers, by the client having left abortGrace ago, or by the total
// timeout's deadline. One allocation holds the trace hooks, the request
// and URL sent, and the response body wrapper.
type tracker struct {
	client context.Context // the client's: fire checks whether it left
	ctx    context.Context // the attempt's
	cancel context.CancelCauseFunc
	// stopTotal releases the total timeout's deadline, when there is one.
	stopTotal context.CancelFunc

	c     *pconn       // the connection whose slot the attempt holds
	out   http.Request // the attempt's copy of the request
	url   url.URL      // the attempt's copy of the request URL
	trace httptrace.ClientTrace
	wrote atomic.Bool // request headers written
	body  body
	stop  func() bool // unregisters from the client's context
	timer *time.Timer
	idle  time.Duration

	inBody   atomic.Bool
	leaving  atomic.Bool // the client left; the grace timer runs
	draining atomic.Bool // the body is drained on Close
	ended    bool
}

// newTracker starts an attempt on c's slot for a request of clientCtx: its
// context, and one timer, first the response header timeout (headerTimeout),
// then the idle timeout while the body streams; the timer's callback also
// runs when the client leaves. deadline, when not zero, ends the attempt
// with ErrTotalTimeout.
func newTracker(clientCtx context.Context, c *pconn, headerTimeout, idle time.Duration, deadline time.Time) *tracker {
	t := &tracker{client: clientCtx, c: c, idle: idle}
	ctx := context.WithoutCancel(clientCtx)
	if !deadline.IsZero() {
		ctx, t.stopTotal = context.WithDeadlineCause(ctx, deadline, ErrTotalTimeout)
	}
	t.ctx, t.cancel = context.WithCancelCause(ctx)
	t.trace.WroteHeaders = func() { t.wrote.Store(true) }
	fire := t.fire
	t.timer = time.AfterFunc(headerTimeout, fire)
	t.stop = context.AfterFunc(clientCtx, fire)
	return t
}

// cause is why the attempt was cancelled, or nil.
func (t *tracker) cause() error { return context.Cause(t.ctx) }

// fire runs when the timer expires or the client leaves.
func (t *tracker) fire() {
	switch {
	case t.draining.Load():
		t.cancel(ErrIdleTimeout)
	case t.client.Err() != nil:
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
	t.cancel(nil)
	if t.stopTotal != nil {
		t.stopTotal()
	}
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
