package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/upstream"
)

// benchHandler is the origin's handler: it answers "ok".
func benchHandler(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }

// benchGateway is a gateway with one h2c backend in front of an in-process
// h2c origin answering "ok".
func benchGateway(tb testing.TB) *Gateway {
	tb.Helper()
	return benchGatewayAt(tb, newUpstream(tb, benchHandler))
}

// benchGatewayAt is benchGateway in front of the origin at up.
func benchGatewayAt(tb testing.TB, up string) *Gateway {
	tb.Helper()
	be := newBackend(tb, upstream.Config{
		Protocol: upstream.H2C,
		Servers:  []upstream.ServerConfig{{Address: up}},
		Queue:    upstream.QueueConfig{MaxPending: 100},
	})
	g, err := New(Config{Routes: []Route{{Backend: "b"}}}, map[string]http.RoundTripper{"b": be}, NewMetrics(nil), quiet())
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// BenchmarkProxyRequest measures the gateway's own cost per proxied request
// (routing, proxy, queue, pool, h2c stream) against an h2c origin (Go's
// server) in a child process, so that allocs/op counts the gateway's
// process alone: the gateway's and the h2c client's allocations and the
// test's recorder's 8. Allocations per request are the figure to watch;
// TestProxyRequestAllocs pins them.
func BenchmarkProxyRequest(b *testing.B) {
	benchProxyRequest(b, benchGatewayAt(b, childOrigin(b)))
}

// BenchmarkProxyRequestInProcess is BenchmarkProxyRequest with the origin
// in the test's process, as it was measured until 2026-12-02: allocs/op
// then counts the origin's 37 too (TestProxyRequestInProcessAllocs).
func BenchmarkProxyRequestInProcess(b *testing.B) {
	benchProxyRequest(b, benchGateway(b))
}

func benchProxyRequest(b *testing.B, g *Gateway) {
	req := httptest.NewRequest("GET", "http://front/", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

// maxInProcessAllocsPerRequest pins allocations per proxied GET with the
// origin in the same process, measured by TestProxyRequestInProcessAllocs:
// 103 with httputil.ReverseProxy, 80 with the lean proxy, 59 with Sluice's own h2c client (h2c/client) in place of
// net/http's, 62 once an upstream attempt's context was composed from the
// standard ones (context.WithoutCancel and WithCancelCause, in place of an
// attempt tracker implementing context.Context: a context and a cancel
// func) and 1xx responses travel in the request's httptrace hooks (a
// context value), 56-57 with pooled exchanges (the outbound header map
// and 1xx hook reused) and 1xx hooks passed in upstream.RequestInfo rather
// than a context per request, 54-55 with the h2c client's response and
// its header values in the stream's allocation and its wake channels
// reused (57-58 before), 53 with the h2c client's own HPACK decoder and
// HEADERS frames read without a frame allocated (55 before), 50 with an
// upstream attempt's context the tracker's own, its end learnt by the h2c
// client through OnCancel (no context of WithCancelCause, no Done
// channel: 53 before), plus slack for timing noise (a timer or a frame
// buffer more or less). The figure
// counts every allocation in the process during the request, since
// testing.AllocsPerRun reads process-wide counters: the in-process
// origin server's 37 (Go's h2c server: its stream, request, header map,
// a string and a slice per request field, its response frames), the
// test's recorder's 8, and the gateway's and the h2c client's 5
// (TestProxyRequestAllocs measures those two without the origin).
// Raise it only with a reason.
const maxInProcessAllocsPerRequest = 52

// maxAllocsPerH1Request pins allocations per proxied GET through the
// HTTP/1.1 front end, measured by TestProxyRequestH1Allocs on the path of
// BenchmarkProxyRequestH1: 88 when gateway/h1 built an http.Request, URL,
// header map and a string per field for each request, 64-65 with those
// reused (one string per head) and the changes above, plus slack. Of the
// 64: the origin's 26, the h1 server's connection work (the abort
// watcher, its context, the parsed fields' pooling: about 9), the
// upstream attempt (tracker, timer, contexts: about 11), the h2c client
// (stream, response, header map: about 9), the gateway's (the body and the
// head's string: about 3). 59 once the parsed fields' storage went back
// to its pool in the box it came in (two allocations fewer: 61 before),
// 57 with the h2c client's own HPACK decoder too, 54 with main's later
// changes (wip/close, wip/h1pool); 51 at 0dfd054, 49 once the request's
// context was a ctxend.Notifier of its own rather than a
// context.WithCancel (its cancelCtx and cancel func), 48 once the
// upstream attempt had no WroteHeaders closure (the clients tell its
// context, HeadersWritten), plus one of slack (the runs give 48 exactly;
// 50 fails).
const maxAllocsPerH1Request = 49

// allocsPerRequest is gatewaytest.MedianAllocs of one proxied request.
func allocsPerRequest(t *testing.T, serve func()) float64 {
	t.Helper()
	return gatewaytest.MedianAllocs(t, "proxied request", serve)
}

// TestProxyRequestInProcessAllocs fails when a change makes proxied
// requests allocate more, origin included.
func TestProxyRequestInProcessAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	if testing.Short() {
		t.Skip("measures")
	}
	g := benchGateway(t)
	req := httptest.NewRequest("GET", "http://front/", nil)
	got := allocsPerRequest(t, func() {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("status %d", rec.Code)
		}
	})
	if got > maxInProcessAllocsPerRequest {
		t.Errorf("%.1f allocations per proxied request, pinned at %d", got, maxInProcessAllocsPerRequest)
	}
}

// TestProxyRequestH1Allocs is TestProxyRequestInProcessAllocs through the HTTP/1.1
// front end, as BenchmarkProxyRequestH1.
func TestProxyRequestH1Allocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	if testing.Short() {
		t.Skip("measures")
	}
	c, br := h1BenchClient(t)
	if got := h1AllocsPerRequest(t, c, br); got > maxAllocsPerH1Request {
		t.Errorf("%.1f allocations per proxied HTTP/1.1 request, pinned at %d", got, maxAllocsPerH1Request)
	}
}

// h1AllocsPerRequest is allocsPerRequest of one keep-alive GET written
// on c and its small response read from br.
func h1AllocsPerRequest(t *testing.T, c io.Writer, br *bufio.Reader) float64 {
	t.Helper()
	return allocsPerRequest(t, func() {
		if _, err := c.Write(h1BenchRequest); err != nil {
			t.Fatal(err)
		}
		if err := readSmallResponse(br); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkProxyRequestH1 is BenchmarkProxyRequestInProcess through the path
// HTTP/1.1 clients take: a raw TCP client writes keep-alive GETs to the
// gateway's HTTP/1.1 server (gateway/h1, on a listener from Listen), in
// front of the same in-process h2c origin. The client reads each response
// without allocating, so allocs/op are the gateway's, the h2c client's
// and the origin's.
func BenchmarkProxyRequestH1(b *testing.B) {
	c, br := h1BenchClient(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(h1BenchRequest); err != nil {
			b.Fatal(err)
		}
		if err := readSmallResponse(br); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProxyRequestH1Close is BenchmarkProxyRequestH1 with a new
// connection per request (Connection: close), as make bench's h1-close.
func BenchmarkProxyRequestH1Close(b *testing.B) {
	c, _ := h1BenchClient(b)
	addr := c.RemoteAddr().String()
	req := bytes.Replace(h1BenchRequest, []byte("\r\n\r\n"), []byte("\r\nConnection: close\r\n\r\n"), 1)
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if err := readSmallResponse(bufio.NewReader(c)); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// h1BenchRequest is a keep-alive GET as curl sends it, with a query.
var h1BenchRequest = []byte("GET /index.html?q=1 HTTP/1.1\r\nHost: front\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\nAccept-Encoding: gzip\r\n\r\n")

// h1BenchClient serves benchGateway on the HTTP/1.1 front end (a
// listener from Listen) until the test ends, and connects to it.
func h1BenchClient(tb testing.TB) (net.Conn, *bufio.Reader) {
	tb.Helper()
	g := benchGateway(tb)
	ln, err := g.Listen(ListenerConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		tb.Fatal(err)
	}
	s := NewServer(g, false)
	go s.Serve(ln)
	tb.Cleanup(func() { s.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// readSmallResponse reads a 200 response with a Content-Length from br
// without allocating.
func readSmallResponse(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status line %q", line)
	}
	n := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			n = 0
			for _, c := range bytes.TrimSpace(v) {
				n = n*10 + int(c-'0')
			}
		}
	}
	if n < 0 {
		return errors.New("no Content-Length")
	}
	_, err = br.Discard(n)
	return err
}
