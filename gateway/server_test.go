package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/upstream"
)

// TestFrontConnExposesSocket: a cleartext connection from Gateway.Listen,
// with or without PROXY protocol, lets the HTTP/1.1 server wait for its
// next request on the socket (no buffer while idle), once nothing is
// buffered above it. Only without PROXY protocol is the socket at hand
// before a read (QuickSocket): h1 reads such a connection's first request
// on its accept loop.
func TestFrontConnExposesSocket(t *testing.T) {
	g, err := New(Config{Routes: []Route{{Backend: "b"}}}, map[string]http.RoundTripper{"b": http.DefaultTransport}, NewMetrics(nil), quiet())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		lc    ListenerConfig
		first string
		quick bool
	}{
		{"plain", ListenerConfig{Addr: "127.0.0.1:0"}, "", true},
		{"PROXY protocol", ListenerConfig{Addr: "127.0.0.1:0", ProxyProtocol: true, ProxyFrom: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
			"PROXY TCP4 203.0.113.9 127.0.0.1 4000 80\r\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := g.Listen(tt.lc)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			fl := &frontListener{Listener: ln, h2: newConnListener()}
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, tt.first)
			sc, err := fl.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			sc.SetDeadline(time.Now().Add(5 * time.Second))
			if q := sc.(*frontConn).QuickSocket(); q != tt.quick {
				t.Errorf("QuickSocket: %v, want %v", q, tt.quick)
			}
			if _, err := sc.(*frontConn).SyscallConn(); err != nil {
				t.Errorf("SyscallConn: %v", err)
			}
		})
	}
}

// TestHTTP11TooManyFieldsRefusedByParser: over HTTP/1.1 the field count is
// the parser's limit: 431, counted, and the connection closed with nothing
// sent on, as for a head over max_header_bytes.
func TestHTTP11TooManyFieldsRefusedByParser(t *testing.T) {
	s := newEdgeStack(t)
	var lines strings.Builder
	for i := range 101 {
		fmt.Fprintf(&lines, "X-F%d: v\r\n", i)
	}
	before := testutil.ToFloat64(s.m.rejected.WithLabelValues(reasonTooManyHeaders))
	c, err := net.Dial("tcp", s.plain)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"+lines.String()+"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(string(body), "too many header fields") || !res.Close {
		t.Errorf("%d %q close=%v; want 431, too many header fields, close", res.StatusCode, body, res.Close)
	}
	if _, err := http.ReadResponse(br, nil); err == nil {
		t.Error("the pipelined request after it was answered")
	}
	if n := testutil.ToFloat64(s.m.rejected.WithLabelValues(reasonTooManyHeaders)) - before; n != 1 {
		t.Errorf("sluice_client_rejected_total{reason=too_many_headers} grew by %v, want 1", n)
	}
	if n := s.seen.Load(); n != 0 {
		t.Errorf("origin saw %d requests", n)
	}
}

// sameConnListener accepts the same connection every time, allocating
// nothing of its own.
type sameConnListener struct {
	net.Listener
	c net.Conn
}

func (l sameConnListener) Accept() (net.Conn, error) { return l.c, nil }

// TestCleartextAcceptAllocatesNoGuard: a cleartext connection from
// Gateway.Listen costs its frontConn and nothing more when accepted; the
// smuggling guard (HTTP/2 only, since h1 parses HTTP/1.1 itself) is
// allocated when a connection is handed to HTTP/2
// (TestRapidResetClosesConnection).
func TestCleartextAcceptAllocatesNoGuard(t *testing.T) {
	g, err := New(Config{Routes: []Route{{Backend: "b"}}}, map[string]http.RoundTripper{"b": answer(200, "ok")}, NewMetrics(nil), quiet())
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	fl := newFrontListener(&guardListener{Listener: sameConnListener{c: a}, guard: g.guard}, nil)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := fl.Accept(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 1 {
		t.Errorf("%v allocations per accepted connection, want 1 (its frontConn)", allocs)
	}
}

// TestOneWritePerSmallProxiedResponse: over the HTTP/1.1 front end, a
// small proxied response whose length the upstream states leaves in one
// write, status line, fields and body together (issue 12).
func TestOneWritePerSmallProxiedResponse(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello, world")
	})
	g, err := New(Config{Routes: []Route{{Backend: "b"}}}, map[string]http.RoundTripper{"b": newBackend(t, upstream.Config{
		Protocol: upstream.H2C,
		Servers:  []upstream.ServerConfig{{Address: up}},
	})}, NewMetrics(nil), quiet())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	writes := new(atomic.Int64)
	serveOn(t, g, writeCountingListener{ln, writes}, false)
	c, br := gatewaytest.Dial(t, ln.Addr().String())
	for range 3 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		if string(body) != "hello, world" || res.ContentLength != 12 {
			t.Fatalf("%q, Content-Length %d", body, res.ContentLength)
		}
	}
	if n := writes.Load(); n != 3 {
		t.Errorf("%d writes for 3 responses, want 3", n)
	}
}

// writeCountingListener counts the writes to the connections it accepts,
// which keep their socket (SyscallConn) for the idle wait.
type writeCountingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l writeCountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return writeCountingConn{c.(*net.TCPConn), l.writes}, nil
}

type writeCountingConn struct {
	*net.TCPConn
	writes *atomic.Int64
}

func (c writeCountingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.TCPConn.Write(p)
}
