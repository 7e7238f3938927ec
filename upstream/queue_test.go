package upstream

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestQueueWait runs a request that finds every slot taken through the
// queue on synctest's clock: how long it waits and how the wait ends.
func TestQueueWait(t *testing.T) {
	const queueTimeout = 5 * time.Second
	tests := []struct {
		name       string
		maxPending int
		total      time.Duration
		// act runs once the request waits; free gives the slot back,
		// leave makes the client go.
		act  func(b *Backend, free func(), leave context.CancelFunc)
		at   time.Duration // when the request ends
		want error         // nil: it got the slot and an answer
	}{
		{name: "queue timeout", maxPending: 1, at: queueTimeout, want: ErrQueueTimeout},
		{name: "total timeout before the queue's", maxPending: 1, total: 2 * time.Second, at: 2 * time.Second, want: ErrTotalTimeout},
		{name: "queue timeout before the total", maxPending: 1, total: time.Minute, at: queueTimeout, want: ErrQueueTimeout},
		{name: "no room in the queue", maxPending: 0, at: 0, want: ErrQueueFull},
		{
			name: "a slot frees", maxPending: 1,
			act: func(_ *Backend, free func(), _ context.CancelFunc) { time.Sleep(time.Second); free() },
			at:  time.Second,
		},
		{
			name: "the client leaves", maxPending: 1,
			act: func(_ *Backend, _ func(), leave context.CancelFunc) { time.Sleep(time.Second); leave() },
			at:  time.Second, want: ErrClientGone,
		},
		{
			name: "the backend closes", maxPending: 1,
			act: func(b *Backend, _ func(), _ context.CancelFunc) { time.Sleep(time.Second); b.Close() },
			at:  time.Second, want: ErrClosed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newTestBackend(t, Config{
					Protocol: H2C, Servers: []ServerConfig{{Address: "a:1"}},
					Queue: QueueConfig{MaxPending: tt.maxPending, Timeout: queueTimeout}, TotalTimeout: tt.total,
				})
				installFake(t, b.Servers()[0], http.StatusOK, 1)
				held, err := b.try(b.cur(), nil, false)
				if err != nil || held == nil {
					t.Fatalf("taking the only slot: %v, %v", held, err)
				}
				ctx, leave := context.WithCancel(context.Background())
				defer leave()
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://backend/", nil)
				start := time.Now()
				type result struct {
					d   time.Duration
					err error
				}
				done := make(chan result, 1)
				go func() {
					resp, err := b.RoundTrip(req)
					if err == nil {
						resp.Body.Close()
					}
					done <- result{time.Since(start), err}
				}()
				synctest.Wait()
				if tt.want != ErrQueueFull && b.q.len() != 1 {
					t.Fatalf("%d requests queued, want 1", b.q.len())
				}
				if tt.act != nil {
					tt.act(b, held.release, leave)
				}
				r := <-done
				if tt.want == nil && r.err != nil || !errors.Is(r.err, tt.want) {
					t.Errorf("request ended with %v, want %v", r.err, tt.want)
				}
				if r.d != tt.at {
					t.Errorf("request ended after %v, want %v", r.d, tt.at)
				}
				if n := b.q.len(); n != 0 {
					t.Errorf("%d requests left in the queue", n)
				}
			})
		})
	}
}

// TestQueueOrder: enqueue adds at the tail, requeue at the head, remove
// takes out any place; wake hands slots out in that order, one per free
// slot, with the slot in the waiter.
func TestQueueOrder(t *testing.T) {
	tests := []struct {
		name string
		ops  string // per letter: lower case enqueue, upper case requeue, "-x" remove x
		want string // head to tail
	}{
		{name: "enqueue keeps order", ops: "abc", want: "abc"},
		{name: "requeue into empty", ops: "A", want: "a"},
		{name: "requeue goes first", ops: "abC", want: "cab"},
		{name: "requeue twice", ops: "aBC", want: "cba"},
		{name: "remove middle", ops: "abc-b", want: "ac"},
		{name: "remove head then requeue", ops: "ab-aA", want: "ab"},
		{name: "remove tail then enqueue", ops: "ab-bc", want: "ac"},
		{name: "remove all then enqueue", ops: "a-ab", want: "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			free := 0
			var q queue
			q.take = func(*backendState, *Server, bool) (*pconn, bool) {
				if free == 0 {
					return nil, false
				}
				free--
				return &pconn{}, false
			}
			q.max.Store(10)
			ws := map[byte]*waiter{}
			names := map[*waiter]string{}
			get := func(c byte) *waiter {
				if ws[c] == nil {
					ws[c] = &waiter{ch: make(chan struct{}, 1), deadline: time.Now().Add(time.Hour)}
					names[ws[c]] = string(c)
				}
				return ws[c]
			}
			for i := 0; i < len(tt.ops); i++ {
				switch c := tt.ops[i]; {
				case c == '-':
					i++
					q.remove(get(tt.ops[i]))
				case c >= 'A' && c <= 'Z':
					q.requeue(get(c + 'a' - 'A'))
				default:
					q.enqueue(get(c))
				}
			}
			if q.len() != len(tt.want) {
				t.Errorf("len %d, want %d", q.len(), len(tt.want))
			}
			var back string
			for w := q.tail; w != nil; w = w.prev {
				back = names[w] + back
			}
			if back != tt.want {
				t.Errorf("tail to head reads %q, want %q", back, tt.want)
			}
			var got string
			for range len(tt.want) {
				w := q.head
				free = 1
				q.wake()
				got += names[w]
				if len(w.ch) != 1 || w.c == nil {
					t.Errorf("%s not handed a slot", names[w])
				}
				if q.len() > 0 && len(q.head.ch) != 0 {
					t.Errorf("%s signalled without a slot", names[q.head])
				}
			}
			if got != tt.want || q.head != nil || q.tail != nil {
				t.Errorf("woken %q, want %q; head %v tail %v after", got, tt.want, q.head, q.tail)
			}
			q.timer.Stop()
		})
	}
}
