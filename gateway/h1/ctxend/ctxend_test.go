package ctxend

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// testCtx is a context made of a Notifier, as gateway/h1's and upstream's
// are: values of a parent that cannot end.
type testCtx struct {
	Notifier
	parent context.Context
}

func (c *testCtx) Deadline() (time.Time, bool) { return c.parent.Deadline() }

func (c *testCtx) Value(key any) any {
	if v, ok := c.OwnValue(key); ok {
		return v
	}
	return c.parent.Value(key)
}

type key struct{}

func newTestCtx() *testCtx {
	return &testCtx{parent: context.WithValue(context.Background(), key{}, "v")}
}

type watcherFunc func()

func (f watcherFunc) ContextEnded() { f() }

var errWhy = errors.New("why")

// TestNotifier: Done asked before or after the end is closed by it (and
// not before), Err and context.Cause are nil until the end, then End's
// (the cause when given one, err otherwise), End ends once, values are
// the parent's.
func TestNotifier(t *testing.T) {
	for _, tt := range []struct {
		name       string
		doneBefore bool // Done asked for before the end
		err, cause error
		wantCause  error
	}{
		{"canceled, Done after", false, context.Canceled, nil, context.Canceled},
		{"canceled, Done before", true, context.Canceled, nil, context.Canceled},
		{"cause, Done after", false, context.Canceled, errWhy, errWhy},
		{"deadline, cause, Done before", true, context.DeadlineExceeded, errWhy, context.DeadlineExceeded},
		{"cause err itself", false, context.DeadlineExceeded, context.DeadlineExceeded, context.DeadlineExceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cause != nil && tt.cause != tt.err {
				tt.wantCause = tt.cause
			}
			c := newTestCtx()
			if c.Err() != nil || context.Cause(c) != nil || c.Cause() != nil || c.Value(key{}) != "v" {
				t.Fatalf("live: Err %v, Cause %v, value %v", c.Err(), context.Cause(c), c.Value(key{}))
			}
			var done <-chan struct{}
			if tt.doneBefore {
				done = c.Done()
				if done != c.Done() {
					t.Error("Done returned another channel")
				}
				select {
				case <-done:
					t.Fatal("Done closed before the end")
				default:
				}
			}
			if !c.End(tt.err, tt.cause) {
				t.Error("End: false on a live context")
			}
			if c.End(context.Canceled, errors.New("later")) {
				t.Error("End: true on an ended context")
			}
			if !tt.doneBefore {
				done = c.Done()
			}
			select {
			case <-done:
			default:
				t.Error("Done open after the end")
			}
			if c.Err() != tt.err || context.Cause(c) != tt.wantCause || c.Cause() != tt.wantCause {
				t.Errorf("ended: Err %v, context.Cause %v, Cause %v; want %v, %v", c.Err(), context.Cause(c), c.Cause(), tt.err, tt.wantCause)
			}
			if c.Value(key{}) != "v" {
				t.Error("the parent's value lost at the end")
			}
		})
	}
}

// TestNotifierCallbacks: the end calls OnCancel's watcher (the last one
// set) and then AfterFunc's functions in the order registered, on End's
// goroutine, so that derived contexts (context.WithCancel,
// WithCancelCause, WithTimeout) have ended when End returns, with the
// context's Err and Cause; stopped ones are not called; after the end
// OnCancel is refused and AfterFunc's function runs at once.
func TestNotifierCallbacks(t *testing.T) {
	for _, tt := range []struct {
		name      string
		stop      []bool // per AfterFunc registration: stopped before the end
		stopWatch bool
		cause     error
	}{
		{"one", []bool{false}, false, nil},
		{"three in order", []bool{false, false, false}, false, nil},
		{"middle stopped", []bool{false, true, false}, false, errWhy},
		{"first and last stopped", []bool{true, false, true}, true, nil},
		{"all stopped", []bool{true, true}, true, errWhy},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCtx()
			var calls []string
			if !c.OnCancel(watcherFunc(func() { t.Error("replaced watcher called") })) ||
				!c.OnCancel(watcherFunc(func() { calls = append(calls, "watcher") })) {
				t.Fatal("OnCancel refused on a live context")
			}
			var want []string
			if tt.stopWatch {
				if !c.StopOnCancel() {
					t.Error("StopOnCancel: false with a watcher set")
				}
				if c.StopOnCancel() {
					t.Error("StopOnCancel: true twice")
				}
			} else {
				want = append(want, "watcher")
			}
			for i, stop := range tt.stop {
				name := string(rune('a' + i))
				s := c.AfterFunc(func() { calls = append(calls, name) })
				if stop {
					defer func() {
						if s() {
							t.Error("stop: true twice")
						}
					}()
					if !s() {
						t.Error("stop: false before the end")
					}
				} else {
					defer func() {
						if s() {
							t.Errorf("stop of %s: true after the end", name)
						}
					}()
					want = append(want, name)
				}
			}
			child, cancelChild := context.WithCancel(c)
			defer cancelChild()
			childCause, cancelCause := context.WithCancelCause(c)
			defer cancelCause(nil)
			timed, cancelTimed := context.WithTimeout(c, time.Hour)
			defer cancelTimed()
			stoppedChild, stopChild := context.WithCancel(c)
			stopChild()

			c.End(context.Canceled, tt.cause)
			if !slices.Equal(calls, want) {
				t.Errorf("called %q, want %q", calls, want)
			}
			wantCause := context.Canceled
			if tt.cause != nil {
				wantCause = tt.cause
			}
			for _, d := range []context.Context{child, childCause, timed} {
				if d.Err() != context.Canceled || context.Cause(d) != wantCause {
					t.Errorf("derived context when End returned: Err %v, Cause %v; want canceled, %v", d.Err(), context.Cause(d), wantCause)
				}
			}
			if context.Cause(stoppedChild) != context.Canceled {
				t.Errorf("a derived context cancelled first: Cause %v", context.Cause(stoppedChild))
			}
			if c.OnCancel(watcherFunc(func() { t.Error("watcher set after the end called") })) {
				t.Error("OnCancel accepted after the end")
			}
			ran := make(chan struct{})
			if c.AfterFunc(func() { close(ran) })() {
				t.Error("stop: true after the end")
			}
			<-ran
			late, cancelLate := context.WithCancel(c)
			defer cancelLate()
			if late.Err() != context.Canceled {
				t.Error("context derived after the end is live")
			}
			fired := make(chan struct{})
			context.AfterFunc(c, func() { close(fired) })
			<-fired
		})
	}
}

// TestNotifierRaces: OnCancel, StopOnCancel, AfterFunc and its stop, Done
// and derived contexts racing End (for the race detector): the watcher is
// called at most once, exactly when StopOnCancel then reports false, and
// every registration not stopped runs once.
func TestNotifierRaces(t *testing.T) {
	for range 200 {
		c := newTestCtx()
		var mu sync.Mutex
		watched := 0
		w := watcherFunc(func() {
			mu.Lock()
			watched++
			mu.Unlock()
		})
		var wg sync.WaitGroup
		var set, stopped bool
		wg.Go(func() {
			set = c.OnCancel(w)
			if set {
				stopped = c.StopOnCancel()
			}
		})
		var afterRan, derivedDone sync.WaitGroup
		afterRan.Add(1)
		ran := 0
		wg.Go(func() {
			stop := c.AfterFunc(func() {
				mu.Lock()
				ran++
				mu.Unlock()
				afterRan.Done()
			})
			if stop() {
				afterRan.Done()
			}
		})
		derivedDone.Add(1)
		wg.Go(func() {
			d, cancel := context.WithCancel(c)
			defer cancel()
			<-d.Done()
			derivedDone.Done()
		})
		wg.Go(func() { <-c.Done() })
		wg.Go(func() { c.End(context.Canceled, nil) })
		wg.Wait()
		afterRan.Wait()
		derivedDone.Wait()
		mu.Lock()
		if set && stopped == (watched == 1) || !set && watched != 0 || watched > 1 || ran > 1 {
			t.Fatalf("OnCancel %v, StopOnCancel %v, watcher called %d times; AfterFunc's function %d times", set, stopped, watched, ran)
		}
		mu.Unlock()
	}
}

// TestNotifierAllocs: a context made of a Notifier ends without
// allocating when nobody asked for Done, a watcher included (the context
// lives in an allocation of its user's).
func TestNotifierAllocs(t *testing.T) {
	w := watcherFunc(func() {})
	const runs = 100
	ctxs := make([]testCtx, runs+1) // AllocsPerRun runs once more to warm up
	i := 0
	if n := testing.AllocsPerRun(runs, func() {
		c := &ctxs[i]
		i++
		c.parent = context.Background()
		c.OnCancel(w)
		c.End(context.Canceled, nil)
		if c.Err() == nil || context.Cause(c) != context.Canceled {
			t.Fatal("not ended")
		}
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// TestKeyAsked: the keys learnt are the ones the context package and a
// WithValue context look up.
func TestKeyAsked(t *testing.T) {
	if causeKey == nil {
		t.Fatal("context.Cause's key not learnt")
	}
	type k struct{}
	if got := KeyAsked(func(c context.Context) { c.Value(k{}); c.Value("second") }); got != (k{}) {
		t.Errorf("KeyAsked: %v, want the first key asked", got)
	}
}
