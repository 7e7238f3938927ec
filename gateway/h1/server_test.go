package h1

import (
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

// TestHeaderOrder: the handler's writer tells the request's header keys
// in the order the client sent them (canonical, each once, without Host
// and Transfer-Encoding), for each request of a keep-alive connection,
// whose storage the next one reuses.
func TestHeaderOrder(t *testing.T) {
	addr := startServer(t, &Server{}, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		o, ok := w.(HeaderOrderer)
		if !ok {
			io.WriteString(w, "no HeaderOrderer")
			return
		}
		io.WriteString(w, strings.Join(o.HeaderOrder(), ","))
	})
	c, br := dial(t, addr)
	tests := []struct {
		name, fields, want string
	}{
		{"none", "", ""},
		{"reversed alphabet", "Zeta: 1\r\nYak: 2\r\nx-lower: 3\r\nAccept: 4\r\n", "Zeta,Yak,X-Lower,Accept"},
		{"repeated name", "B: 1\r\nA: 2\r\nb: 3\r\nC: 4\r\n", "B,A,C"},
		{"framing left out", "Transfer-Encoding: chunked\r\nUser-Agent: u\r\nCookie: c\r\n", "User-Agent,Cookie"},
		{"fewer than before", "Cookie: c\r\n", "Cookie"},
		{"browser", "Connection: keep-alive\r\nCache-Control: max-age=0\r\nUpgrade-Insecure-Requests: 1\r\nUser-Agent: u\r\nAccept: */*\r\nAccept-Encoding: gzip\r\nAccept-Language: en\r\n",
			"Connection,Cache-Control,Upgrade-Insecure-Requests,User-Agent,Accept,Accept-Encoding,Accept-Language"},
	}
	for _, tt := range tests {
		method, body := "GET", ""
		if strings.Contains(tt.fields, "chunked") {
			method, body = "POST", "0\r\n\r\n"
		}
		fmt.Fprintf(c, "%s / HTTP/1.1\r\nHost: h\r\n%s\r\n%s", method, tt.fields, body)
		if res, got := readResponse(t, br, method); res.StatusCode != 200 || got != tt.want {
			t.Errorf("%s: %d %q, want %q", tt.name, res.StatusCode, got, tt.want)
		}
	}
}
