package h1

import (
	"context"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// startDeferred serves s on a loopback listener that defers accept to
// the first bytes, as gateway's does, until the test ends, and returns
// its address.
func startDeferred(t *testing.T, s *Server) string {
	t.Helper()
	ln := listenDeferred(t)
	serveUntilEnd(t, s, ln)
	return ln.Addr().String()
}

// listenDeferred opens a loopback listener that defers accept to the
// first bytes, as gateway's does.
func listenDeferred(t *testing.T) *net.TCPListener {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 1)
		})
		return err
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln.(*net.TCPListener)
}

// TestServerReadsFirstBytesAtAccept: on a listener that defers accept to
// the first bytes (as gateway's does), a connection's first request is
// read at once, with no wait on the poller for it; and, HTTP/2 with prior
// knowledge served on the same port (H2), a whole first request that
// cannot be HTTP/2 is taken by the connection's watcher as a keep-alive
// one is (takeRequest): no peek to start the wait that watches it, no
// kick to have a watcher watch it. So a Connection: close request, the
// only one of its connection, costs no look of the watcher's.
func TestServerReadsFirstBytesAtAccept(t *testing.T) {
	h2 := func(c net.Conn, _ []byte) {
		t.Error("an HTTP/1.1 request went to H2")
		c.Close()
	}
	// The handler takes a while, as a proxied request does: time for a
	// watcher that starts its own wait for the request to look.
	slowEcho := func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond)
		echo(w, r)
	}
	s := &Server{Handler: http.HandlerFunc(slowEcho), H2: h2}
	addr := startDeferred(t, s)
	const conns = 20
	connClose(t, s, addr, conns)
	if n := s.firstWaits.Load(); n != 0 {
		t.Errorf("%d of %d connections waited for their first bytes, want none", n, conns)
	}
	// A few: the readiness the socket had as the poller took it up may
	// reach the poller's goroutine only once the watcher waits, and wake
	// it to look once.
	if n := s.looks.Load(); n > conns/4 {
		t.Errorf("%d peeks or empty reads for %d Connection: close requests, want none or a few", n, conns)
	}
	if n := s.kicks.Load(); n != 0 {
		t.Errorf("%d watchers kicked for %d Connection: close requests, want none", n, conns)
	}
	// Without deferred accept, the first bytes are waited for, under the
	// head's clock: by the watcher too, which takes the request.
	s = &Server{H2: h2}
	connClose(t, s, startServer(t, s, slowEcho), conns)
	if n := s.kicks.Load(); n != 0 {
		t.Errorf("without deferred accept: %d watchers kicked for %d Connection: close requests, want none", n, conns)
	}
}

// connClose sends n Connection: close requests to s at addr, GETs and
// POSTs, each on a connection of its own, and checks their answers. Each
// client closes only once s has: a client seen leaving while its request
// is served would take a look.
func connClose(t *testing.T, s *Server, addr string, conns int) {
	t.Helper()
	for i := range conns {
		c, br := dial(t, addr)
		if i%2 == 0 {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
			if res, _ := readResponse(t, br, "GET"); res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
		} else {
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbody")
			if res, body := readResponse(t, br, "POST"); res.StatusCode != http.StatusOK || body != "body" {
				t.Fatalf("status %d, body %q", res.StatusCode, body)
			}
		}
		waitNoConns(t, s)
		c.Close()
	}
}

// waitNoConns waits until s has closed every connection.
func waitNoConns(t *testing.T, s *Server) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open", n)
		}
	}
}

// TestServerFirstRequestInPieces: a first request that comes in pieces,
// with HTTP/2 with prior knowledge served on the same port, is answered
// whole, whether its first piece could be the start of the HTTP/2 preface
// ("P") or not, with its head or its body split.
func TestServerFirstRequestInPieces(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(echo), H2: func(c net.Conn, _ []byte) {
		t.Error("an HTTP/1.1 request went to H2")
		c.Close()
	}}
	addrs := map[string]string{
		"deferred accept": startDeferred(t, s),
		"plain":           startServer(t, &Server{H2: s.H2}, echo),
		"accept loop":     startQuick(t, &Server{Handler: s.Handler, H2: s.H2}),
	}
	for _, tt := range []struct {
		name, method string
		parts        []string
	}{
		{"head split", "GET", []string{"GET /s HTTP/1.1\r\nHo", "st: h\r\nConnection: close\r\n\r\n"}},
		{"first byte alone", "POST", []string{"P", "OST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody"}},
		{"preface-like start", "PRI", []string{"PRI /s HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"}},
		{"body split", "POST", []string{"POST /s HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbo", "dy"}},
	} {
		for lname, addr := range addrs {
			c, br := dial(t, addr)
			for i, p := range tt.parts {
				if i > 0 {
					time.Sleep(20 * time.Millisecond) // the server reads the piece before alone
				}
				io.WriteString(c, p)
			}
			res, body := readResponse(t, br, tt.method)
			if res.StatusCode != http.StatusOK || res.Header.Get("X-Target") != "/s" {
				t.Errorf("%s, %s: %d for %q", tt.name, lname, res.StatusCode, res.Header.Get("X-Target"))
			}
			if tt.method == "POST" && body != "body" {
				t.Errorf("%s, %s: body %q", tt.name, lname, body)
			}
			c.Close()
		}
	}
}

// TestServerCloseEndsStreamWithResponse: after the last response of a
// connection that closes, the client sees the end of stream at once, even
// while the server still reads what is left of the request body before
// it closes the socket: the end of stream leaves with the response.
func TestServerCloseEndsStreamWithResponse(t *testing.T) {
	addr := startServer(t, &Server{}, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "done")
	})
	c, br := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 10\r\n\r\nhello")
	if res, body := readResponse(t, br, "POST"); res.StatusCode != http.StatusOK || body != "done" {
		t.Fatalf("response: %d %q", res.StatusCode, body)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after the response: %d bytes, %v; want the end of stream", n, err)
	}
	io.WriteString(c, "world") // the rest of the body, read and dropped
}

// deferAccept is startDeferred where listeners can defer accept.
var deferAccept = startDeferred
