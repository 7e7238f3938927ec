package h1

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// startServer serves h on a loopback listener until the test ends and
// returns its address.
func startServer(t *testing.T, s *Server, h http.HandlerFunc) string {
	t.Helper()
	s.Handler = h
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveUntilEnd(t, s, ln)
	return ln.Addr().String()
}

// serveUntilEnd serves s on ln until the test ends, then shuts it down.
func serveUntilEnd(t *testing.T, s *Server, ln net.Listener) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	})
}

// dial opens a client connection with a deadline for the whole test.
func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	return gatewaytest.Dial(t, addr)
}

// servedConn serves echo with s and returns a client connection that
// has had one keep-alive GET answered.
func servedConn(t *testing.T, s *Server) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, br := dial(t, startServer(t, s, echo))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	readResponse(t, br, "GET")
	return c, br
}

// readResponse reads one response to a request with method.
func readResponse(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return res, string(b)
}
