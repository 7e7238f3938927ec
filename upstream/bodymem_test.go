package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sluice-gw/sluice/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/h2c/client"
)

// TestReadReplayMemory: readReplay takes the memory a body is held in and
// no more; a body it gets none for is streamed, and a failed read or an
// unknown-length body past the limit keeps nothing.
func TestReadReplayMemory(t *testing.T) {
	const limit = 10
	tests := []struct {
		name     string
		body     io.Reader
		length   int64
		max      int64
		buffered bool
		held     int64
	}{
		{"known length, room", strings.NewReader("hello"), 5, 100, true, 5},
		{"known length, exactly the room", strings.NewReader("hello"), 5, 5, true, 5},
		{"known length, no room", strings.NewReader("hello"), 5, 4, false, 0},
		{"unknown length asks for the limit", strings.NewReader("hello"), -1, 9, false, 0},
		{"unknown length keeps what it read", strings.NewReader("hello"), -1, 10, true, 5},
		{"unknown length past the limit", strings.NewReader("0123456789abc"), -1, 100, false, 0},
		{"past the limit", strings.NewReader("0123456789abc"), 13, 100, false, 0},
		{"read error", iotest.ErrReader(errors.New("client reset")), 5, 100, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mem bodyMemory
			req, _ := http.NewRequest("POST", "http://backend/", io.NopCloser(tt.body))
			req.ContentLength = tt.length
			rp, first, _, err := readReplay(req, limit, func(n int64) bool { return mem.take(n, tt.max) })
			if (rp != nil) != tt.buffered {
				t.Fatalf("buffered %v, want %v (err %v)", rp != nil, tt.buffered, err)
			}
			if got := mem.used.Load(); got != tt.held {
				t.Fatalf("memory held %d, want %d", got, tt.held)
			}
			if rp != nil {
				if rp.held != tt.held {
					t.Fatalf("replay gives back %d, holds %d", rp.held, tt.held)
				}
				if _, ok := first.(client.HeldBody); !ok {
					t.Fatalf("buffered body %T is not a client.HeldBody", first)
				}
			} else if _, ok := first.(client.HeldBody); ok {
				t.Fatal("a streamed body passes for one held whole")
			}
		})
	}
}

// soleBody is a request body as the gateway gives an HTTP/1.1 client's
// (sole) or another's.
type soleBody struct {
	*bytes.Reader
	sole bool
}

func (b soleBody) Sole() bool { return b.sole }
func (soleBody) Close() error { return nil }

// TestRetryBodyMemory: while one request's body is held for retries, a
// second that would take the backend past retry_body_memory is streamed
// if its client is on HTTP/1.1 (sole), else refused with
// ErrBodyMemoryFull (both counted); the bodies sent arrive whole, and the
// memory is given back once the requests are done.
func TestRetryBodyMemory(t *testing.T) {
	release := make(chan struct{})
	got := make(chan string, 2)
	addr := gatewaytest.Origin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
		if r.URL.Path == "/hold" {
			<-release
		}
	}))
	m := NewMetrics(nil)
	b := newBackendWith(t, Config{
		Protocol: H2C, Servers: []ServerConfig{{Address: addr}},
		Retries: 2, RetryBodyLimit: 1000, RetryBodyMemory: 1500,
	}, m, quietLog())
	post := func(path string, n int, sole bool) error {
		body := soleBody{bytes.NewReader(bytes.Repeat([]byte("x"), n)), sole}
		req, _ := http.NewRequestWithContext(context.Background(), "POST", "http://backend"+path, body)
		req.ContentLength = int64(n)
		resp, err := b.RoundTrip(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	full := func() float64 { return testutil.ToFloat64(m.bodyFull.WithLabelValues("test")) }
	held := make(chan error, 1)
	go func() { held <- post("/hold", 1000, false) }()
	if s := <-got; len(s) != 1000 {
		t.Fatalf("held request: %d bytes arrived", len(s))
	}
	if u := b.bodies.used.Load(); u != 1000 {
		t.Fatalf("%d bytes held for the request in flight, want 1000", u)
	}
	if err := post("/", 800, true); err != nil {
		t.Fatal(err)
	}
	if s := <-got; len(s) != 800 {
		t.Fatalf("streamed request: %d bytes arrived", len(s))
	}
	if n := full(); n != 1 {
		t.Fatalf("sluice_request_body_memory_full_total %v, want 1", n)
	}
	if err := post("/", 800, false); !errors.Is(err, ErrBodyMemoryFull) {
		t.Fatalf("an HTTP/2 client's body with no memory left: %v, want ErrBodyMemoryFull", err)
	}
	if n := full(); n != 2 {
		t.Fatalf("sluice_request_body_memory_full_total %v, want 2", n)
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if u := b.bodies.used.Load(); u != 0 {
		t.Fatalf("%d bytes still held after the requests ended", u)
	}
	// With room again, a body is held (and given back) as before.
	if err := post("/", 800, false); err != nil {
		t.Fatal(err)
	}
	<-got
	if n := full(); n != 2 {
		t.Fatalf("sluice_request_body_memory_full_total %v after a body with room, want 2", n)
	}
}
