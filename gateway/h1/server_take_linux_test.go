package h1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// waitOwned waits until s's one connection is idle with its watcher
// waiting for the next request (watchOwns), so that the next request is
// the watcher's to take (takeRequest).
func waitOwned(t *testing.T, s *Server) {
	t.Helper()
	waitOwnedN(t, s, 1)
}

// waitOwnedN is waitOwned for n connections.
func waitOwnedN(t *testing.T, s *Server, n int) {
	t.Helper()
	waitConns(t, s, "the connection's watcher never took it over", func(conns []*conn) bool {
		owned := 0
		for _, cc := range conns {
			cc.watchMu.Lock()
			if cc.watching == watchOwns {
				owned++
			}
			cc.watchMu.Unlock()
		}
		return owned == n
	})
}

// TestServerKeepAliveNoPeekNoKick: a keep-alive request that comes whole,
// without a body or with all of it, while its connection idles, is read
// by the idle connection's watcher, which goes on waiting, now watching
// the request: no peek or empty read to start a new wait (there was one
// a request), and no kick from the worker to have the watcher watch (one
// a request too).
func TestServerKeepAliveNoPeekNoKick(t *testing.T) {
	s := &Server{}
	addr := startServer(t, s, echo)
	c, br := dial(t, addr)
	for range 3 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		readResponse(t, br, "GET")
	}
	const reqs = 50
	looks, kicks := s.looks.Load(), s.kicks.Load()
	for i := range reqs {
		waitOwned(t, s)
		if i%2 == 0 {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
			readResponse(t, br, "GET")
			continue
		}
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody")
		if _, body := readResponse(t, br, "POST"); body != "body" {
			t.Fatalf("POST: %q", body)
		}
	}
	if n := s.looks.Load() - looks; n > 2 {
		t.Errorf("%d peeks or empty reads for %d keep-alive requests, want none", n, reqs)
	}
	if n := s.kicks.Load() - kicks; n > 2 {
		t.Errorf("%d watchers kicked for %d keep-alive requests, want none", n, reqs)
	}
}

// TestServerTakeLeavesTheRest: what the watcher cannot take whole, or
// when its read may have left bytes in the socket (it filled the buffer:
// their readiness is spent), goes to a worker that reads on, and every
// request is answered, in order: a head of exactly the buffer's size,
// alone or with the next request behind it in the same write; pipelined
// requests larger than the buffer together; a head or a body that comes
// in two writes.
func TestServerTakeLeavesTheRest(t *testing.T) {
	s := &Server{}
	addr := startServer(t, s, echo)
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	readResponse(t, br, "GET")

	// sized is a GET of exactly n bytes, its target /name.
	sized := func(name string, n int) string {
		h := "GET /" + name + " HTTP/1.1\r\nHost: h\r\nX-Pad: "
		return h + strings.Repeat("p", n-len(h)-4) + "\r\n\r\n"
	}
	type part struct {
		data  string
		pause bool // before this part
	}
	tests := []struct {
		name  string
		parts []part
		want  []string // targets answered, in order
	}{
		{"head of the buffer's size", []part{{data: sized("a", bufSize)}}, []string{"/a"}},
		{"head of the buffer's size and the next", []part{{data: sized("a", bufSize) + sized("b", 100)}}, []string{"/a", "/b"}},
		{"head of the buffer's size less one and the next", []part{{data: sized("a", bufSize-1) + sized("b", 100)}}, []string{"/a", "/b"}},
		{"pipelined past the buffer", []part{{data: strings.Repeat(sized("p", 1000), 10)}}, []string{"/p", "/p", "/p", "/p", "/p", "/p", "/p", "/p", "/p", "/p"}},
		{"head in two writes", []part{{data: "GET /s HTTP/1.1\r\nHo"}, {data: "st: h\r\n\r\n", pause: true}}, []string{"/s"}},
		{"body in a later write", []part{{data: "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbo"}, {data: "dy", pause: true}}, []string{"/b"}},
		{"chunked body", []part{{data: "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n"}}, []string{"/c"}},
		{"body and the next head", []part{{data: "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody" + sized("n", 100)}}, []string{"/b", "/n"}},
	}
	for _, tt := range tests {
		for round := range 2 {
			waitOwned(t, s)
			for _, p := range tt.parts {
				if p.pause {
					time.Sleep(20 * time.Millisecond)
				}
				io.WriteString(c, p.data)
			}
			for _, want := range tt.want {
				method := "GET"
				if strings.HasPrefix(want, "/b") || strings.HasPrefix(want, "/c") {
					method = "POST"
				}
				res, err := http.ReadResponse(br, &http.Request{Method: method})
				if err != nil {
					t.Fatalf("%s, round %d: %v", tt.name, round, err)
				}
				io.Copy(io.Discard, res.Body)
				if got := res.Header.Get("X-Target"); got != want || res.StatusCode != http.StatusOK {
					t.Fatalf("%s, round %d: %d for %q, want %q", tt.name, round, res.StatusCode, got, want)
				}
			}
		}
	}
}

// TestServerTakenRequestAbort: a client that leaves while a request the
// watcher took waits is noticed: the watcher that took it watches it.
func TestServerTakenRequestAbort(t *testing.T) {
	canceled := make(chan error, 1)
	s := &Server{}
	addr := startServer(t, s, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/wait" {
			awaitCancel(w, r, canceled)
			return
		}
		io.WriteString(w, r.URL.Path)
	})
	for _, req := range []string{
		"GET /wait HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /wait HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody",
	} {
		c, br := dial(t, addr)
		for i := range 2 {
			fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: h\r\n\r\n", i)
			readResponse(t, br, "GET")
		}
		waitOwned(t, s)
		kicks := s.kicks.Load()
		io.WriteString(c, req)
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("%v %v", res, err)
		}
		if n := s.kicks.Load() - kicks; n != 0 {
			t.Errorf("%d kicks: the request was not the watcher's to take", n)
		}
		c.Close()
		if err := <-canceled; !errors.Is(err, context.Canceled) {
			t.Errorf("%q: %v", req, err)
		}
	}
}

// TestServerTakenRequestHijack: a request the watcher took can be
// hijacked: the watcher waiting in the middle of it stops, and the
// handler reads the socket.
func TestServerTakenRequestHijack(t *testing.T) {
	s := &Server{}
	addr := startServer(t, s, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hijack" {
			io.WriteString(w, r.URL.Path)
			return
		}
		c, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		b := make([]byte, 4)
		if _, err := io.ReadFull(brw, b); err != nil {
			t.Error(err)
			return
		}
		c.Write(b)
	})
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	readResponse(t, br, "GET")
	waitOwned(t, s)
	io.WriteString(c, "GET /hijack HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("%v %v", res, err)
	}
	io.WriteString(c, "ping")
	b := make([]byte, 4)
	if _, err := io.ReadFull(br, b); err != nil || string(b) != "ping" {
		t.Fatalf("%q %v", b, err)
	}
}

// TestServerTakingKeepsWatcherStackSmall: a watcher that takes requests
// (takeRequest, deep in the poller's wait) does it within the 2 KiB of
// stack a goroutine starts with, so that an idle connection's stays that
// small: the parser, whose frames would grow it to 4 KiB for good (the
// runtime does not shrink a stack a quarter used), runs on the worker.
// The watcher runs here on a goroutine left watcherStack bytes of stack,
// and the test fails if that had to grow.
func TestServerTakingKeepsWatcherStackSmall(t *testing.T) {
	checkWatcherStack(t, func() *Server { return &Server{Handler: http.HandlerFunc(echo)} }, false,
		func(s *Server, sc net.Conn) func() {
			cc := newConn(s, sc)
			if !cc.start() {
				t.Fatal("not started")
			}
			cc.first = false
			cc.watching = watchOwns
			return func() { cc.await(cc.rawConn()) }
		})
}

// TestServerFirstTakeKeepsWatcherStackSmall: a fresh connection's own
// goroutine, which starts it, takes its first request and goes on as its
// watcher (begin), does so within the same stack, with HTTP/2 with prior
// knowledge served too (H2).
func TestServerFirstTakeKeepsWatcherStackSmall(t *testing.T) {
	checkWatcherStack(t, func() *Server {
		return &Server{Handler: http.HandlerFunc(echo), H2: func(c net.Conn, _ []byte) { c.Close() }}
	}, true, func(s *Server, sc net.Conn) func() { return newConn(s, sc).begin })
}

// checkWatcherStack runs what watcher returns, the watcher of a connection
// accepted by a server from newServer, on a goroutine left watcherStack
// bytes of stack, has the client send requests it takes, the first one
// before it starts if firstAhead (as with deferred accept), and fails if
// the stack grew in a majority of tries.
func checkWatcherStack(t *testing.T, newServer func() *Server, firstAhead bool, watcher func(s *Server, sc net.Conn) func()) {
	if raceEnabled || testing.CoverMode() != "" {
		t.Skip("instrumentation enlarges the frames")
	}
	// A rare runtime path under the take (a sync.Pool that must steal or
	// grow its ring) can outgrow the margin now and then (about 1 run in
	// 100); parsing in the watcher outgrows it every time. So the stack
	// may grow in a minority of tries.
	const tries = 5
	grew := 0
	for range tries {
		if takingGrowsStack(t, newServer(), firstAhead, watcher) {
			grew++
		}
	}
	if grew > tries/2 {
		t.Errorf("the watcher outgrew its stack in %d of %d tries", grew, tries)
	}
}

// takingGrowsStack serves five keep-alive requests through a watcher of s
// that takes them, and reports whether its stack had to grow.
func takingGrowsStack(t *testing.T, s *Server, firstAhead bool, watcher func(s *Server, sc net.Conn) func()) bool {
	t.Helper()
	defer s.Close()
	const watcherStack = 2<<10 - 64 // less the goroutine's first frames
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, br := dial(t, ln.Addr().String())
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	const req = "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
	if firstAhead {
		io.WriteString(c, req)
		time.Sleep(10 * time.Millisecond) // there before the first read
	}
	w := watcher(s, sc)
	grew := make(chan bool)
	go func() {
		start := gatewaytest.StartingStack()
		grew <- gatewaytest.GrowsStack(start, watcherStack, w)
	}()
	for i := range 5 {
		if i > 0 || !firstAhead {
			if i > 0 {
				waitOwned(t, s)
			}
			io.WriteString(c, req)
		}
		readResponse(t, br, "GET")
	}
	if n := s.kicks.Load(); n != 0 {
		t.Errorf("%d kicks: the requests were not taken", n)
	}
	c.Close() // the watcher closes the connection and returns
	g := <-grew
	if g {
		t.Logf("the watcher outgrew %d bytes of stack (first waits %d, looks %d)", watcherStack, s.firstWaits.Load(), s.looks.Load())
	}
	return g
}
