package upstream

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestAttemptCtx: the attempt's context ends once, with Err and Cause as
// context.WithCancelCause's would give them (Cause not the client's); contexts derived from
// it and context.AfterFunc follow it; OnCancel's watcher is called from
// the cancel, once, unless stopped; the deadline ends it with
// ErrTotalTimeout.
func TestAttemptCtx(t *testing.T) {
	if traceKey == nil {
		t.Fatal("httptrace's key not learnt")
	}
	type key struct{}
	client, leave := context.WithCancelCause(context.WithValue(context.Background(), key{}, "v"))
	leave(errors.New("client's cause"))

	var a attemptCtx
	a.start(client, nil, time.Time{})
	if a.Err() != nil || a.Value(key{}) != "v" {
		t.Fatalf("new context: Err %v, value %v; want nil and the client's", a.Err(), a.Value(key{}))
	}
	if _, ok := a.Deadline(); ok {
		t.Error("a deadline without a total timeout")
	}
	if c := context.Cause(&a); c != nil {
		t.Errorf("Cause %v before the end, want nil (not the client's)", c)
	}
	child, stopChild := context.WithCancel(&a)
	defer stopChild()
	fired := make(chan struct{})
	context.AfterFunc(&a, func() { close(fired) })
	stopped := false
	stop := context.AfterFunc(&a, func() { stopped = true })
	if !stop() {
		t.Error("AfterFunc's stop: false before the end")
	}
	var w watcher
	if !a.OnCancel(&w) {
		t.Fatal("OnCancel refused before the end")
	}
	done := a.Done()

	a.cancel(context.Canceled, ErrIdleTimeout)
	a.cancel(context.Canceled, ErrResponseHeaderTimeout) // ends once
	<-done
	<-child.Done()
	<-fired
	if a.Err() != context.Canceled || a.why() != ErrIdleTimeout || context.Cause(&a) != ErrIdleTimeout {
		t.Errorf("ended: Err %v, why %v, Cause %v", a.Err(), a.why(), context.Cause(&a))
	}
	if w.calls != 1 || stopped {
		t.Errorf("OnCancel's watcher called %d times, stopped AfterFunc ran: %v", w.calls, stopped)
	}
	if a.StopOnCancel() {
		t.Error("StopOnCancel true after the watcher was called")
	}
	if a.OnCancel(&w) {
		t.Error("OnCancel accepted after the end")
	}

	// Stopped in time, OnCancel's watcher is not called.
	var b attemptCtx
	b.start(context.Background(), nil, time.Time{})
	var wb watcher
	b.OnCancel(&wb)
	if !b.StopOnCancel() {
		t.Error("StopOnCancel false before the end")
	}
	b.cancel(context.Canceled, nil)
	if wb.calls != 0 {
		t.Error("stopped OnCancel watcher called")
	}
	if b.why() != context.Canceled || context.Cause(&b) != context.Canceled {
		t.Errorf("cancel(nil): why %v", b.why())
	}
	select {
	case <-b.Done():
	default:
		t.Error("Done asked for after the end is open")
	}

	synctest.Test(t, func(t *testing.T) {
		var d attemptCtx
		deadline := time.Now().Add(time.Second)
		d.start(context.Background(), nil, deadline)
		if dl, ok := d.Deadline(); !ok || !dl.Equal(deadline) {
			t.Errorf("Deadline %v %v, want %v", dl, ok, deadline)
		}
		<-d.Done()
		if time.Since(deadline) != 0 || d.Err() != context.DeadlineExceeded || context.Cause(&d) != ErrTotalTimeout {
			t.Errorf("at the deadline +%v: Err %v, why %v", time.Since(deadline), d.Err(), d.why())
		}
	})
}

type watcher struct{ calls int }

func (w *watcher) ContextEnded() { w.calls++ }

// TestAttemptCtxEnds: however the attempt's context ends (cancel with or
// without a cause, a deadline already past at start, the deadline's
// timer), its Done channel, asked for before or after, closes; Err,
// Cause and why are the end's, never the client's; contexts derived from
// it have ended when the end returns, with its Cause; the client's values
// stay.
func TestAttemptCtxEnds(t *testing.T) {
	type key struct{}
	errClient := errors.New("client's cause")
	for _, tt := range []struct {
		name       string
		deadline   time.Duration // from start; 0: none
		end        func(a *attemptCtx)
		doneBefore bool
		err, cause error
	}{
		{"cancel", 0, func(a *attemptCtx) { a.cancel(context.Canceled, nil) }, false, context.Canceled, context.Canceled},
		{"cancel, Done before", 0, func(a *attemptCtx) { a.cancel(context.Canceled, nil) }, true, context.Canceled, context.Canceled},
		{"cancel with a cause", 0, func(a *attemptCtx) { a.cancel(context.Canceled, ErrIdleTimeout) }, false, context.Canceled, ErrIdleTimeout},
		{"cancel with a cause, Done before", 0, func(a *attemptCtx) { a.cancel(context.Canceled, ErrIdleTimeout) }, true, context.Canceled, ErrIdleTimeout},
		{"deadline passed at start", -time.Second, nil, false, context.DeadlineExceeded, ErrTotalTimeout},
		{"deadline's timer", time.Second, func(*attemptCtx) { time.Sleep(time.Second); synctest.Wait() }, true, context.DeadlineExceeded, ErrTotalTimeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				client, leave := context.WithCancelCause(context.WithValue(context.Background(), key{}, "v"))
				leave(errClient)
				var deadline time.Time
				if tt.deadline != 0 {
					deadline = time.Now().Add(tt.deadline)
				}
				a := new(attemptCtx)
				a.start(client, nil, deadline)
				defer a.stop()
				var done <-chan struct{}
				var child context.Context
				if tt.end != nil {
					if a.Err() != nil || context.Cause(a) != nil || a.why() != nil {
						t.Fatalf("live: Err %v, Cause %v, why %v", a.Err(), context.Cause(a), a.why())
					}
					if tt.doneBefore {
						done = a.Done()
					}
					var stopChild context.CancelFunc
					child, stopChild = context.WithCancel(a)
					defer stopChild()
					tt.end(a)
				} else {
					child = a
				}
				if done == nil {
					done = a.Done()
				}
				select {
				case <-done:
				default:
					t.Fatal("Done open after the end")
				}
				if a.Err() != tt.err || context.Cause(a) != tt.cause || a.why() != tt.cause {
					t.Errorf("Err %v, Cause %v, why %v; want %v, %v", a.Err(), context.Cause(a), a.why(), tt.err, tt.cause)
				}
				if child.Err() != tt.err || context.Cause(child) != tt.cause {
					t.Errorf("derived: Err %v, Cause %v; want %v, %v", child.Err(), context.Cause(child), tt.err, tt.cause)
				}
				if a.Value(key{}) != "v" {
					t.Error("the client's value lost")
				}
			})
		})
	}
}
