package upstream

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// newQueueBackend is a backend of one server whose only connection (a
// fakeConn) has one slot, and that slot, taken.
func newQueueBackend(t *testing.T, queueTimeout time.Duration) (*Backend, *pconn) {
	t.Helper()
	b := newTestBackend(t, Config{
		Protocol: H2C, Servers: []ServerConfig{{Address: "a:1"}},
		Queue: QueueConfig{MaxPending: 10, Timeout: queueTimeout},
	})
	installFake(t, b.Servers()[0], http.StatusOK, 1)
	held, err := b.try(b.cur(), nil, false)
	if err != nil || held == nil {
		t.Fatalf("taking the only slot: %v, %v", held, err)
	}
	return b, held
}

// TestAcquireAllocs pins what taking a slot allocates: nothing when one is
// free, and nothing when the request waits in the queue and is handed a
// slot that another request gives back (the waiter and its channel are
// pooled, and no timer is made per waiter).
func TestAcquireAllocs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx.Done() // the client's context has made its channel already

	t.Run("free slot", func(t *testing.T) {
		b, held := newQueueBackend(t, time.Minute)
		held.release()
		st := b.cur()
		allocs := testing.AllocsPerRun(100, func() {
			c, err := b.acquire(ctx, st, nil, time.Time{}, nil, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			c.release()
		})
		if allocs != 0 {
			t.Errorf("acquire with a free slot: %v allocations, want 0", allocs)
		}
	})

	t.Run("queued", func(t *testing.T) {
		b, held := newQueueBackend(t, time.Minute)
		st := b.cur()
		start, got := make(chan struct{}), make(chan *pconn)
		defer close(start)
		go func() {
			for range start {
				c, err := b.acquire(ctx, st, nil, time.Time{}, nil, nil, false)
				if err != nil {
					t.Error(err)
				}
				got <- c
			}
		}()
		allocs := testing.AllocsPerRun(100, func() {
			start <- struct{}{}
			for b.q.len() == 0 {
				runtime.Gosched()
			}
			// The queued request gets this slot, and gives it back next run.
			held.release()
			held = <-got
		})
		held.release()
		if allocs != 0 {
			t.Errorf("acquire through the queue: %v allocations, want 0", allocs)
		}
	})
}

// TestQueueHandsSlotToHead: a slot given back goes to the request at the
// head of the queue, not to one arriving at that moment. When the queue
// only woke its head to look for the slot, a newcomer that saw an empty
// queue took it first.
func TestQueueHandsSlotToHead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, held := newQueueBackend(t, time.Minute)
		st := b.cur()
		first := make(chan *pconn, 1)
		go func() {
			c, err := b.acquire(context.Background(), st, nil, time.Time{}, nil, nil, false)
			if err != nil {
				t.Errorf("first in line: %v", err)
			}
			first <- c
		}()
		synctest.Wait()
		if n := b.q.len(); n != 1 {
			t.Fatalf("%d queued, want 1", n)
		}
		held.release()
		// A newcomer, at once: it must queue behind, and here gives up
		// after a second.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if c, err := b.acquire(ctx, st, nil, time.Time{}, nil, nil, false); err == nil {
			c.release()
			t.Fatal("the newcomer took the slot given back; the head of the queue should have")
		} else if !errors.Is(err, ErrClientGone) {
			t.Errorf("newcomer: %v, want %v", err, ErrClientGone)
		}
		c := <-first
		if c == nil {
			t.Fatal("the head of the queue got no slot")
		}
		c.release()
	})
}

// TestQueueDeadlinesOutOfOrder: the queue's one timer still ends each
// wait at its own deadline when a later waiter's (a retry's total
// timeout) comes before an earlier one's.
func TestQueueDeadlinesOutOfOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const queueTimeout = 5 * time.Second
		b, held := newQueueBackend(t, queueTimeout)
		defer held.release()
		st := b.cur()
		start := time.Now()
		type result struct {
			name string
			d    time.Duration
			err  error
		}
		done := make(chan result, 2)
		run := func(name string, deadline time.Time) {
			_, err := b.acquire(context.Background(), st, nil, deadline, nil, nil, false)
			done <- result{name, time.Since(start), err}
		}
		go run("first", time.Time{})
		time.Sleep(time.Second)
		go run("second", time.Now().Add(2*time.Second))
		want := []result{
			{"second", 3 * time.Second, ErrTotalTimeout},
			{"first", queueTimeout, ErrQueueTimeout},
		}
		for _, w := range want {
			r := <-done
			if r.name != w.name || r.d != w.d || !errors.Is(r.err, w.err) {
				t.Errorf("got %s after %v with %v, want %s after %v with %v", r.name, r.d, r.err, w.name, w.d, w.err)
			}
		}
		if n := b.q.len(); n != 0 {
			t.Errorf("%d left in the queue", n)
		}
	})
}

// TestQueueChurn: many requests through a few slots, some leaving while
// they wait; every slot handed out comes back and nobody is left queued
// (a slot taken for a waiter that left, or a waiter recycled while the
// queue took a slot for it, would leak or be handed twice).
func TestQueueChurn(t *testing.T) {
	t.Run("cancelCtx", func(t *testing.T) {
		testQueueChurn(t, func() (context.Context, func()) { return context.WithCancel(context.Background()) })
	})
	// A context that tells of its end by a callback ends the wait
	// from the cancelling goroutine (waitWatch), racing the queue.
	t.Run("notifier", func(t *testing.T) {
		testQueueChurn(t, func() (context.Context, func()) {
			a := new(attemptCtx)
			a.start(context.Background(), nil, time.Time{})
			return a, func() { a.cancel(context.Canceled, nil) }
		})
	})
}

func testQueueChurn(t *testing.T, newCtx func() (context.Context, func())) {
	b := newTestBackend(t, Config{
		Protocol: H2C, Servers: []ServerConfig{{Address: "a:1"}},
		Queue: QueueConfig{MaxPending: 1000, Timeout: time.Minute},
	})
	fc := installFake(t, b.Servers()[0], http.StatusOK, 4)
	st := b.cur()
	const workers, rounds = 40, 100
	done := make(chan error, workers)
	for i := range workers {
		go func() {
			for j := range rounds {
				ctx, cancel := newCtx()
				if (i+j)%5 == 0 {
					// Leaves while it may be waiting.
					go cancel()
				}
				c, err := b.acquire(ctx, st, nil, time.Time{}, nil, nil, false)
				cancel()
				if err != nil {
					if !errors.Is(err, ErrClientGone) {
						done <- err
						return
					}
					continue
				}
				runtime.Gosched()
				c.release()
			}
			done <- nil
		}()
	}
	for range workers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := fc.InFlight(); n != 0 {
		t.Errorf("%d slots still taken", n)
	}
	if n := b.q.len(); n != 0 {
		t.Errorf("%d left queued", n)
	}
}

// TestQueueLeaveByCallback: a request whose client context tells of its
// end by a callback (a CancelNotifier) waits in the queue without asking
// the context for a Done channel (a plain receive, not a select), and its
// client leaving ends the wait at once, with ErrClientGone, leaving
// nothing queued and no slot taken.
func TestQueueLeaveByCallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, held := newQueueBackend(t, time.Minute)
		st := b.cur()
		ctx := &doneSpy{attemptCtx: new(attemptCtx)}
		ctx.start(context.Background(), nil, time.Time{})
		done := make(chan error, 1)
		go func() {
			c, err := b.acquire(ctx, st, nil, time.Time{}, nil, nil, false)
			if c != nil {
				c.release()
			}
			done <- err
		}()
		synctest.Wait()
		if n := b.q.len(); n != 1 {
			t.Fatalf("%d queued, want 1", n)
		}
		if ctx.asked.Load() {
			t.Error("the queued request asked its context for a Done channel: it waits in a select")
		}
		start := time.Now()
		ctx.cancel(context.Canceled, nil)
		synctest.Wait()
		select {
		case err := <-done:
			if !errors.Is(err, ErrClientGone) {
				t.Errorf("acquire: %v, want %v", err, ErrClientGone)
			}
		default:
			t.Fatal("the wait did not end when the client left")
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("the wait ended %v after the client left, want at once", d)
		}
		if n := b.q.len(); n != 0 {
			t.Errorf("%d left queued", n)
		}
		// The slot given back now is free for the next request, not
		// handed to the request that left.
		held.release()
		c, err := b.acquire(context.Background(), st, nil, time.Time{}, nil, nil, false)
		if err != nil || c == nil {
			t.Fatalf("after the client left: %v, %v", c, err)
		}
		c.release()
	})
}

// doneSpy is an attempt's context that records being asked for Done.
type doneSpy struct {
	*attemptCtx
	asked atomic.Bool
}

func (d *doneSpy) Done() <-chan struct{} {
	d.asked.Store(true)
	return d.attemptCtx.Done()
}
