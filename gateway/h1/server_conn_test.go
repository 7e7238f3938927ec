package h1

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestServerRefuses: the parser's refusals get their status, are counted,
// and close the connection.
func TestServerRefuses(t *testing.T) {
	var refused atomic.Int64
	s := &Server{Limits: Limits{MaxHeadBytes: 1024, MaxTargetBytes: 100, MaxFields: 3}, Refused: func(error) { refused.Add(1) }}
	addr := startServer(t, s, echo)
	for _, tt := range []struct {
		name, req string
		status    int
	}{
		{"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400},
		{"TE and CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"long target", "GET /" + strings.Repeat("a", 200) + " HTTP/1.1\r\nHost: h\r\n\r\n", 414},
		{"large head", "GET / HTTP/1.1\r\nHost: h\r\nX: " + strings.Repeat("a", 2000) + "\r\n\r\n", 431},
		{"many fields", "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431},
		{"bad chunk", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
	} {
		c, br := dial(t, addr)
		before := refused.Load()
		io.WriteString(c, tt.req)
		res, _ := readResponse(t, br, "GET")
		if res.StatusCode != tt.status {
			t.Errorf("%s: %d, want %d", tt.name, res.StatusCode, tt.status)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("%s: connection still open (%v)", tt.name, err)
		}
		if refused.Load() != before+1 {
			t.Errorf("%s: not counted", tt.name)
		}
	}
}

// TestServerHijack: the hijacker gets the connection and the bytes read
// ahead of the handler.
func TestServerHijack(t *testing.T) {
	addr := startServer(t, &Server{}, func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		b := make([]byte, 9)
		if _, err := io.ReadFull(brw, b); err != nil {
			t.Error(err)
			return
		}
		conn.Write(bytes.ToUpper(b))
	})
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nahead")
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 101 {
		t.Fatal(res, err)
	}
	io.WriteString(c, "more")
	b := make([]byte, 9)
	if _, err := io.ReadFull(br, b); err != nil || string(b) != "AHEADMORE" {
		t.Errorf("%q %v", b, err)
	}
}

// TestServerClientAbort: a client leaving while its request is served
// cancels the request's context.
func TestServerClientAbort(t *testing.T) {
	canceled := make(chan error, 1)
	started := make(chan struct{})
	addr := startServer(t, &Server{}, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			canceled <- r.Context().Err()
		case <-time.After(10 * time.Second):
			canceled <- errors.New("not canceled")
		}
	})
	c, _ := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	<-started
	c.Close()
	if err := <-canceled; !errors.Is(err, context.Canceled) {
		t.Error(err)
	}
}

// TestServerTimeouts: a connection that sends nothing is closed after the
// read-header timeout, one idle after a request after the idle timeout,
// and a head that trickles in is cut at the read-header timeout.
func TestServerTimeouts(t *testing.T) {
	const header, idle = 400 * time.Millisecond, 800 * time.Millisecond
	// The server's clock may start a little before the client's.
	const slack = 50 * time.Millisecond
	s := &Server{ReadHeaderTimeout: header, IdleTimeout: idle}
	addr := startServer(t, s, echo)
	for _, tt := range []struct {
		name, req string
		wait      time.Duration // before sending a partial head
		min, max  time.Duration
	}{
		{"silent", "", 0, header - slack, 5 * time.Second},
		{"partial head", "GET / HTTP/1.1\r\n", 0, header - slack, 5 * time.Second},
		// The clock started at accept: a late first byte gets no more
		// time (with the clock restarted, the cut would come after
		// wait+header, 750 ms).
		{"partial head after a wait", "", header - slack, header - slack, header + 250*time.Millisecond},
		{"idle after a request", "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 0, idle - slack, 5 * time.Second},
	} {
		c, br := dial(t, addr)
		start := time.Now()
		io.WriteString(c, tt.req)
		if tt.wait > 0 {
			time.Sleep(tt.wait)
			io.WriteString(c, "GET / HTTP/1.1\r\n")
		}
		if strings.HasSuffix(tt.req, "\r\n\r\n") {
			readResponse(t, br, "GET")
		}
		_, err := io.ReadAll(br)
		if d := time.Since(start); err != nil || d < tt.min || d > tt.max {
			t.Errorf("%s: closed after %v (%v), want between %v and %v", tt.name, d, err, tt.min, tt.max)
		}
	}
}

// TestServerIdleConnHoldsNoBuffer: between requests a connection has
// given its read buffer back.
func TestServerIdleConnHoldsNoBuffer(t *testing.T) {
	s := &Server{}
	servedConn(t, s)
	idle := waitConns(t, s, "connection never idle", func(conns []*conn) bool {
		return len(idleConns(conns)) == 1
	})
	cc := idleConns(idle)[0]
	// A wake-up of the watcher takes a buffer for the moment of its
	// read: an idle connection must come to hold none.
	waitConns(t, s, "an idle connection holds its read buffer", func([]*conn) bool {
		return !cc.holding.Load()
	})
}

// waitConns polls s's connections until ok holds for them, and returns
// them; it fails the test with msg after 5 s.
func waitConns(t *testing.T, s *Server, msg string, ok func(conns []*conn) bool) []*conn {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		conns := make([]*conn, 0, len(s.conns))
		for cc := range s.conns {
			conns = append(conns, cc)
		}
		s.mu.Unlock()
		if ok(conns) {
			return conns
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(time.Millisecond)
	}
}

// idleConns is those of conns in the idle state.
func idleConns(conns []*conn) []*conn {
	var idle []*conn
	for _, cc := range conns {
		if http.ConnState(cc.state.Load()) == http.StateIdle {
			idle = append(idle, cc)
		}
	}
	return idle
}

// TestServerRefusesWhatWasReadAhead: a request is not served when bytes
// that came with it (its body, the next head) are malformed.
func TestServerRefusesWhatWasReadAhead(t *testing.T) {
	var served atomic.Int64
	addr := startServer(t, &Server{}, func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		echo(w, r)
	})
	for _, tt := range []struct{ name, in string }{
		{"smuggled second head", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n"},
		{"bad chunk", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n"},
		{"after a chunked body", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\nHost: x\n\n"},
	} {
		c, br := dial(t, addr)
		io.WriteString(c, tt.in)
		if res, _ := readResponse(t, br, "POST"); res.StatusCode != 400 {
			t.Errorf("%s: %d, want 400", tt.name, res.StatusCode)
		}
	}
	if n := served.Load(); n != 0 {
		t.Errorf("%d requests served, want 0", n)
	}
}

// TestServerHandsHTTP2ToH2: a connection opening with the HTTP/2 preface
// goes to H2 with every byte read, however the preface is split: also
// when its first piece, its first line and an empty line, looks like a
// whole HTTP/1.1 request that a watcher could take (split 18), and on a
// listener that defers accept, where the first piece is read as the
// connection is accepted.
func TestServerHandsHTTP2ToH2(t *testing.T) {
	const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	got := make(chan string, 1)
	h2 := func(c net.Conn, ahead []byte) {
		defer c.Close()
		rest := make([]byte, len(preface)-len(ahead))
		io.ReadFull(c, rest)
		got <- string(ahead) + string(rest)
	}
	addrs := []string{startServer(t, &Server{H2: h2}, echo)}
	if deferAccept != nil {
		addrs = append(addrs, deferAccept(t, &Server{Handler: http.HandlerFunc(echo), H2: h2}))
	}
	if quickAccept != nil {
		addrs = append(addrs, quickAccept(t, &Server{Handler: http.HandlerFunc(echo), H2: h2}))
	}
	for _, addr := range addrs {
		for _, split := range []int{1, 3, 16, 17, 18, len(preface)} {
			c, _ := dial(t, addr)
			io.WriteString(c, preface[:split])
			time.Sleep(10 * time.Millisecond) // let the server read the first part alone
			io.WriteString(c, preface[split:])
			if g := <-got; g != preface {
				t.Errorf("%s, split %d: H2 read %q", addr, split, g)
			}
		}
	}
	// A watcher left on a connection H2 took would wait for good.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		b := make([]byte, 1<<20)
		b = b[:runtime.Stack(b, true)]
		if !bytes.Contains(b, []byte("h1.(*conn).await")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a watcher is left on a connection handed to H2:\n%s", b)
		}
	}
}

// TestServerShutdown: Shutdown closes idle connections at once and lets
// an active request finish, with Connection: close.
func TestServerShutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	s := &Server{}
	addr := startServer(t, s, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	})
	idle, idleBR := dial(t, addr)
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	readResponse(t, idleBR, "GET")
	active, activeBR := dial(t, addr)
	io.WriteString(active, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	<-started
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	if _, err := idleBR.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: %v, want it closed", err)
	}
	close(release)
	if res, body := readResponse(t, activeBR, "GET"); body != "ok" || !res.Close {
		t.Errorf("active request: %q, close %v", body, res.Close)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
