package upstream

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// fakeServer is an in-process upstream that counts connections and the
// peak of concurrent requests, per connection and overall.
type fakeServer struct {
	*httptest.Server
	conns    atomic.Int64 // accepted connections, ever
	open     atomic.Int64 // connections open now
	closed   atomic.Int64 // connections closed (or hijacked), ever
	inflight atomic.Int64
	peak     atomic.Int64
	mu       sync.Mutex
	perConn  map[string]int // remote addr → in-flight
	peakConn int
	release  chan struct{} // when non-nil, /block waits on it
	arrivals chan string   // when non-nil, receives X-Seq of each request
}

func newFakeServer(t *testing.T, h2c bool, maxStreams int) *fakeServer {
	t.Helper()
	fs := &fakeServer{perConn: map[string]int{}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := fs.inflight.Add(1)
		defer fs.inflight.Add(-1)
		for {
			p := fs.peak.Load()
			if n <= p || fs.peak.CompareAndSwap(p, n) {
				break
			}
		}
		fs.mu.Lock()
		fs.perConn[r.RemoteAddr]++
		fs.peakConn = max(fs.peakConn, fs.perConn[r.RemoteAddr])
		fs.mu.Unlock()
		defer func() {
			fs.mu.Lock()
			fs.perConn[r.RemoteAddr]--
			fs.mu.Unlock()
		}()
		if fs.arrivals != nil {
			fs.arrivals <- r.Header.Get("X-Seq")
		}
		switch r.URL.Path {
		case "/block":
			<-fs.release
		case "/sleep":
			time.Sleep(20 * time.Millisecond) // the server's latency, the point of /sleep
		}
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Proto", r.Proto)
		io.WriteString(w, "ok")
	})
	srv := httptest.NewUnstartedServer(h)
	var p http.Protocols
	p.SetHTTP1(true)
	if h2c {
		p.SetUnencryptedHTTP2(true)
	}
	srv.Config.Protocols = &p
	if maxStreams > 0 {
		srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: maxStreams}
	}
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			fs.conns.Add(1)
			fs.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			fs.open.Add(-1)
			fs.closed.Add(1)
		}
	}
	srv.Start()
	fs.Server = srv
	t.Cleanup(srv.Close)
	return fs
}

func (fs *fakeServer) addr() string { return fs.Listener.Addr().String() }

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newTestBackend(t *testing.T, cfg Config) *Backend {
	t.Helper()
	return newBackendWith(t, cfg, NewMetrics(nil), quietLog())
}

// newBackendWith is newTestBackend reporting to m and log.
func newBackendWith(t *testing.T, cfg Config, m *Metrics, log *slog.Logger) *Backend {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	b, err := New(cfg, m, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// get sends one request through b and reads the whole response.
func get(ctx context.Context, b *Backend, path string, hdr http.Header) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://backend"+path, nil)
	if err != nil {
		return nil, "", err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := b.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

// checkNoLeak fails if goroutines started during the test outlive it.
func checkNoLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:n])
				return
			}
			time.Sleep(5 * time.Millisecond) // poll: WaitFor cannot dump the leaked goroutines' stacks
		}
	})
}

// waitWarm waits until every server of b has an open connection that
// takes requests (the server's SETTINGS arrived): warm-ups run in the
// background.
func waitWarm(t *testing.T, b *Backend) {
	t.Helper()
	gatewaytest.WaitFor(t, 5*time.Second, "all servers warm", func() bool {
		for _, ss := range b.Stats().Servers {
			if len(ss.MaxStreams) == 0 || ss.MaxStreams[0] == 0 {
				return false
			}
		}
		return true
	})
}

// waitRetired waits until every server a reload removed from b has shut
// down and left b.retired, the last step of its retire goroutine.
func waitRetired(t *testing.T, b *Backend) {
	t.Helper()
	gatewaytest.WaitFor(t, 5*time.Second, "removed servers shut down and forgotten", func() bool {
		b.updateMu.Lock()
		defer b.updateMu.Unlock()
		return len(b.retired) == 0
	})
}
