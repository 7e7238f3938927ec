package upstream

// One attempt's lifetime: its upstream context, timeouts and connection slot
// (tracker, swept by its backend's attempts), and the response body that ends them when the client is done.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// errClientLeft cancels an upstream request whose client left abortGrace ago.
var errClientLeft = errors.New("upstream: client left")

// sweepEvery is how often a backend's attempts in flight are checked for
// their timeouts and for clients gone (attempts.sweep). Those fire up to
// two sweeps late, and never early.
const sweepEvery = 50 * time.Millisecond

// Phases of an attempt, as the sweep sees them.
const (
	phaseHeaders  int32 = iota // awaiting response headers: the header timeout
	phaseBody                  // the body streams: the idle timeout
	phaseDraining              // Close drains the rest: abortGrace
	phaseNone                  // upgraded: no timeout of a request
)

// tracker holds one attempt's upstream context, timeouts and slot, and ends
// them once. The attempt's context keeps the client's values but not its
// cancellation (see attemptCtx), so that the client leaving does not
// reset the stream at once; it is cancelled, with a cause, by its
// backend's sweep (the header and idle timeouts, the client having left
// abortGrace ago), or by the total timeout's deadline. No timer and no
// context registration per attempt: the sweep checks every attempt in
// flight each sweepEvery. One allocation holds the context, the trace
// hooks, the request and URL sent, and the response body wrapper.
type tracker struct {
	client context.Context // the client's: the sweep checks whether it left
	ctx    attemptCtx      // the attempt's

	c     *pconn                // the connection whose slot the attempt holds
	out   http.Request          // the attempt's copy of the request
	url   url.URL               // the attempt's copy of the request URL
	trace httptrace.ClientTrace // the caller's hooks; the tracker's own WroteHeaders is ctx's
	body  body

	header, idle time.Duration
	// phase and reads are the request side's news for the sweep: which
	// timeout applies, and a count of body reads (each restarts the idle
	// timeout).
	phase atomic.Int32
	reads atomic.Uint64

	// The sweep's own, guarded by attempts.mu: the set's links, whether
	// the attempt is in it, the phase and reads it saw last, since when
	// (UnixNano) the current timeout runs, and when it saw the client
	// gone (0: not yet).
	set        *attempts
	prev, next *tracker
	listed     bool
	seenPhase  int32
	seenReads  uint64
	since      int64
	leftAt     int64

	ended bool
}

// newTracker starts an attempt on c's slot for a request of clientCtx,
// with the caller's trace hooks (nil: none): its context, watched by set
// for the response header timeout (headerTimeout), then the idle timeout
// while the body streams, and for the client leaving. deadline, when not
// zero, ends the attempt with ErrTotalTimeout.
func newTracker(set *attempts, clientCtx context.Context, hooks *httptrace.ClientTrace, c *pconn, headerTimeout, idle time.Duration, deadline time.Time) *tracker {
	t := &tracker{client: clientCtx, c: c, header: headerTimeout, idle: idle}
	// The caller's hooks (Got1xxResponse, WroteHeaders) are passed on as
	// they are; the clients tell the attempt's context of the written
	// headers themselves (attemptCtx.HeadersWritten), so the tracker
	// needs no hook, and no closure, of its own.
	if hooks != nil {
		t.trace = *hooks
	}
	t.ctx.start(clientCtx, &t.trace, deadline)
	set.add(t)
	return t
}

// cancel ends the attempt's context with cause (context.Canceled when
// nil).
func (t *tracker) cancel(cause error) { t.ctx.cancel(context.Canceled, cause) }

// cause is why the attempt was cancelled, or nil.
func (t *tracker) cause() error { return t.ctx.why() }

// bodyPhase switches to the idle timeout.
func (t *tracker) bodyPhase() { t.phase.Store(phaseBody) }

// noTimeouts ends the request timeouts of an upgraded connection; the
// client leaving still ends it.
func (t *tracker) noTimeouts() { t.phase.Store(phaseNone) }

// due is the sweep's check at now: the cause to cancel the attempt with,
// or nil. Called with attempts.mu held.
func (t *tracker) due(now int64) error {
	ph := t.phase.Load()
	if ph != t.seenPhase {
		t.seenPhase, t.since = ph, now
	}
	if r := t.reads.Load(); r != t.seenReads {
		t.seenReads, t.since = r, now
	}
	left := t.client.Err() != nil
	switch {
	case ph == phaseDraining:
		if left || now-t.since >= int64(abortGrace) {
			return ErrIdleTimeout
		}
	case left:
		// The client left: the request gets abortGrace to finish before
		// it is reset.
		if t.leftAt == 0 {
			t.leftAt = now
		} else if now-t.leftAt >= int64(abortGrace) {
			return errClientLeft
		}
	case ph == phaseHeaders:
		if now-t.since >= int64(t.header) {
			return ErrResponseHeaderTimeout
		}
	case ph == phaseBody:
		if t.idle > 0 && now-t.since >= int64(t.idle) {
			return ErrIdleTimeout
		}
	}
	return nil
}

func (t *tracker) finish() {
	if t.ended {
		return
	}
	t.ended = true
	t.set.remove(t)
	t.cancel(nil)
	t.ctx.stop()
	t.c.server().active.Add(-1)
	t.c.done()
}

// attempts is the set of a backend's attempts in flight. While it is not
// empty a timer sweeps it every sweepEvery, cancelling the attempts whose
// timeout passed or whose client left abortGrace ago. Adding and removing
// take a short lock; an attempt costs no timer of its own.
type attempts struct {
	mu    sync.Mutex // guards the list, armed and the trackers' sweep fields
	head  *tracker
	armed bool // the timer will sweep
	timer *time.Timer
}

func (a *attempts) add(t *tracker) {
	now := time.Now().UnixNano()
	a.mu.Lock()
	t.set, t.listed, t.since = a, true, now
	t.next = a.head
	if a.head != nil {
		a.head.prev = t
	}
	a.head = t
	if !a.armed {
		a.armed = true
		if a.timer == nil {
			a.timer = time.AfterFunc(sweepEvery, a.sweep)
		} else {
			a.timer.Reset(sweepEvery)
		}
	}
	a.mu.Unlock()
}

func (a *attempts) remove(t *tracker) {
	a.mu.Lock()
	a.unlinkLocked(t)
	a.mu.Unlock()
}

func (a *attempts) unlinkLocked(t *tracker) {
	if !t.listed {
		return
	}
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		a.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	t.prev, t.next, t.listed = nil, nil, false
}

// sweep cancels the attempts that are due, outside the lock, and runs
// again after sweepEvery while any attempt is in flight.
func (a *attempts) sweep() {
	type due struct {
		t     *tracker
		cause error
	}
	var fire []due
	now := time.Now().UnixNano()
	a.mu.Lock()
	for t := a.head; t != nil; {
		next := t.next
		if cause := t.due(now); cause != nil {
			a.unlinkLocked(t)
			fire = append(fire, due{t, cause})
		}
		t = next
	}
	a.armed = a.head != nil
	if a.armed {
		a.timer.Reset(sweepEvery)
	}
	a.mu.Unlock()
	for _, d := range fire {
		d.t.cancel(d.cause)
	}
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
	default:
		// Restarts the idle timeout (tracker.due).
		b.t.reads.Add(1)
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
		b.t.phase.Store(phaseDraining)
		io.CopyN(io.Discard, b.rc, drainLimit)
	}
	err := b.rc.Close()
	handedOn := b.t.c.handedOn.Swap(false)
	b.t.finish()
	if handedOn {
		yieldAfterHandOver()
	}
	return err
}

// yieldAfterHandOver lets the goroutines that are runnable run before
// the caller, whose answer has ended and whose HTTP/1.1 connection went
// on, with the next queued request's head written on it, to that
// request. Answers come in on many connections in one network poll;
// yielding here has their goroutines hand their connections over before
// any of them goes on to write to its client, so the next requests reach
// the server closer together. Measured, that made Tomcat's CPU per
// request behind the pool about a fifth lower (BENCHMARKS.md, thirteenth
// session). A variable for tests.
var yieldAfterHandOver = runtime.Gosched

type upgradedBody struct {
	io.ReadWriteCloser
	t *tracker
}

func (u *upgradedBody) Close() error {
	err := u.ReadWriteCloser.Close()
	u.t.finish()
	return err
}
