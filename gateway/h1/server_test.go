package h1

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	w.Header().Set("X-Method", r.Method)
	w.Header().Set("X-Target", r.RequestURI)
	w.Header().Set("X-Host", r.Host)
	fmt.Fprintf(w, "%s", b)
}

func TestServerKeepAliveAndFraming(t *testing.T) {
	addr := startServer(t, &Server{}, echo)
	c, br := dial(t, addr)
	tests := []struct {
		name, req, method, body string
		cl                      int64
	}{
		{"GET", "GET /a?b HTTP/1.1\r\nHost: h\r\n\r\n", "GET", "", 0},
		{"POST with length", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", "POST", "hello", 5},
		{"POST chunked", "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nX-T: 1\r\n\r\n", "POST", "abcde", 5},
		{"HEAD", "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", "HEAD", "", -1},
	}
	for _, tt := range tests {
		io.WriteString(c, tt.req)
		res, body := readResponse(t, br, tt.method)
		if res.StatusCode != 200 || body != tt.body || res.Header.Get("X-Method") != tt.method || res.Header.Get("X-Host") != "h" {
			t.Errorf("%s: %d %q %v", tt.name, res.StatusCode, body, res.Header)
		}
		if tt.cl >= 0 && res.ContentLength != tt.cl {
			t.Errorf("%s: Content-Length %d, want %d", tt.name, res.ContentLength, tt.cl)
		}
		if res.Close {
			t.Errorf("%s: connection closed", tt.name)
		}
	}
}

// TestServerPipelining: 10 requests in one write are answered in order,
// also with a slow one first.
func TestServerPipelining(t *testing.T) {
	addr := startServer(t, &Server{}, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/0" {
			time.Sleep(50 * time.Millisecond) // the slow one
		}
		io.WriteString(w, r.URL.Path)
	})
	c, br := dial(t, addr)
	var reqs strings.Builder
	for i := range 10 {
		fmt.Fprintf(&reqs, "GET /%d HTTP/1.1\r\nHost: h\r\n\r\n", i)
	}
	io.WriteString(c, reqs.String())
	for i := range 10 {
		if _, body := readResponse(t, br, "GET"); body != fmt.Sprintf("/%d", i) {
			t.Fatalf("answer %d: %q", i, body)
		}
	}
}

// countingConn counts the writes to the client.
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

type countingConn struct {
	*net.TCPConn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.TCPConn.Write(p)
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c.(*net.TCPConn), l.writes}, nil
}

// TestServerOneWritePerSmallResponse: status line, fields and a small
// body leave in one write, with a Content-Length.
func TestServerOneWritePerSmallResponse(t *testing.T) {
	writes := new(atomic.Int64)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello, ")
		io.WriteString(w, "world")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(countingListener{ln, writes})
	t.Cleanup(func() { s.Close() })
	c, br := dial(t, ln.Addr().String())
	for range 3 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		res, body := readResponse(t, br, "GET")
		if body != "hello, world" || res.ContentLength != 12 {
			t.Fatalf("%q, Content-Length %d", body, res.ContentLength)
		}
	}
	if n := writes.Load(); n != 3 {
		t.Errorf("%d writes for 3 responses, want 3", n)
	}
}

// TestServerChunkedResponse: a body larger than the buffer, or flushed,
// is sent chunked, with the trailers the handler sets.
func TestServerChunkedResponse(t *testing.T) {
	big := strings.Repeat("x", 3*bufSize+17)
	addr := startServer(t, &Server{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Declared")
		io.WriteString(w, "head;")
		w.(http.Flusher).Flush()
		io.WriteString(w, big)
		w.Header().Set("X-Declared", "d")
		w.Header().Set(http.TrailerPrefix+"X-Late", "l")
	})
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	res, body := readResponse(t, br, "GET")
	if body != "head;"+big || len(res.TransferEncoding) != 1 {
		t.Fatalf("%d bytes, transfer encoding %v", len(body), res.TransferEncoding)
	}
	if res.Trailer.Get("X-Declared") != "d" || res.Trailer.Get("X-Late") != "l" {
		t.Errorf("trailers %v", res.Trailer)
	}
}

// TestServerExpectContinue: 100 Continue is sent when the handler reads
// the body, not before; a handler that answers without reading gets no
// 100 and the connection closes; other expectations get 417.
func TestServerExpectContinue(t *testing.T) {
	addr := startServer(t, &Server{}, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		echo(w, r)
	})
	c, br := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("%q %v", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "hello")
	if _, body := readResponse(t, br, "POST"); body != "hello" {
		t.Fatalf("body %q", body)
	}
	io.WriteString(c, "POST /refuse HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	if res, _ := readResponse(t, br, "POST"); res.StatusCode != 403 || !res.Close {
		t.Errorf("refused: %d, close %v", res.StatusCode, res.Close)
	}
	c2, br2 := dial(t, addr)
	io.WriteString(c2, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: teapot\r\n\r\n")
	if res, _ := readResponse(t, br2, "POST"); res.StatusCode != http.StatusExpectationFailed {
		t.Errorf("unknown expectation: %d", res.StatusCode)
	}
}

func TestServerConnectionClose(t *testing.T) {
	addr := startServer(t, &Server{}, echo)
	for _, tt := range []struct{ name, req string }{
		{"Connection: close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"},
		{"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n"},
	} {
		c, br := dial(t, addr)
		io.WriteString(c, tt.req)
		readResponse(t, br, "GET")
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("%s: connection still open (%v)", tt.name, err)
		}
	}
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	if res, _ := readResponse(t, br, "GET"); res.Header.Get("Connection") != "keep-alive" {
		t.Errorf("HTTP/1.0 keep-alive: Connection %q", res.Header.Get("Connection"))
	}
}

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
	addr := startServer(t, s, echo)
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	readResponse(t, br, "GET")
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		var held, idle int
		for cc, st := range s.conns {
			if st == http.StateIdle {
				idle++
				if cc.buf != nil {
					held++
				}
			}
		}
		s.mu.Unlock()
		if idle == 1 {
			if held != 0 {
				t.Fatalf("an idle connection holds its read buffer")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("connection never idle")
		}
		time.Sleep(time.Millisecond)
	}
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
// goes to H2 with every byte read, however the preface is split.
func TestServerHandsHTTP2ToH2(t *testing.T) {
	const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	got := make(chan string, 1)
	s := &Server{H2: func(c net.Conn, ahead []byte) {
		defer c.Close()
		rest := make([]byte, len(preface)-len(ahead))
		io.ReadFull(c, rest)
		got <- string(ahead) + string(rest)
	}}
	addr := startServer(t, s, echo)
	for _, split := range []int{3, 16, len(preface)} {
		c, _ := dial(t, addr)
		io.WriteString(c, preface[:split])
		time.Sleep(10 * time.Millisecond) // let the server read the first part alone
		io.WriteString(c, preface[split:])
		if g := <-got; g != preface {
			t.Errorf("split %d: H2 read %q", split, g)
		}
	}
}

// TestServerBodylessStatuses: a 204 carries no Content-Length, a 304 keeps
// the handler's, and neither is chunked or has a body.
func TestServerBodylessStatuses(t *testing.T) {
	addr := startServer(t, &Server{}, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/304" {
			w.Header().Set("Content-Length", "42")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Length", "42")
		w.WriteHeader(http.StatusNoContent)
		w.Write([]byte("ignored"))
	})
	c, br := dial(t, addr)
	io.WriteString(c, "GET /204 HTTP/1.1\r\nHost: h\r\n\r\nGET /304 HTTP/1.1\r\nHost: h\r\n\r\n")
	for _, want := range []struct {
		status int
		cl     string
	}{{204, ""}, {304, "42"}} {
		res, body := readResponse(t, br, "GET")
		if res.StatusCode != want.status || res.Header.Get("Content-Length") != want.cl || body != "" || len(res.TransferEncoding) > 0 {
			t.Errorf("%d: Content-Length %q, body %q, transfer encoding %v", res.StatusCode, res.Header.Get("Content-Length"), body, res.TransferEncoding)
		}
	}
}

// TestServerInterimResponses: a 1xx the handler writes goes out at once,
// with the fields set so far, before the final response.
func TestServerInterimResponses(t *testing.T) {
	addr := startServer(t, &Server{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "final")
	})
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusEarlyHints || res.Header.Get("Link") == "" {
		t.Fatalf("interim: %v %v", res, err)
	}
	if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != "final" || res.Header.Get("Link") != "" {
		t.Errorf("final: %d %q %v", res.StatusCode, body, res.Header)
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

// TestServerAnswersWhileBodyIsRead: a handler that answers while another
// goroutine still waits for the rest of the body (an upstream client
// copying it) gets its answer out at once, not after the rest of the body
// or the read timeout.
func TestServerAnswersWhileBodyIsRead(t *testing.T) {
	addr := startServer(t, &Server{ReadHeaderTimeout: 2 * time.Second}, func(w http.ResponseWriter, r *http.Request) {
		go io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusRequestEntityTooLarge)
	})
	c, br := dial(t, addr)
	start := time.Now()
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\nfirst bytes")
	res, _ := readResponse(t, br, "POST")
	if d := time.Since(start); res.StatusCode != http.StatusRequestEntityTooLarge || d > time.Second {
		t.Errorf("%d after %v; want 413 at once", res.StatusCode, d)
	}
}

// TestServerRelayedContinue: a handler that writes the 100 Continue itself
// (relaying its upstream's) then reads the body; no second 100 is sent.
func TestServerRelayedContinue(t *testing.T) {
	addr := startServer(t, &Server{}, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusContinue)
		echo(w, r)
	})
	c, br := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	if res, err := http.ReadResponse(br, nil); err != nil || res.StatusCode != http.StatusContinue {
		t.Fatalf("%v %v", res, err)
	}
	io.WriteString(c, "hello")
	if res, body := readResponse(t, br, "POST"); res.StatusCode != 200 || body != "hello" {
		t.Errorf("%d %q", res.StatusCode, body)
	}
}

// TestServerOneContinue: a handler relaying a 100 Continue after the body
// reader sent one does not make a second.
func TestServerOneContinue(t *testing.T) {
	addr := startServer(t, &Server{}, func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 1)
		io.ReadFull(r.Body, b) // sends 100 Continue
		w.WriteHeader(http.StatusContinue)
		rest, _ := io.ReadAll(r.Body)
		w.Write(append(b, rest...))
	})
	c, br := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	if res, err := http.ReadResponse(br, nil); err != nil || res.StatusCode != http.StatusContinue {
		t.Fatalf("%v %v", res, err)
	}
	io.WriteString(c, "hello")
	if res, body := readResponse(t, br, "POST"); res.StatusCode != 200 || body != "hello" {
		t.Errorf("after the 100: %d %q, want 200 and the body", res.StatusCode, body)
	}
}
