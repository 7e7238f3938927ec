package h1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// serveOnListener serves s with h on ln, wrapped by wrap, until the test
// ends, and returns the address.
func serveWrapped(t *testing.T, s *Server, h http.HandlerFunc, wrap func(net.Listener) net.Listener) string {
	t.Helper()
	s.Handler = h
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(wrap(ln)) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String()
}

// watchFlavours are the two ways the watcher waits: on the raw socket
// (waitReadable), and, on a connection that has none (TLS, wrappers), by
// reading one byte (readOne).
var watchFlavours = []struct {
	name string
	wrap func(net.Listener) net.Listener
}{
	{"raw socket", func(ln net.Listener) net.Listener { return ln }},
	{"no raw socket", func(ln net.Listener) net.Listener { return noRawListener{ln} }},
}

// noRawListener's connections hide the socket's SyscallConn.
type noRawListener struct{ net.Listener }

type noRawConn struct{ net.Conn }

func (l noRawListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return noRawConn{c}, nil
}

// TestServerClientAbortWhileWatched: a client leaving while its request
// waits is noticed on every request of a connection, after earlier ones
// were answered (the watcher that waited for it was the one that watched
// the request before), with a body read or none; and a client that sends
// its next request while one waits is not taken for one that left: both
// are answered, in order.
func TestServerClientAbortWhileWatched(t *testing.T) {
	for _, fl := range watchFlavours {
		t.Run(fl.name, func(t *testing.T) {
			canceled := make(chan error, 1)
			addr := serveWrapped(t, &Server{}, func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				switch r.URL.Path {
				case "/slow":
					time.Sleep(100 * time.Millisecond) // the next request comes meanwhile
				case "/wait":
					awaitCancel(w, r, canceled)
					return
				}
				io.WriteString(w, r.URL.Path)
			}, fl.wrap)
			for _, method := range []string{"GET", "POST"} {
				c, br := dial(t, addr)
				req := func(path string) string {
					if method == "POST" {
						return "POST " + path + " HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody"
					}
					return "GET " + path + " HTTP/1.1\r\nHost: h\r\n\r\n"
				}
				for i := range 3 {
					io.WriteString(c, req(fmt.Sprintf("/%d", i)))
					if _, body := readResponse(t, br, method); body != fmt.Sprintf("/%d", i) {
						t.Fatalf("%s %d: %q", method, i, body)
					}
				}
				io.WriteString(c, req("/slow"))
				time.Sleep(20 * time.Millisecond) // /slow is being served
				io.WriteString(c, req("/next"))
				for _, want := range []string{"/slow", "/next"} {
					if _, body := readResponse(t, br, method); body != want {
						t.Fatalf("%s: %q, want %q", method, body, want)
					}
				}
				io.WriteString(c, req("/wait"))
				res, err := http.ReadResponse(br, nil)
				if err != nil || res.StatusCode != http.StatusOK {
					t.Fatalf("%s: %v %v", method, res, err)
				}
				c.Close()
				if err := <-canceled; !errors.Is(err, context.Canceled) {
					t.Errorf("%s: %v", method, err)
				}
			}
		})
	}
}

// awaitCancel answers 200 at once, then waits for the request's context
// to end, for up to 5 s, and sends how it ended on canceled.
func awaitCancel(w http.ResponseWriter, r *http.Request, canceled chan<- error) {
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	select {
	case <-r.Context().Done():
		canceled <- r.Context().Err()
	case <-time.After(5 * time.Second):
		canceled <- errors.New("not canceled")
	}
}

// deadlineListener counts its connections' SetReadDeadline calls.
type deadlineListener struct {
	net.Listener
	n *atomic.Int64
}

type deadlineConn struct {
	*net.TCPConn
	n *atomic.Int64
}

func (c deadlineConn) SetReadDeadline(t time.Time) error {
	c.n.Add(1)
	return c.TCPConn.SetReadDeadline(t)
}

func (l deadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return deadlineConn{c.(*net.TCPConn), l.n}, nil
}

// TestServerDeadlinesPerRequest: keep-alive requests without a body that
// come in one piece set no read deadline: the idle timeout's, set when
// the connection first went idle, stays on the socket through them
// (readHead, idle), since none reads a body. (It was two a request: the
// idle deadline cleared after each head and set again after it; seven
// before that: the head's two, the watcher's stop and restart, the
// drain's two and the idle one.)
func TestServerDeadlinesPerRequest(t *testing.T) {
	var n atomic.Int64
	addr := serveWrapped(t, &Server{}, echo, func(ln net.Listener) net.Listener { return deadlineListener{ln, &n} })
	c, br := dial(t, addr)
	const reqs = 50
	for i := range reqs {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		readResponse(t, br, "GET")
		if i == 0 {
			n.Store(0) // the first request's clock, from the connection's start
		}
	}
	// The first request's idle deadline may be set after the count was
	// reset, and its clearing after its head before.
	if got := n.Load(); got > 1 {
		t.Errorf("%d read deadlines set for %d requests, want at most 1 in all", got, reqs-1)
	}
}

// TestServerKeepAliveStartsNoGoroutine: keep-alive requests of a
// connection start no goroutine: the watcher that hands each next request
// to a worker parks until the worker has it watch that request, and goes
// on as the idle connection's (it was one started and ended per request),
// and the worker is a parked one.
func TestServerKeepAliveStartsNoGoroutine(t *testing.T) {
	for _, fl := range watchFlavours {
		t.Run(fl.name, func(t *testing.T) {
			addr := serveWrapped(t, &Server{}, echo, fl.wrap)
			c, br := dial(t, addr)
			get := func() {
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
				readResponse(t, br, "GET")
			}
			checkFewGoroutines(t, "keep-alive requests", get)
		})
	}
}

// checkFewGoroutines runs do 3 times, which starts what it needs (a
// worker, a watcher), then 50 times more, and fails if those started a
// goroutine each: a request may come before its worker parked and take
// another, so a few are let pass.
func checkFewGoroutines(t *testing.T, what string, do func()) {
	t.Helper()
	for range 3 {
		do()
	}
	const n = 50
	before := goroutinesCreated()
	for range n {
		do()
	}
	if got := goroutinesCreated() - before; got > n/10 {
		t.Errorf("%d goroutines started for %d %s", got, n, what)
	}
}

// goroutinesCreated is the count of goroutines the process has started.
func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// goroutineID is the calling goroutine's id, from its stack trace.
func goroutineID() string {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	id, _, _ := strings.Cut(strings.TrimPrefix(string(b), "goroutine "), " ")
	return id
}

// TestServerRequestsReuseWorkers: requests, of one connection or several,
// are served by goroutines kept from earlier requests (workers), whose
// stacks are grown already, not each on a new one.
func TestServerRequestsReuseWorkers(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	s := &Server{}
	addr := startServer(t, s, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[goroutineID()]++
		mu.Unlock()
	})
	c1, br1 := dial(t, addr)
	c2, br2 := dial(t, addr)
	const reqs = 40
	for i := range reqs {
		c, br := c1, br1
		if i%2 == 1 {
			c, br = c2, br2
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		readResponse(t, br, "GET")
	}
	mu.Lock()
	defer mu.Unlock()
	// A worker parks only after its connection's watcher took over: the
	// next request may come before and start another. A few, not one per
	// request.
	if len(seen) > reqs/4 {
		t.Errorf("%d requests served on %d goroutines", reqs, len(seen))
	}
	// Workers only serve: a new connection begins on its own goroutine
	// (conn.begin).
	if n := s.workers.started.Load(); n != int64(len(seen)) {
		t.Errorf("%d workers started, %d seen serving, want as many", n, len(seen))
	}
}

// TestServerIdleConnDropsRequest: an idle connection keeps nothing of its
// last request: its context and cancel function are dropped.
func TestServerIdleConnDropsRequest(t *testing.T) {
	s := &Server{}
	servedConn(t, s)
	conns := waitConns(t, s, "connection never idle", func(conns []*conn) bool {
		return len(idleConns(conns)) == 1
	})
	cc := idleConns(conns)[0]
	cc.watchMu.Lock()
	kept := cc.cancelReq != nil
	cc.watchMu.Unlock()
	if kept {
		t.Fatal("an idle connection keeps its last request's cancel function")
	}
}

// TestServerRequestTakesNoServerLock: a keep-alive request's state
// changes (moveTo) and the shutdown check of its response take no lock
// of the server's, which every connection's requests would share: with
// it held, requests are still served.
func TestServerRequestTakesNoServerLock(t *testing.T) {
	s := &Server{}
	c, br := servedConn(t, s)
	s.mu.Lock()
	defer s.mu.Unlock()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	for i := range 3 {
		fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: h\r\n\r\n", i)
		readResponse(t, br, "GET")
	}
}
