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

// TestServerReadsFirstBytesAtAccept: on a listener that defers accept to
// the first bytes (as gateway's does), a connection's first request is
// read by a worker at once: no goroutine of the connection's own waits
// for it.
func TestServerReadsFirstBytesAtAccept(t *testing.T) {
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
	s := &Server{Handler: http.HandlerFunc(echo)}
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	})
	const conns = 20
	for range conns {
		c, br := dial(t, ln.Addr().String())
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		if res, _ := readResponse(t, br, "GET"); res.StatusCode != http.StatusOK {
			t.Fatalf("status %d", res.StatusCode)
		}
		c.Close()
	}
	if n := s.firstWaits.Load(); n != 0 {
		t.Errorf("%d of %d connections waited for their first bytes on a goroutine of their own, want none", n, conns)
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
