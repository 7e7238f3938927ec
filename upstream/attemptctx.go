package upstream

// An attempt's context: the client's values without its cancellation, the
// attempt's trace hooks, and a cancellation of its own that costs no
// allocation until someone asks for its Done channel.

import (
	"context"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/gateway/h1/ctxend"
	h1client "github.com/sluice-gw/sluice/h1compat/client"
)

// attemptCtx is the context an attempt's request carries. It lives in the
// tracker, so it costs no allocation of its own; its Done channel is made
// only when asked for (neither HTTP client asks: they learn of the
// cancellation through OnCancel). It ends when cancel is called, or at
// its deadline (the total timeout). Its end, Err, Cause, OnCancel and
// AfterFunc are the Notifier's.
type attemptCtx struct {
	ctxend.Notifier
	client   context.Context // the client's: its values, not its cancellation
	trace    *httptrace.ClientTrace
	deadline time.Time   // zero: none
	timer    *time.Timer // ends the context at deadline; nil without one
	wrote    atomic.Bool // the request's headers were written (HeadersWritten)
}

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

// HeadersWritten is told by the HTTP clients (h2c/client,
// h1compat/client) that the attempt's request headers were written, from
// the goroutine writing them: after that the server may have seen the
// request (send's wrote). A method of the context rather than a
// WroteHeaders hook in the trace, which would be a closure per attempt.
func (a *attemptCtx) HeadersWritten() { a.wrote.Store(true) }

// stop releases the deadline's timer.
func (a *attemptCtx) stop() {
	if a.timer != nil {
		a.timer.Stop()
	}
}

func (a *attemptCtx) Deadline() (time.Time, bool) { return a.deadline, !a.deadline.IsZero() }

// Value answers the trace key with the attempt's trace, and context.Cause's
// key with the attempt's end (the client's cancellation is not the
// attempt's); the rest are the client's.
func (a *attemptCtx) Value(key any) any {
	if key == traceKey {
		return a.trace
	}
	if v, ok := a.OwnValue(key); ok {
		return v
	}
	return a.client.Value(key)
}

// why is the cause the context ended with, or nil.
func (a *attemptCtx) why() error { return a.Cause() }

// cancel ends the context with err (context.Canceled or
// DeadlineExceeded) and cause (err when nil), once; it then calls
// OnCancel's watcher and AfterFunc's functions (ctxend.Notifier.End).
func (a *attemptCtx) cancel(err, cause error) { a.End(err, cause) }

// traceKey is the context key under which net/http/httptrace keeps a
// request's ClientTrace, learnt once from ContextClientTrace. An
// attempt's context answers it with the tracker's trace (Value), so that
// an attempt needs neither httptrace.WithClientTrace's context nor its
// reflective composition of two traces.
var traceKey = ctxend.KeyAsked(func(c context.Context) { httptrace.ContextClientTrace(c) })

// The HTTP/1.1 client watches an attempt's context through OnCancel.
var _ h1client.CancelNotifier = (*attemptCtx)(nil)
