package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

func TestConnectionAndStreamCaps(t *testing.T) {
	tests := []struct {
		name           string
		protocol       string
		serverStreams  int // the server's SETTINGS_MAX_CONCURRENT_STREAMS
		conns, streams int
		wantPeakConn   int // max concurrent requests per connection
	}{
		{"h2c config cap", H2C, 0, 2, 5, 5},
		{"h2c server cap below config", H2C, 3, 2, 100, 3},
		{"h1 one request per conn", H1, 0, 4, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeak(t)
			fs := newFakeServer(t, tt.protocol == H2C, tt.serverStreams)
			b := newTestBackend(t, Config{
				Protocol: tt.protocol,
				Servers:  []ServerConfig{{Address: fs.addr()}},
				H2C:      H2CConfig{ConnsPerServer: tt.conns, MaxStreamsPerConn: tt.streams},
				H1:       H1Config{ConnsPerServer: tt.conns},
				Queue:    QueueConfig{MaxPending: 1000, Timeout: 10 * time.Second},
			})
			var wg sync.WaitGroup
			errs := make(chan error, 100)
			for range 100 {
				wg.Go(func() {
					resp, body, err := get(context.Background(), b, "/sleep", nil)
					if err != nil {
						errs <- err
						return
					}
					if resp.StatusCode != 200 || body != "ok" {
						errs <- fmt.Errorf("got %d %q", resp.StatusCode, body)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if got := fs.conns.Load(); got > int64(tt.conns) {
				t.Errorf("server saw %d connections, cap %d", got, tt.conns)
			}
			if fs.peakConn > tt.wantPeakConn {
				t.Errorf("peak requests on one connection %d, want <= %d", fs.peakConn, tt.wantPeakConn)
			}
			if fs.peakConn < tt.wantPeakConn {
				t.Errorf("peak requests on one connection %d, want the cap %d reached under load", fs.peakConn, tt.wantPeakConn)
			}
		})
	}
}

func TestQueueIsFIFO(t *testing.T) {
	fs, b := newOneConn(t, H2C)
	var wg sync.WaitGroup
	send := func(seq string) {
		wg.Go(func() {
			if _, _, err := get(context.Background(), b, "/block", http.Header{"X-Seq": {seq}}); err != nil {
				t.Error(err)
			}
		})
	}
	send("0")
	if got := <-fs.arrivals; got != "0" {
		t.Fatalf("first arrival %q", got)
	}
	for i := 1; i <= 4; i++ {
		send(fmt.Sprint(i))
		gatewaytest.WaitFor(t, 5*time.Second, "request queued", func() bool { return b.q.len() == i })
	}
	for i := 0; i <= 4; i++ {
		fs.release <- struct{}{}
		if i < 4 {
			if got, want := <-fs.arrivals, fmt.Sprint(i+1); got != want {
				t.Fatalf("arrival %d: got request %s, want %s (FIFO)", i+1, got, want)
			}
		}
	}
	wg.Wait()
}

// oneSlotBackend serves a backend with one connection slot (one h2c
// connection of one stream) and queue q, in front of a fake server whose
// /block requests wait until the test closes fs.release.
func oneSlotBackend(t *testing.T, q QueueConfig) (*fakeServer, *Backend) {
	t.Helper()
	checkNoLeak(t)
	fs := newFakeServer(t, true, 0)
	fs.release = make(chan struct{})
	return fs, newTestBackend(t, Config{
		Protocol: H2C,
		Servers:  []ServerConfig{{Address: fs.addr()}},
		H2C:      H2CConfig{ConnsPerServer: 1, MaxStreamsPerConn: 1},
		Queue:    q,
	})
}

// holdSlot sends a /block request that holds b's one slot, and returns
// once the server has it; done closes when it has been answered.
func holdSlot(t *testing.T, fs *fakeServer, b *Backend) (done chan struct{}) {
	t.Helper()
	done = make(chan struct{})
	go func() { defer close(done); get(context.Background(), b, "/block", nil) }()
	gatewaytest.WaitFor(t, 5*time.Second, "first request in flight", func() bool { return fs.inflight.Load() == 1 })
	return done
}

func TestQueueOverflowAndTimeout(t *testing.T) {
	fs, b := oneSlotBackend(t, QueueConfig{MaxPending: 1, Timeout: 100 * time.Millisecond})
	done := holdSlot(t, fs, b)

	queued := make(chan error, 1)
	go func() { _, _, err := get(context.Background(), b, "/", nil); queued <- err }()
	gatewaytest.WaitFor(t, 5*time.Second, "second request queued", func() bool { return b.q.len() == 1 })

	if _, _, err := get(context.Background(), b, "/", nil); !errors.Is(err, ErrQueueFull) {
		t.Errorf("third request: got %v, want ErrQueueFull", err)
	}
	if err := <-queued; !errors.Is(err, ErrQueueTimeout) {
		t.Errorf("queued request: got %v, want ErrQueueTimeout", err)
	}
	close(fs.release)
	<-done
}

func TestCancelledRequestReleasesSlot(t *testing.T) {
	fs, b := oneSlotBackend(t, QueueConfig{MaxPending: 10, Timeout: 10 * time.Second})
	// A queued request whose client leaves gives up its place.
	done := holdSlot(t, fs, b)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, _, err := get(ctx, b, "/", nil); errc <- err }()
	gatewaytest.WaitFor(t, 5*time.Second, "request queued", func() bool { return b.q.len() == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, ErrClientGone) {
		t.Errorf("got %v, want ErrClientGone", err)
	}
	if n := b.q.len(); n != 0 {
		t.Errorf("queue length %d after cancel", n)
	}
	close(fs.release)
	<-done
	// The slot of the finished request is free again: a new one goes
	// straight through, on the same connection.
	if _, body, err := get(context.Background(), b, "/", nil); err != nil || body != "ok" {
		t.Fatalf("after release: %q %v", body, err)
	}
	if st := b.Stats().Servers[0]; st.Active != 0 || st.Conns != 1 {
		t.Errorf("stats after all requests: %+v", st)
	}
	if n := fs.conns.Load(); n != 1 {
		t.Errorf("server saw %d connections, want 1", n)
	}
}

func TestAutoDetectsProtocol(t *testing.T) {
	for _, h2 := range []bool{true, false} {
		t.Run(fmt.Sprint("h2c=", h2), func(t *testing.T) {
			checkNoLeak(t)
			fs := newFakeServer(t, h2, 0)
			b := newTestBackend(t, Config{Protocol: Auto, Servers: []ServerConfig{{Address: fs.addr()}}})
			resp, _, err := get(context.Background(), b, "/", nil)
			if err != nil {
				t.Fatal(err)
			}
			want := "HTTP/1.1"
			if h2 {
				want = "HTTP/2.0"
			}
			if got := resp.Header.Get("X-Proto"); got != want {
				t.Errorf("server saw %s, want %s", got, want)
			}
		})
	}
}

func TestDialFailureFailsFast(t *testing.T) {
	checkNoLeak(t)
	// A port nobody listens on: grab one and close it.
	fs := newFakeServer(t, true, 0)
	addr := fs.addr()
	fs.Close()
	b := newTestBackend(t, Config{Protocol: H2C, Servers: []ServerConfig{{Address: addr}}, Queue: QueueConfig{MaxPending: 10}})
	start := time.Now()
	_, _, err := get(context.Background(), b, "/", nil)
	var de *DialError
	if !errors.As(err, &de) {
		t.Fatalf("got %v, want DialError", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("dial failure took %v: it should not wait for the queue timeout", time.Since(start))
	}
	if b.Ready() {
		t.Error("backend reports ready with its only server unreachable")
	}
}

// blockingServer is a fake h2c server whose /block requests wait until
// the test ends.
func blockingServer(t *testing.T) *fakeServer {
	t.Helper()
	fs := newFakeServer(t, true, 0)
	fs.release = make(chan struct{})
	t.Cleanup(func() { close(fs.release) })
	return fs
}

func TestCloseFailsQueuedRequests(t *testing.T) {
	checkNoLeak(t)
	fs := blockingServer(t)
	b, err := New(Config{
		Name: "t", Protocol: H2C,
		Servers: []ServerConfig{{Address: fs.addr()}},
		H2C:     H2CConfig{ConnsPerServer: 1, MaxStreamsPerConn: 1},
		Queue:   QueueConfig{MaxPending: 10, Timeout: 10 * time.Second},
	}, NewMetrics(nil), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	holdSlot(t, fs, b)
	errc := make(chan error, 1)
	go func() { _, _, err := get(context.Background(), b, "/", nil); errc <- err }()
	gatewaytest.WaitFor(t, 5*time.Second, "queued", func() bool { return b.q.len() == 1 })
	b.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("got %v, want ErrClosed", err)
	}
}
