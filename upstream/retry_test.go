package upstream

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

func newPeerBackend(t *testing.T, fp *fakePeer, mod func(*Config)) (*Backend, *Metrics) {
	t.Helper()
	cfg := Config{
		Name: "b", Protocol: H2C,
		Servers: []ServerConfig{{Address: fp.addr()}},
		H2C:     H2CConfig{ConnsPerServer: 1},
		Queue:   QueueConfig{MaxPending: 100},
		Retries: 2, RetryBodyLimit: 64 << 10,
	}
	if mod != nil {
		mod(&cfg)
	}
	m := NewMetrics(nil)
	b, err := New(cfg, m, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, m
}

func retries(m *Metrics, reason string) float64 {
	return testutil.ToFloat64(m.retries.WithLabelValues("b", reason))
}

func TestRefusedStreamIsRetried(t *testing.T) {
	checkNoLeak(t)
	fp := newFakePeer(t)
	var n atomic.Int32
	fp.onHeaders = func(pc *peerConn, id uint32, method string) {
		if n.Add(1) == 1 {
			pc.refuse(id)
			return
		}
		pc.respond(id, 200, "ok")
	}
	b, m := newPeerBackend(t, fp, nil)
	// POST is not idempotent, but a refused stream was provably not
	// processed, and the small body is buffered.
	req, _ := http.NewRequest("POST", "http://b/", strings.NewReader("payload"))
	resp, err := b.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := retries(m, retryRefused); got != 1 {
		t.Errorf("refused_stream retries = %v, want 1", got)
	}
}

func TestGoAwayMidFlight(t *testing.T) {
	checkNoLeak(t)
	fp := newFakePeer(t)
	// The first connection takes three requests, then says GOAWAY with the
	// first stream as the last it will process, finishes that one and
	// nothing else. Later connections answer normally.
	var mu sync.Mutex
	var held []uint32
	fp.onHeaders = func(pc *peerConn, id uint32, method string) {
		if pc.idx > 1 {
			pc.respond(id, 200, "ok")
			return
		}
		mu.Lock()
		held = append(held, id)
		if len(held) < 3 {
			mu.Unlock()
			return
		}
		first := held[0]
		mu.Unlock()
		pc.goAway(first)
		pc.respond(first, 200, "ok")
	}
	b, m := newPeerBackend(t, fp, func(c *Config) { c.H2C.ConnsPerServer = 1 })
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range 3 {
		wg.Go(func() {
			resp, body, err := get(context.Background(), b, "/", nil)
			if err != nil {
				t.Error(err)
				return
			}
			if resp.StatusCode == 200 && body == "ok" {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 3 {
		t.Errorf("%d of 3 requests succeeded", ok.Load())
	}
	if got := retries(m, retryGoAway); got != 2 {
		t.Errorf("goaway retries = %v, want 2 (the streams above last-stream-id)", got)
	}
	if got := testutil.ToFloat64(m.goaways.WithLabelValues("b", fp.addr(), "no_error")); got != 1 {
		t.Errorf("sluice_upstream_goaway_total = %v", got)
	}
}

func TestLostPingClosesConnection(t *testing.T) {
	checkNoLeak(t)
	fp := newFakePeer(t)
	fp.ignorePing.Store(true)
	b, _ := newPeerBackend(t, fp, func(c *Config) {
		c.H2C.PingInterval = 50 * time.Millisecond
		c.H2C.PingTimeout = 50 * time.Millisecond
	})
	if _, _, err := get(context.Background(), b, "/", nil); err != nil {
		t.Fatal(err)
	}
	gatewaytest.WaitFor(t, 5*time.Second, "silent connection closed", func() bool { return b.Stats().Servers[0].Conns == 0 })
	// A new request opens a fresh connection and succeeds.
	fp.ignorePing.Store(false)
	if _, _, err := get(context.Background(), b, "/", nil); err != nil {
		t.Fatal(err)
	}
	if n := fp.conns.Load(); n != 2 {
		t.Errorf("peer saw %d connections, want 2", n)
	}
}

func TestPostNotReplayedAfterSent(t *testing.T) {
	checkNoLeak(t)
	fp := newFakePeer(t)
	var posts atomic.Int32
	fp.onHeaders = func(pc *peerConn, id uint32, method string) {
		if method == "POST" {
			posts.Add(1)
			// The server saw the request, then the connection dies.
			pc.c.Close()
			return
		}
		pc.respond(id, 200, "ok")
	}
	b, m := newPeerBackend(t, fp, nil)
	req, _ := http.NewRequest("POST", "http://b/", strings.NewReader("charge the card"))
	_, err := b.RoundTrip(req)
	var rte *RoundTripError
	if !errors.As(err, &rte) {
		t.Fatalf("got %v, want a RoundTripError (502)", err)
	}
	if n := posts.Load(); n != 1 {
		t.Errorf("server saw the POST %d times, want exactly 1", n)
	}
	for _, r := range []string{retryIdempotent, retryNotSent, retryGoAway, retryRefused} {
		if got := retries(m, r); got != 0 {
			t.Errorf("%s retries = %v, want 0", r, got)
		}
	}
	// The same failure on a GET is retried.
	var gets atomic.Int32
	fp.onHeaders = func(pc *peerConn, id uint32, method string) {
		if gets.Add(1) == 1 {
			pc.c.Close()
			return
		}
		pc.respond(id, 200, "ok")
	}
	if _, _, err := get(context.Background(), b, "/", nil); err != nil {
		t.Fatalf("idempotent GET not retried: %v", err)
	}
}

func TestPassiveEjectionAndNoHealthyServer(t *testing.T) {
	checkNoLeak(t)
	fp := newFakePeer(t)
	fp.onHeaders = func(pc *peerConn, id uint32, method string) { pc.respond(id, 503, "busy") }
	b, _ := newPeerBackend(t, fp, func(c *Config) {
		c.Retries = 0
		c.Passive = PassiveConfig{ConsecutiveFailures: 3, EjectFor: time.Hour, MaxEjectedPercent: 100}
	})
	for range 3 {
		if _, _, err := get(context.Background(), b, "/", nil); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := get(context.Background(), b, "/", nil)
	if !errors.Is(err, ErrNoHealthyServer) {
		t.Fatalf("after 3 failures got %v, want ErrNoHealthyServer", err)
	}
	if b.Ready() {
		t.Error("backend ready with its only server ejected")
	}
}

func TestTimeouts(t *testing.T) {
	checkNoLeak(t)
	fs := blockingServer(t)
	tests := []struct {
		name string
		mod  func(*Config)
		want error
	}{
		{"response header", func(c *Config) { c.ResponseHeaderTimeout = 50 * time.Millisecond }, ErrResponseHeaderTimeout},
		{"total", func(c *Config) { c.TotalTimeout = 50 * time.Millisecond }, ErrTotalTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Protocol: H2C, Servers: []ServerConfig{{Address: fs.addr()}}, Queue: QueueConfig{MaxPending: 10}, Retries: 2}
			tt.mod(&cfg)
			b := newTestBackend(t, cfg)
			start := time.Now()
			_, _, err := get(context.Background(), b, "/block", nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			var to interface{ Timeout() bool }
			if !errors.As(err, &to) || !to.Timeout() {
				t.Error("timeout error does not say Timeout()")
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v: timed out requests must not be retried", d)
			}
		})
	}
}

func TestBackupServerOnlyWhenPrimariesOut(t *testing.T) {
	checkNoLeak(t)
	primary := newFakePeer(t)
	primary.onHeaders = func(pc *peerConn, id uint32, method string) { pc.respond(id, 503, "down") }
	backup := newFakePeer(t)
	b, _ := newPeerBackend(t, primary, func(c *Config) {
		c.Servers = []ServerConfig{{Address: primary.addr()}, {Address: backup.addr(), Backup: true}}
		c.Retries = 0
		c.Passive = PassiveConfig{ConsecutiveFailures: 2, EjectFor: time.Hour, MaxEjectedPercent: 50}
	})
	for range 2 {
		resp, _, err := get(context.Background(), b, "/", nil)
		if err != nil || resp.StatusCode != 503 {
			t.Fatalf("primary answer: %v %v", resp, err)
		}
	}
	if backup.conns.Load() != 0 {
		t.Fatal("backup used while the primary was in rotation")
	}
	resp, body, err := get(context.Background(), b, "/", nil)
	if err != nil || resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("after the primary's ejection: %v %q %v", resp, body, err)
	}
}

func TestIdleTimeoutEndsStalledBody(t *testing.T) {
	checkNoLeak(t)
	fp := newFakePeer(t)
	fp.onHeaders = func(pc *peerConn, id uint32, method string) {
		pc.mu.Lock()
		defer pc.mu.Unlock()
		pc.hb.Reset()
		pc.enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
		pc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: pc.hb.Bytes(), EndHeaders: true})
		pc.fr.WriteData(id, false, []byte("partial"))
		// ...and nothing more.
	}
	b, _ := newPeerBackend(t, fp, func(c *Config) { c.IdleTimeout = 100 * time.Millisecond })
	start := time.Now()
	_, body, err := get(context.Background(), b, "/", nil)
	if !errors.Is(err, ErrIdleTimeout) {
		t.Fatalf("got %q, %v; want ErrIdleTimeout", body, err)
	}
	if body != "partial" {
		t.Errorf("body %q before the stall", body)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stalled body ended after %v", d)
	}
}
