package gateway

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/upstream"
)

// newUpstream starts an h2c-capable origin server.
func newUpstream(t testing.TB, h http.HandlerFunc) string { return gatewaytest.Origin(t, h) }

// newGateway serves a gateway with one backend "b" in front of addr.
func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newBackend builds backend "b" from cfg (Name filled in), closed with the
// test.
func newBackend(t testing.TB, cfg upstream.Config) *upstream.Backend {
	t.Helper()
	cfg.Name = "b"
	b, err := upstream.New(cfg, upstream.NewMetrics(nil), quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func newGateway(t *testing.T, addr string, q upstream.QueueConfig) string {
	return newGatewayProto(t, addr, upstream.H2C, q)
}

func newGatewayProto(t *testing.T, addr, protocol string, q upstream.QueueConfig) string {
	t.Helper()
	gw, _ := newGatewayBackend(t, addr, protocol, q)
	return gw
}

// newGatewayBackend is newGatewayProto, also returning the backend, of
// one connection of one stream.
func newGatewayBackend(t *testing.T, addr, protocol string, q upstream.QueueConfig) (string, *upstream.Backend) {
	t.Helper()
	b := newBackend(t, upstream.Config{
		Protocol: protocol,
		Servers:  []upstream.ServerConfig{{Address: addr}},
		H2C:      upstream.H2CConfig{ConnsPerServer: 1, MaxStreamsPerConn: 1},
		Queue:    q,
	})
	g, err := New(Config{Routes: []Route{{Host: "*", PathPrefix: "/", Backend: "b"}}},
		map[string]http.RoundTripper{"b": b}, NewMetrics(nil), quiet())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, g, ln, false), b
}

// serveOn serves g on ln (NewServer with withTLS) until the test ends,
// when the server's Close closes ln and every connection; it returns ln's
// address.
func serveOn(t *testing.T, g *Gateway, ln net.Listener, withTLS bool) string {
	t.Helper()
	s := NewServer(g, withTLS)
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

// listenAndServe opens a listener of g with lc and serves g on it until
// the test ends (TLS when lc has certificates); it returns its address.
func listenAndServe(t *testing.T, g *Gateway, lc ListenerConfig) string {
	t.Helper()
	ln, err := g.Listen(lc)
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, g, ln, lc.Certs != nil)
}

func TestHopByHopHeadersRemovedBothWays(t *testing.T) {
	var got http.Header
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Connection", "X-Resp-Hop")
		w.Header().Set("X-Resp-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-End", "kept")
		io.WriteString(w, "ok")
	})
	// HTTP/1.1 upstream: HTTP/2 has no Connection header to name hop-by-hop
	// response headers.
	gw := newGatewayProto(t, up, upstream.H1, upstream.QueueConfig{MaxPending: 10})
	req, _ := http.NewRequest("GET", "http://"+gw+"/x", nil)
	req.Host = "front.example"
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "1")
	req.Header.Set("Keep-Alive", "5")
	req.Header.Set("Proxy-Authorization", "secret")
	req.Header.Set("Proxy-Connection", "keep-alive")
	req.Header.Set("TE", "trailers, deflate")
	req.Header.Set("Upgrade", "foo")
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, h := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Upgrade", "Connection"} {
		if v := got.Get(h); v != "" {
			t.Errorf("upstream got hop-by-hop %s: %q", h, v)
		}
	}
	if v := got.Get("Te"); v != "trailers" {
		t.Errorf("TE = %q, want trailers", v)
	}
	if v := got.Get("X-Forwarded-For"); v != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the client address only", v)
	}
	if v := got.Get("X-Forwarded-Proto"); v != "http" {
		t.Errorf("X-Forwarded-Proto = %q", v)
	}
	if v := got.Get("X-Forwarded-Host"); v != "front.example" {
		t.Errorf("X-Forwarded-Host = %q", v)
	}
	for _, h := range []string{"X-Resp-Hop", "Keep-Alive"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("client got hop-by-hop %s: %q", h, v)
		}
	}
	if resp.Header.Get("X-End") != "kept" {
		t.Error("end-to-end response header lost")
	}
}

func TestHostPreservedAndSchemeHTTP(t *testing.T) {
	var host, proto string
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		host, proto = r.Host, r.Proto
	})
	gw := newGateway(t, up, upstream.QueueConfig{MaxPending: 10})
	req, _ := http.NewRequest("GET", "http://"+gw+"/", nil)
	req.Host = "app.example:8443"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if host != "app.example:8443" || proto != "HTTP/2.0" {
		t.Errorf("upstream saw host %q over %s", host, proto)
	}
}

func TestTrailersAndStreamingFlush(t *testing.T) {
	// The upstream sends the rest only once the client has read the first
	// chunk, or after stall: a gateway that buffers the first chunk makes
	// the client wait the whole stall, whatever the box's load.
	const stall = 10 * time.Second
	firstRead := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-firstRead:
		case <-time.After(stall):
		}
		io.WriteString(w, "second\n")
		w.Header().Set("X-Checksum", "abc")
	})
	gw := newGateway(t, up, upstream.QueueConfig{MaxPending: 10})
	start := time.Now()
	resp, err := http.Get("http://" + gw + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	close(firstRead)
	if err != nil || line != "first\n" {
		t.Fatalf("first line %q %v", line, err)
	}
	if d := time.Since(start); d > stall/2 {
		t.Errorf("first chunk arrived after %v: not flushed as it came", d)
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "second\n" {
		t.Errorf("rest %q", rest)
	}
	if v := resp.Trailer.Get("X-Checksum"); v != "abc" {
		t.Errorf("trailer %q", v)
	}
}

func TestQueueFullIs503WithRetryAfter(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			close(started)
			<-release
		}
	})
	gw := newGateway(t, up, upstream.QueueConfig{MaxPending: 0})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.Get("http://" + gw + "/block"); err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	// The only stream is taken and no request may wait.
	resp, err := http.Get("http://" + gw + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if !strings.Contains(string(body), "queue full") {
		t.Errorf("body %q does not say why", body)
	}
	close(release)
	<-done
}

func TestNoRouteIs404(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	gw := newGateway(t, up, upstream.QueueConfig{MaxPending: 10})
	req, _ := http.NewRequest("GET", "http://"+gw+"/", nil)
	log := slog.New(slog.DiscardHandler)
	g, err := New(Config{Routes: []Route{{Host: "only.example", Backend: "b"}}},
		map[string]http.RoundTripper{"b": http.DefaultTransport}, NewMetrics(nil), log)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound {
		t.Errorf("status %d", rec.Code)
	}
	if _, err := New(Config{Routes: []Route{{Backend: "missing"}}}, nil, NewMetrics(nil), log); err == nil {
		t.Error("route to a missing backend accepted")
	}
}

func TestUnreachableUpstreamIs502(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	gw := newGateway(t, addr, upstream.QueueConfig{MaxPending: 10})
	resp, err := http.Get("http://" + gw + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
}
