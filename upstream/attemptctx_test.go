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
