package client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"
)

// notifyCtx is a CancelNotifier context, as upstream's attempt context is;
// asking for its Done channel fails the test.
type notifyCtx struct {
	context.Context
	t *testing.T

	mu    sync.Mutex
	w     interface{ ContextEnded() }
	ended bool
	cause error
}

func (n *notifyCtx) Done() <-chan struct{} {
	n.t.Error("Done asked of a CancelNotifier context")
	return nil
}

func (n *notifyCtx) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ended {
		return context.Canceled
	}
	return nil
}

func (n *notifyCtx) Value(key any) any { return nil }

func (n *notifyCtx) OnCancel(w interface{ ContextEnded() }) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ended {
		return false
	}
	n.w = w
	return true
}

func (n *notifyCtx) StopOnCancel() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	had := n.w != nil
	n.w = nil
	return had
}

func (n *notifyCtx) cancel() {
	n.mu.Lock()
	n.ended = true
	w := n.w
	n.w = nil
	n.mu.Unlock()
	if w != nil {
		w.ContextEnded()
	}
}

func (n *notifyCtx) watched() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.w != nil
}

// TestCancelNotifier: a CancelNotifier context interrupts the exchange
// through OnCancel, not a Done channel or context.AfterFunc; a finished
// exchange stops watching it; one ended before RoundTrip fails it at once.
func TestCancelNotifier(t *testing.T) {
	got := make(chan struct{}, 1)
	fs := newFakeServer(t, func(nc net.Conn, br *bufio.Reader) {
		defer nc.Close()
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if req.URL.Path == "/hang" {
				got <- struct{}{}
				io.Copy(io.Discard, br)
				return
			}
			io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	c := fs.dial(t, Config{})

	ctx := &notifyCtx{Context: context.Background(), t: t}
	if _, body := roundTrip(t, c, newRequest(t, "GET", "http://x/", nil).WithContext(ctx)); body != "ok" {
		t.Fatalf("body %q", body)
	}
	if ctx.watched() {
		t.Error("a finished exchange still watches its context")
	}

	ctx = &notifyCtx{Context: context.Background(), t: t}
	go func() {
		<-got
		ctx.cancel()
	}()
	_, err := c.RoundTrip(newRequest(t, "GET", "http://x/hang", nil).WithContext(ctx))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want the context's", err)
	}
	if c.Err() == nil {
		t.Error("interrupted connection still usable")
	}

	c = fs.dial(t, Config{})
	ctx = &notifyCtx{Context: context.Background(), t: t}
	ctx.cancel()
	if _, err := c.RoundTrip(newRequest(t, "GET", "http://x/", nil).WithContext(ctx)); !errors.Is(err, context.Canceled) {
		t.Fatalf("ended context: error %v, want the context's", err)
	}
}

// TestRoundTripAllocs pins an exchange's allocations on a keep-alive
// connection: with a context that can end, context.AfterFunc costs 3 more
// than a CancelNotifier context (upstream's attempt context).
func TestRoundTripAllocs(t *testing.T) {
	fs := newFakeServer(t, serveEach(func(*http.Request, []byte) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	}))
	c := fs.dial(t, Config{})
	cancelCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	buf := make([]byte, 16)
	// Not testing.AllocsPerRun: it counts the whole process's
	// allocations (the fake server's too) and truncates the mean, so a
	// few allocations of a busy machine's timing at the edges of its 200
	// runs move the result by one. Many runs and a mean kept whole do not.
	const runs = 2000
	measure := func(ctx context.Context) float64 {
		req := newRequest(t, "GET", "http://x/", nil).WithContext(ctx)
		exchange := func() {
			resp, err := c.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			for err == nil {
				_, err = resp.Body.Read(buf)
			}
			resp.Body.Close()
		}
		exchange()
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			exchange()
		}
		runtime.ReadMemStats(&after)
		return float64(after.Mallocs-before.Mallocs) / runs
	}
	notify := measure(&notifyCtx{Context: context.Background(), t: t})
	afterFunc := measure(cancelCtx)
	t.Logf("allocations per exchange: %.2f with a CancelNotifier context, %.2f with context.WithCancel's", notify, afterFunc)
	if saved := afterFunc - notify; math.Abs(saved-3) > 0.5 {
		t.Errorf("a CancelNotifier context saves %.2f allocations, want 3", saved)
	}
}
