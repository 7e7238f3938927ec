// Package ctxend is the ending half of a hand-made context.Context: its
// Done channel, made only when asked for, its Err and Cause, and the
// callbacks its end runs (one watcher set by OnCancel, the
// h1compat/client.CancelNotifier shape, and context.AfterFunc's
// registrations). A context embeds a Notifier and adds its values and
// deadline; gateway/h1's request context and upstream's attempt context
// are built so, and allocate nothing until someone asks for Done.
//
// End runs the callbacks on its caller's goroutine. The one goroutine it
// starts runs an AfterFunc registered after the end, which ends at once.
package ctxend

import (
	"context"
	"sync"
)

// Watcher is told of a context's end by OnCancel's registration.
type Watcher interface{ ContextEnded() }

// Notifier is a context's end. Its zero value is a live context's; it
// must not be copied once used.
type Notifier struct {
	mu   sync.Mutex    // guards the fields below
	done chan struct{} // made by Done, closed by End; closedChan if asked for after it
	err  error         // nil until End
	// causeCtx is a context ended with the cause End was given, when
	// that is not err, for context.Cause to find under its key; nil
	// otherwise, so that an end without a cause of its own costs nothing.
	causeCtx context.Context
	watcher  Watcher // OnCancel's
	afters   *after  // AfterFunc's, in the order registered
}

type after struct {
	f    func()
	next *after
}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Done is context.Context's Done: a channel closed by End, made on the
// first call.
func (n *Notifier) Done() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		if n.err != nil {
			n.done = closedChan
		} else {
			n.done = make(chan struct{})
		}
	}
	return n.done
}

// Err is context.Context's Err: nil until End, End's err after.
func (n *Notifier) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// Cause is what context.Cause reports of the context: nil until End,
// then End's cause.
func (n *Notifier) Cause() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.causeCtx != nil {
		return context.Cause(n.causeCtx)
	}
	return n.err
}

// OwnValue answers the context keys the Notifier owns (context.Cause's);
// ok is false for the others, which the embedding context answers. A
// context whose values come from another must ask it first: that one's
// cancellation is not this context's.
func (n *Notifier) OwnValue(key any) (v any, ok bool) {
	if key != causeKey {
		return nil, false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.causeCtx == nil {
		return nil, true // context.Cause then reports Err
	}
	return n.causeCtx.Value(key), true
}

// End ends the context with err (context.Canceled or DeadlineExceeded)
// and cause (err when nil), unless it has ended already; it reports
// whether it did. It then calls OnCancel's watcher and AfterFunc's
// functions, in the order registered, on the caller's goroutine:
// contexts derived from this one have ended when End returns
// (context.AfterFunc's own f still runs in a goroutine of its own, which
// the context package starts).
func (n *Notifier) End(err, cause error) bool {
	n.mu.Lock()
	if n.err != nil {
		n.mu.Unlock()
		return false
	}
	n.err = err
	if cause != nil && cause != err {
		cc, end := context.WithCancelCause(context.Background())
		end(cause)
		n.causeCtx = cc
	}
	if n.done == nil {
		n.done = closedChan
	} else {
		close(n.done)
	}
	w, afters := n.watcher, n.afters
	n.watcher, n.afters = nil, nil
	n.mu.Unlock()
	if w != nil {
		w.ContextEnded()
	}
	for a := afters; a != nil; a = a.next {
		a.f()
	}
	return true
}

// OnCancel arranges for w's ContextEnded to be called, from the goroutine
// that ends the context, when it ends, in place of an earlier OnCancel's.
// It reports false, and does not keep w, when the context has ended
// already. This is context.AfterFunc without its allocations (w is
// typically a pointer to the watcher's own state, no closure), as
// h1compat/client.CancelNotifier describes it.
func (n *Notifier) OnCancel(w interface{ ContextEnded() }) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err != nil {
		return false
	}
	n.watcher = w
	return true
}

// StopOnCancel forgets OnCancel's watcher. It reports false if the
// watcher was called (or is being called) or none was set.
func (n *Notifier) StopOnCancel() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	had := n.watcher != nil
	n.watcher = nil
	return had
}

// AfterFunc is context.AfterFunc's way into the context (the method it
// looks for): f is called by End unless stop is called first, so that a
// derived context costs no goroutine. The context package's f are short
// (they end a derived context, or start context.AfterFunc's function in
// a goroutine), which is what lets End call them on its goroutine. On a
// context that has ended f runs at once in a goroutine of its own: its
// caller may hold a lock f takes.
func (n *Notifier) AfterFunc(f func()) (stop func() bool) {
	a := &after{f: f}
	n.mu.Lock()
	if n.err != nil {
		n.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	p := &n.afters
	for *p != nil {
		p = &(*p).next
	}
	*p = a
	n.mu.Unlock()
	return func() bool { return n.stopAfter(a) }
}

// stopAfter takes a out of the registrations; false if End took it.
func (n *Notifier) stopAfter(a *after) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for p := &n.afters; *p != nil; p = &(*p).next {
		if *p == a {
			*p = a.next
			return true
		}
	}
	return false
}

// causeKey is the key under which context.Cause looks for a context's
// cancelCtx.
var causeKey = KeyAsked(func(c context.Context) { context.Cause(c) })

// KeyAsked is the first key ask looks up in the context it is given (a
// context whose Err is not nil, so that context.Cause goes on to look):
// how a hand-made context learns an unexported key it answers itself.
func KeyAsked(ask func(context.Context)) any {
	var k keySpy
	ask(&k)
	return k.key
}

// keySpy is a context that records the first key it is asked for.
type keySpy struct {
	context.Context
	key   any
	asked bool
}

func (k *keySpy) Value(key any) any {
	if !k.asked {
		k.key, k.asked = key, true
	}
	return nil
}

func (*keySpy) Err() error { return context.Canceled }
