package gateway

import (
	"bufio"
	"net"
	"net/http"
	"testing"

	"github.com/sluice-gw/sluice/upstream"
)

// h1Answer is Tomcat's answer to the bench's GET on an HTTP/1.1-only
// connector, as its fields come.
var h1Answer = []byte("HTTP/1.1 200 \r\nContent-Type: text/plain\r\nContent-Length: 18\r\nDate: Wed, 02 Dec 2026 07:00:00 GMT\r\n\r\nhello from tomcat\n")

// h1Origin is an HTTP/1.1-only origin answering every request head (GETs
// without a body) with h1Answer, as cheaply as it can, so that the
// benchmark's figures are the gateway's. It ends each connection's
// keep-alive after perConn answers with Connection: close, as Tomcat's
// maxKeepAliveRequests does (0: never).
func h1Origin(tb testing.TB, perConn int) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	last := []byte("HTTP/1.1 200 \r\nContent-Type: text/plain\r\nContent-Length: 18\r\nDate: Wed, 02 Dec 2026 07:00:00 GMT\r\nConnection: close\r\n\r\nhello from tomcat\n")
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				br := bufio.NewReaderSize(nc, 4<<10)
				for n := 1; ; {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(line) != 2 {
						continue
					}
					if n == perConn {
						nc.Write(last)
						return
					}
					if _, err := nc.Write(h1Answer); err != nil {
						return
					}
					n++
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// h1PoolGateway serves a gateway whose backend runs its HTTP/1.1 pool (4
// connections) in front of h1Origin(perConn) on the HTTP/1.1 front end
// until the test ends, and returns its address.
func h1PoolGateway(tb testing.TB, perConn int) string {
	tb.Helper()
	be := newBackend(tb, upstream.Config{
		Protocol: upstream.H1,
		Servers:  []upstream.ServerConfig{{Address: h1Origin(tb, perConn)}},
		H1:       upstream.H1Config{ConnsPerServer: 4},
		Queue:    upstream.QueueConfig{MaxPending: 100},
	})
	g, err := New(Config{Routes: []Route{{Backend: "b"}}}, map[string]http.RoundTripper{"b": be}, NewMetrics(nil), quiet())
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := g.Listen(ListenerConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		tb.Fatal(err)
	}
	s := NewServer(g, false)
	go s.Serve(ln)
	tb.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

// h1PoolClient connects to h1PoolGateway(perConn).
func h1PoolClient(tb testing.TB, perConn int) (net.Conn, *bufio.Reader) {
	tb.Helper()
	return dialFront(tb, h1PoolGateway(tb, perConn))
}

// dialFront connects to the gateway's front end at addr until the test
// ends.
func dialFront(tb testing.TB, addr string) (net.Conn, *bufio.Reader) {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// maxAllocsPerH1PoolRequest pins allocations per proxied GET on the
// HTTP/1.1 pool, measured by TestProxyRequestH1PoolAllocs: 28 with the
// gateway's exchange left to the GC after an HTTP/1.1 round trip, 22 with
// it reused as after an h2c one, 14 with the attempt's context the
// tracker's own and h1compat/client watching it through OnCancel rather
// than context.AfterFunc, plus slack. The origin allocates nothing
// per request, so all of them are Sluice's: the front end's, the
// gateway's, the upstream attempt's and h1compat/client's.
const maxAllocsPerH1PoolRequest = 16

// TestProxyRequestH1PoolAllocs fails when a change makes requests proxied
// on the HTTP/1.1 pool allocate more.
func TestProxyRequestH1PoolAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	if testing.Short() {
		t.Skip("measures")
	}
	c, br := h1PoolClient(t, 0)
	if got := h1AllocsPerRequest(t, c, br); got > maxAllocsPerH1PoolRequest {
		t.Errorf("%.1f allocations per request proxied on the HTTP/1.1 pool, pinned at %d", got, maxAllocsPerH1PoolRequest)
	}
}

// BenchmarkProxyRequestH1Pool is BenchmarkProxyRequestH1 with the backend
// on its HTTP/1.1 pool, in front of an origin that ends each connection's
// keep-alive after 100 answers (Tomcat's maxKeepAliveRequests), as make
// bench-h1.
func BenchmarkProxyRequestH1Pool(b *testing.B) {
	c, br := h1PoolClient(b, 100)
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

// BenchmarkProxyRequestH1PoolQueued is BenchmarkProxyRequestH1Pool with 16
// client connections per GOMAXPROCS sharing the pool's 4 connections, so
// that most requests wait in the backend's queue, as under make bench-h1's
// 2,000 clients on 128 connections.
func BenchmarkProxyRequestH1PoolQueued(b *testing.B) {
	addr := h1PoolGateway(b, 100)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		c, br := dialFront(b, addr)
		for pb.Next() {
			if _, err := c.Write(h1BenchRequest); err != nil {
				b.Error(err)
				return
			}
			if err := readSmallResponse(br); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
