package h1

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/rawsock"
)

// quickAccept serves s on a gateway/rawsock listener with deferred accept
// whose connections say their socket is at hand: the accept loop reads
// their first bytes.
var quickAccept = startQuick

func startQuick(t *testing.T, s *Server) string {
	t.Helper()
	addr, _ := startBareServer(t, s, true, s.Handler.ServeHTTP)
	return addr
}

// serveQuick serves s with h on a gateway/rawsock listener without
// deferred accept (a connection's first bytes may come after it is
// accepted), its connections quick, once start is called.
func serveQuick(t *testing.T, s *Server, h http.HandlerFunc) (addr string, start func()) {
	t.Helper()
	s.Handler = h
	tl, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	rl, err := rawsock.NewListener(tl)
	if err != nil {
		t.Fatal(err)
	}
	return rl.Addr().String(), func() { serveUntilEnd(t, s, &recordingListener{Listener: rl, quick: true}) }
}

// TestServerAcceptLoopStartsNoGoroutine: a connection that brings its
// whole request and asks to close, its socket at hand, is served with no
// goroutine started for it: the accept loop reads the request and hands
// it to a worker kept from earlier requests.
func TestServerAcceptLoopStartsNoGoroutine(t *testing.T) {
	addr := startQuick(t, &Server{Handler: http.HandlerFunc(echo)})
	get := func() {
		c, br := dial(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		readResponse(t, br, "GET")
		c.Close()
	}
	checkFewGoroutines(t, "Connection: close connections", get)
}

// TestServerAcceptLoopFirstBytesLate: a quick connection accepted before
// its first bytes came is left to its watcher, which waits for them under
// the head's clock: a request that comes late is served, keep-alive ones
// after it too, and a client that sends nothing is cut by the
// read-header timeout.
func TestServerAcceptLoopFirstBytesLate(t *testing.T) {
	s := &Server{ReadHeaderTimeout: 300 * time.Millisecond}
	addr, start := serveQuick(t, s, echo)
	start()
	c, br := dial(t, addr)
	time.Sleep(50 * time.Millisecond) // accepted with nothing to read
	for range 3 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		if res, _ := readResponse(t, br, "GET"); res.StatusCode != http.StatusOK {
			t.Fatalf("status %d", res.StatusCode)
		}
	}
	if n := s.firstWaits.Load(); n != 1 {
		t.Errorf("%d connections waited for their first bytes, want 1", n)
	}
	if n := s.acceptReads.Load(); n != 1 {
		t.Errorf("the accept loop read %d connections, want 1", n)
	}

	silent, sbr := dial(t, addr)
	began := time.Now()
	if _, err := sbr.ReadByte(); err != io.EOF {
		t.Fatalf("a client that sends nothing: %v, want the end of stream", err)
	}
	if d := time.Since(began); d < 250*time.Millisecond {
		t.Errorf("a client that sends nothing cut after %v, before the read-header timeout", d)
	}
	silent.Close()
	c.Close()
	waitNoConns(t, s)
}

// TestServerAcceptLoopClientGone: a client that left before its
// connection was accepted, having sent nothing or part of a head, is
// closed and forgotten.
func TestServerAcceptLoopClientGone(t *testing.T) {
	s := &Server{}
	addr, start := serveQuick(t, s, echo)
	for _, sent := range []string{"", "GET / HT"} {
		c, _ := dial(t, addr)
		io.WriteString(c, sent)
		c.Close()
	}
	time.Sleep(20 * time.Millisecond) // the ends of stream are there before accept
	start()
	for deadline := time.Now().Add(5 * time.Second); s.acceptReads.Load() < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the accept loop read %d connections, want 2", s.acceptReads.Load())
		}
	}
	waitNoConns(t, s)
}
