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
				held, err := b.try(b.cur(), nil)
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
