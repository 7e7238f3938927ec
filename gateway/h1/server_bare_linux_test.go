package h1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/rawsock"
)

// recordingListener keeps what it accepted; quick, it hands out its
// connections as quickConns.
type recordingListener struct {
	net.Listener
	quick bool
	mu    sync.Mutex
	conns []*rawsock.Conn
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.conns = append(l.conns, c.(*rawsock.Conn))
	l.mu.Unlock()
	if l.quick {
		return quickConn{c}, nil
	}
	return c, nil
}

// quickConn is a connection whose socket is at hand (QuickSocket), as
// gateway's frontConn without TLS or PROXY protocol: the accept loop
// reads its first request.
type quickConn struct{ net.Conn }

func (c quickConn) QuickSocket() bool { return true }

func (c quickConn) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(syscall.Conn).SyscallConn()
}

// bareFlavours are the two ways a connection accepted from gateway/rawsock
// starts: on a goroutine of its own (begin), or read on the accept loop
// (quick: serveAccepted).
var bareFlavours = []struct {
	name  string
	quick bool
}{{"own goroutine", false}, {"accept loop", true}}

// registered counts the accepted connections that were registered with
// the poller, of all accepted.
func (l *recordingListener) registered() (n, of int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		if c.Registered() {
			n++
		}
	}
	return n, len(l.conns)
}

// startBareServer is startServer on a gateway/rawsock listener with
// deferred accept, as the gateway's; quick, its connections say their
// socket is at hand.
func startBareServer(t *testing.T, s *Server, quick bool, h http.HandlerFunc) (string, *recordingListener) {
	t.Helper()
	s.Handler = h
	rl, err := rawsock.NewListener(listenDeferred(t))
	if err != nil {
		t.Fatal(err)
	}
	ln := &recordingListener{Listener: rl, quick: quick}
	serveUntilEnd(t, s, ln)
	return rl.Addr().String(), ln
}

// checkAcceptReads checks that the accept loop read the first bytes of
// the n connections s accepted if they were quick, and of none if not.
func checkAcceptReads(t *testing.T, s *Server, quick bool, n int64) {
	t.Helper()
	if !quick {
		n = 0
	}
	if got := s.acceptReads.Load(); got != n {
		t.Errorf("the accept loop read %d connections, want %d", got, n)
	}
}

// TestServerBareOneRequest: a connection that brings its whole request
// with it and asks to close is served without its socket ever going on
// the poller (no wait for readability to watch the request, none for its
// next one), for requests with and without a body, small answers and
// large ones (written with writev), Content-Length and chunked.
func TestServerBareOneRequest(t *testing.T) {
	for _, fl := range bareFlavours {
		t.Run(fl.name, func(t *testing.T) {
			big := strings.Repeat("0123456789", 100_000)
			s := &Server{}
			addr, ln := startBareServer(t, s, fl.quick, func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				switch r.URL.Path {
				case "/big":
					w.Header().Set("Content-Length", fmt.Sprint(len(big)))
					io.WriteString(w, big)
				case "/bigchunked":
					io.WriteString(w, big[:bufSize])
					w.(http.Flusher).Flush()
					io.WriteString(w, big)
				default:
					fmt.Fprintf(w, "%s %s", r.URL.Path, b)
				}
			})
			for _, tt := range []struct {
				req, method, want string
			}{
				{"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "GET", "/a "},
				{"POST /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbody", "POST", "/b body"},
				{"GET /c HTTP/1.0\r\nHost: h\r\n\r\n", "GET", "/c "},
				{"GET /big HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "GET", big},
				{"GET /bigchunked HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "GET", big[:bufSize] + big},
			} {
				c, br := dial(t, addr)
				io.WriteString(c, tt.req)
				if _, body := readResponse(t, br, tt.method); body != tt.want {
					t.Fatalf("%q: body of %d bytes, want %d", tt.req, len(body), len(tt.want))
				}
				if _, err := br.ReadByte(); err != io.EOF {
					t.Fatalf("%q: after the response: %v, want EOF", tt.req, err)
				}
				c.Close()
			}
			if n, of := ln.registered(); n != 0 || of != 5 {
				t.Errorf("%d of %d connections registered with the poller, want 0 of 5", n, of)
			}
			checkAcceptReads(t, s, fl.quick, 5)
		})
	}
}

// TestServerBareKeepAlive: a keep-alive connection is served as on any
// socket: its watcher watches its first request at once (the socket goes
// on the poller then), and pipelined requests are answered in order.
func TestServerBareKeepAlive(t *testing.T) {
	for _, fl := range bareFlavours {
		t.Run(fl.name, func(t *testing.T) {
			s := &Server{}
			addr, ln := startBareServer(t, s, fl.quick, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/first" {
					echo(w, r)
					return
				}
				// Watched while it is served, not late: its watcher waits on
				// the socket (which registers it).
				s.mu.Lock()
				late := lateNone
				for cc := range s.conns {
					cc.watchMu.Lock()
					late = cc.lateWatch
					cc.watchMu.Unlock()
				}
				s.mu.Unlock()
				fmt.Fprint(w, late)
			})
			c, br := dial(t, addr)
			io.WriteString(c, "GET /first HTTP/1.1\r\nHost: h\r\n\r\n")
			if _, body := readResponse(t, br, "GET"); body != fmt.Sprint(lateNone) {
				t.Fatalf("first keep-alive request: late watch %s, want %d (none)", body, lateNone)
			}
			for i := range 3 {
				fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: h\r\n\r\n", i)
				readResponse(t, br, "GET")
			}
			io.WriteString(c, "GET /p1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /p2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi")
			readResponse(t, br, "GET")
			if _, body := readResponse(t, br, "POST"); body != "hi" {
				t.Fatalf("pipelined POST: %q", body)
			}
			if n, of := ln.registered(); n != 1 || of != 1 {
				t.Errorf("%d of %d connections registered, want 1 of 1", n, of)
			}
			checkAcceptReads(t, s, fl.quick, 1)
		})
	}
}

// TestServerBareLateWatch: a client that leaves while its request, served
// unwatched, is still served has the request's context cancelled once the
// request has run lateWatchDelay: its watcher starts then, and sees it go.
func TestServerBareLateWatch(t *testing.T) {
	for _, fl := range bareFlavours {
		t.Run(fl.name, func(t *testing.T) {
			canceled := make(chan error, 1)
			s := &Server{}
			addr, ln := startBareServer(t, s, fl.quick, func(w http.ResponseWriter, r *http.Request) {
				awaitCancel(w, r, canceled)
			})
			c, _ := dial(t, addr)
			io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
			for {
				if _, of := ln.registered(); of == 1 {
					break
				}
				time.Sleep(time.Millisecond)
			}
			c.Close()
			select {
			case err := <-canceled:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("the request's context ended with %v", err)
				}
			case <-time.After(lateWatchDelay + 10*time.Second):
				t.Fatal("the request was never cancelled")
			}
		})
	}
}

// TestAsksClose: the quick look at whether a request is its connection's
// last.
func TestAsksClose(t *testing.T) {
	for _, tt := range []struct {
		req  string
		want bool
	}{
		{"GET / HTTP/1.1\r\nHost: h\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nconnection: Upgrade, CLOSE\r\nHost: h\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", false},
		{"GET / HTTP/1.0\r\nHost: h\r\n\r\n", true},
		{"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nX-Note: Connection: close\r\n\r\n", false},
		{"POST / HTTP/1.1\r\nContent-Length: 18\r\n\r\nConnection: close\n", false},
		{"GET / HTTP/1.1\r\nConnection: x-close, closed\r\n\r\n", false},
		{"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", true},
	} {
		if got := asksClose([]byte(tt.req)); got != tt.want {
			t.Errorf("asksClose(%q) = %v, want %v", tt.req, got, tt.want)
		}
	}
}
