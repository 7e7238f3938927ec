package upstream

// An attempt's context: the client's values without its cancellation, the
// attempt's trace hooks, and a cancellation of its own that costs no
// allocation until someone asks for its Done channel.

import (
	"context"
	"net/http/httptrace"
	"sync"
	"time"

	h1client "github.com/sluice-gw/sluice/h1compat/client"
)

// attemptCtx is the context an attempt's request carries. It lives in the
// tracker, so it costs no allocation of its own; its Done channel is made
// only when asked for (neither HTTP client asks: they learn of the
// cancellation through OnCancel). It ends when cancel is called, or at
// its deadline (the total timeout).
type attemptCtx struct {
	client   context.Context // the client's: its values, not its cancellation
	trace    *httptrace.ClientTrace
	deadline time.Time   // zero: none
	timer    *time.Timer // ends the context at deadline; nil without one

	mu    sync.Mutex    // guards done, err, cause, causeCtx, notify, afters and nextID
	done  chan struct{} // made by Done, closed by cancel; closedChan if asked for after
	err   error         // context.Canceled or DeadlineExceeded once ended
	cause error         // why it ended: err, or the cancel's cause
	// causeCtx is what context.Cause finds under its key once the context
	// ended with a cause of its own: a cancelCtx holding it. Made then,
	// so a context ended without one (finish) costs nothing.
	causeCtx any
	notify   interface{ ContextEnded() } // OnCancel's
	afters   []afterFunc                 // AfterFunc's, in the order registered
	nextID   uint64                      // the next AfterFunc's id
}

type afterFunc struct {
	id uint64
	f  func()
}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

var _ context.Context = (*attemptCtx)(nil)

// start sets up a context for clientCtx with trace, ending with
// ErrTotalTimeout at deadline unless that is zero.
func (a *attemptCtx) start(clientCtx context.Context, trace *httptrace.ClientTrace, deadline time.Time) {
	a.client, a.trace, a.deadline = clientCtx, trace, deadline
	if deadline.IsZero() {
		return
	}
	d := time.Until(deadline)
	if d <= 0 {
		a.cancel(context.DeadlineExceeded, ErrTotalTimeout)
		return
	}
	a.timer = time.AfterFunc(d, func() { a.cancel(context.DeadlineExceeded, ErrTotalTimeout) })
}

// stop releases the deadline's timer.
func (a *attemptCtx) stop() {
	if a.timer != nil {
		a.timer.Stop()
	}
}

func (a *attemptCtx) Deadline() (time.Time, bool) { return a.deadline, !a.deadline.IsZero() }

func (a *attemptCtx) Done() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done == nil {
		if a.err != nil {
			a.done = closedChan
		} else {
			a.done = make(chan struct{})
		}
	}
	return a.done
}

func (a *attemptCtx) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Value answers the trace key with the attempt's trace, and context.Cause's
// key with causeCtx (the client's cancelCtx is not the attempt's); the
// rest are the client's.
func (a *attemptCtx) Value(key any) any {
	switch key {
	case traceKey:
		return a.trace
	case causeKey:
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.causeCtx
	}
	return a.client.Value(key)
}

// why is the cause the context ended with, or nil.
func (a *attemptCtx) why() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cause
}

// cancel ends the context with err (context.Canceled or
// DeadlineExceeded) and cause (err when nil), once; it then calls
// OnCancel's watcher, and starts AfterFunc's.
func (a *attemptCtx) cancel(err, cause error) {
	if cause == nil {
		cause = err
	}
	a.mu.Lock()
	if a.err != nil {
		a.mu.Unlock()
		return
	}
	a.err, a.cause = err, cause
	if cause != err {
		cc, end := context.WithCancelCause(context.Background())
		end(cause)
		a.causeCtx = cc.Value(causeKey)
	}
	if a.done == nil {
		a.done = closedChan
	} else {
		close(a.done)
	}
	notify, afters := a.notify, a.afters
	a.notify, a.afters = nil, nil
	a.mu.Unlock()
	if notify != nil {
		notify.ContextEnded()
	}
	for _, af := range afters {
		go af.f()
	}
}

// OnCancel arranges for w's ContextEnded to be called, from the goroutine
// that cancels the context, when it ends, in place of an earlier
// OnCancel's. It reports false, and does not keep w, when the context has
// ended already. This is context.AfterFunc without its allocations (w is
// typically a pointer to the watcher's own state, no closure), for the
// HTTP clients (h1compat/client, h2c/client), which watch the attempt's
// context this way.
func (a *attemptCtx) OnCancel(w interface{ ContextEnded() }) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return false
	}
	a.notify = w
	return true
}

// StopOnCancel forgets OnCancel's function. It reports false if the
// function was called (or is being called) or none was set.
func (a *attemptCtx) StopOnCancel() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	had := a.notify != nil
	a.notify = nil
	return had
}

// AfterFunc is context.AfterFunc's way into the context (its afterFuncer):
// f runs in its own goroutine once the context ends, unless stop is
// called first. Contexts derived from the attempt's register here rather
// than with a goroutine of their own.
func (a *attemptCtx) AfterFunc(f func()) (stop func() bool) {
	a.mu.Lock()
	if a.err != nil {
		a.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	id := a.nextID
	a.nextID++
	a.afters = append(a.afters, afterFunc{id: id, f: f})
	a.mu.Unlock()
	return func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		for i, af := range a.afters {
			if af.id == id {
				a.afters = append(a.afters[:i], a.afters[i+1:]...)
				return true
			}
		}
		return false
	}
}

// causeKey is the key under which context.Cause looks for a context's
// cancelCtx, learnt once as traceKey is.
var causeKey = func() any {
	var k keySpy
	context.Cause(&k)
	return k.key
}()

// The HTTP/1.1 client watches an attempt's context through OnCancel.
var _ h1client.CancelNotifier = (*attemptCtx)(nil)
