package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sluice-gw/sluice/gateway/h1"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// roundTrip sends req on c and reads the whole answer.
func roundTrip(t *testing.T, c *Conn, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", req.Method, req.URL, err)
	}
	resp.Body.Close()
	return resp, string(b)
}

func TestKeepAliveReuse(t *testing.T) {
	var n atomic.Int64
	fs := newFakeServer(t, serveEach(func(req *http.Request, _ []byte) string {
		b := fmt.Sprintf("%s %s #%d", req.Method, req.URL.RequestURI(), n.Add(1))
		return fmt.Sprintf("HTTP/1.1 200 \r\nContent-Length: %d\r\nKeep-Alive: timeout=20\r\n\r\n%s", len(b), b)
	}))
	c := fs.dial(t, Config{})
	var hooks atomic.Int64
	c.SetStateHook(func(*Conn) { hooks.Add(1) })
	for i := 1; i <= 3; i++ {
		if err := c.Reserve(); err != nil {
			t.Fatal(err)
		}
		if c.InFlight() != 1 || c.Available() != 0 {
			t.Fatalf("reserved: in flight %d, available %d", c.InFlight(), c.Available())
		}
		resp, body := roundTrip(t, c, newRequest(t, "GET", "http://x/a?b=c", nil))
		if want := fmt.Sprintf("GET /a?b=c #%d", i); body != want || resp.StatusCode != 200 || resp.Status != "200 " {
			t.Fatalf("request %d: %d %q %q, want 200 %q", i, resp.StatusCode, resp.Status, body, want)
		}
		if c.InFlight() != 0 || c.Available() != 1 || c.Err() != nil {
			t.Fatalf("after the body: in flight %d, available %d, err %v", c.InFlight(), c.Available(), c.Err())
		}
	}
	if fs.conns.Load() != 1 {
		t.Errorf("%d connections, want 1", fs.conns.Load())
	}
	if hooks.Load() != 3 {
		t.Errorf("state hook ran %d times, want 3 (once per request's end)", hooks.Load())
	}
	if err := c.Reserve(); err != nil {
		t.Fatal(err)
	}
	if err := c.Reserve(); !errors.Is(err, ErrBusy) {
		t.Errorf("second Reserve: %v, want ErrBusy", err)
	}
	c.Release()
	if c.Available() != 1 || hooks.Load() != 4 {
		t.Errorf("after Release: available %d, hooks %d", c.Available(), hooks.Load())
	}
}

// TestServerClosesBeforeAnswer: a request written to a connection the
// server then closes, with no byte of answer, fails with ErrServerClosed
// after WroteHeaders, and the connection is done.
func TestServerClosesBeforeAnswer(t *testing.T) {
	fs := newFakeServer(t, serveEach(func(*http.Request, []byte) string { return "" }))
	c := fs.dial(t, Config{})
	var wrote atomic.Bool
	req := newRequest(t, "GET", "http://x/", nil)
	req = req.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }}))
	_, err := c.RoundTrip(req)
	if !errors.Is(err, ErrServerClosed) {
		t.Fatalf("error %v, want ErrServerClosed", err)
	}
	if !wrote.Load() {
		t.Error("WroteHeaders not reported")
	}
	if c.Err() == nil {
		t.Error("connection still usable")
	}
}

// TestIdleCloseFoundByReserve: a connection the server closed while it
// idled is refused by Reserve (nothing is written to it).
func TestIdleCloseFoundByReserve(t *testing.T) {
	closed := make(chan struct{})
	fs := newFakeServer(t, func(nc net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		readAll(req)
		io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		nc.Close()
		close(closed)
	})
	c := fs.dial(t, Config{})
	var hooks atomic.Int64
	c.SetStateHook(func(*Conn) { hooks.Add(1) })
	if _, body := roundTrip(t, c, newRequest(t, "GET", "http://x/", nil)); body != "ok" {
		t.Fatalf("body %q", body)
	}
	<-closed
	waitFor(t, "Reserve to notice the close", func() bool {
		err := c.Reserve()
		if err == nil {
			c.Release()
			return false
		}
		if !errors.Is(err, ErrIdleClosed) {
			t.Fatalf("Reserve: %v, want ErrIdleClosed", err)
		}
		return true
	})
	if !errors.Is(c.Err(), ErrIdleClosed) || c.Available() != 0 {
		t.Errorf("Err %v, available %d", c.Err(), c.Available())
	}
	if _, err := c.RoundTrip(newRequest(t, "GET", "http://x/", nil)); !errors.Is(err, ErrIdleClosed) {
		t.Errorf("RoundTrip on it: %v, want ErrIdleClosed", err)
	}
}

func TestServerEndsKeepAlive(t *testing.T) {
	for _, tt := range []struct {
		name, answer string
		wantClose    bool
	}{
		{"connection close", "HTTP/1.1 200 \r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", true},
		{"until close", "HTTP/1.1 200 OK\r\n\r\nok", true},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", true},
		{"keep-alive max=1", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5, max=1\r\n\r\nok", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFakeServer(t, func(nc net.Conn, br *bufio.Reader) {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				readAll(req)
				io.WriteString(nc, tt.answer)
				if tt.wantClose {
					nc.Close()
				}
			})
			c := fs.dial(t, Config{})
			resp, body := roundTrip(t, c, newRequest(t, "GET", "http://x/", nil))
			if body != "ok" || resp.Close != tt.wantClose {
				t.Fatalf("body %q, Close %v; want ok, %v", body, resp.Close, tt.wantClose)
			}
			if tt.wantClose != errors.Is(c.Err(), ErrKeepAliveEnded) {
				t.Errorf("Err %v", c.Err())
			}
			if !tt.wantClose && resp.Header.Get("Keep-Alive") != "timeout=5, max=1" {
				t.Errorf("Keep-Alive field %q not passed on", resp.Header.Get("Keep-Alive"))
			}
		})
	}
}

func TestChunkedAnswerWithTrailers(t *testing.T) {
	fs := newFakeServer(t, serveEach(func(*http.Request, []byte) string {
		return "HTTP/1.1 200 OK\r\nTrailer: X-Sum, X-Late\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Sum: abc\r\nX-Extra: 1\r\n\r\n"
	}))
	c := fs.dial(t, Config{})
	for range 2 {
		resp, err := c.RoundTrip(newRequest(t, "GET", "http://x/", nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := resp.Trailer["X-Sum"]; !ok || resp.Header.Get("Trailer") != "" || resp.ContentLength != -1 {
			t.Fatalf("announced trailers %v, header %v, length %d", resp.Trailer, resp.Header, resp.ContentLength)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil || string(b) != "hello world" {
			t.Fatalf("body %q %v", b, err)
		}
		resp.Body.Close()
		if resp.Trailer.Get("X-Sum") != "abc" || resp.Trailer.Get("X-Extra") != "1" {
			t.Errorf("trailers %v", resp.Trailer)
		}
		if c.Available() != 1 {
			t.Fatalf("connection not reusable after a chunked body: %v", c.Err())
		}
	}
}

// TestRequestBodies: the server sees each body whole, framed by length
// when it is known or fits a buffer, chunked otherwise, with trailers.
func TestRequestBodies(t *testing.T) {
	type seen struct {
		cl      int64
		te      []string
		body    []byte
		trailer http.Header
	}
	got := make(chan seen, 1)
	fs := newFakeServer(t, serveEach(func(req *http.Request, body []byte) string {
		got <- seen{req.ContentLength, req.TransferEncoding, body, req.Trailer}
		return "HTTP/1.1 204 No Content\r\n\r\n"
	}))
	c := fs.dial(t, Config{})
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16) // 64 KiB
	for _, tt := range []struct {
		name    string
		body    []byte
		length  int64 // req.ContentLength
		trailer http.Header
		wantCL  int64
		wantTE  bool
	}{
		{"small known", []byte("a=1"), 3, nil, 3, false},
		{"small unknown", []byte("a=1"), -1, nil, 3, false},
		{"large known", big, int64(len(big)), nil, int64(len(big)), false},
		{"large unknown", big, -1, nil, -1, true},
		{"small with trailers", []byte("abc"), -1, http.Header{"X-Sum": {"1"}}, -1, true},
		{"large with trailers", big, -1, http.Header{"X-Sum": {"2"}}, -1, true},
		{"empty POST", nil, 0, nil, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(t, "POST", "http://x/up", nil)
			if tt.body != nil {
				req.Body = io.NopCloser(&slowReader{b: tt.body})
			}
			req.ContentLength = tt.length
			if tt.trailer != nil {
				req.Trailer = http.Header{}
				for k := range tt.trailer {
					req.Trailer[k] = nil
				}
			}
			tr := tt.trailer
			if tr != nil {
				// Trailer values are set once the body is read, as a
				// handler would.
				req.Body = io.NopCloser(&trailerSetter{r: req.Body, dst: req.Trailer, src: tr})
			}
			resp, _ := roundTrip(t, c, req)
			if resp.StatusCode != 204 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			s := <-got
			if !bytes.Equal(s.body, tt.body) {
				t.Errorf("server got %d bytes, want %d", len(s.body), len(tt.body))
			}
			if s.cl != tt.wantCL || (len(s.te) > 0) != tt.wantTE {
				t.Errorf("framing: Content-Length %d, Transfer-Encoding %v; want %d, chunked %v", s.cl, s.te, tt.wantCL, tt.wantTE)
			}
			for k, v := range tt.trailer {
				if s.trailer.Get(k) != v[0] {
					t.Errorf("trailer %s: %q, want %q", k, s.trailer.Get(k), v[0])
				}
			}
			if c.Available() != 1 {
				t.Fatalf("connection not reusable: %v", c.Err())
			}
		})
	}
}

// slowReader hands out at most 1000 bytes per Read.
type slowReader struct{ b []byte }

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 1000)], r.b)
	r.b = r.b[n:]
	return n, nil
}

type trailerSetter struct {
	r        io.Reader
	dst, src http.Header
}

func (s *trailerSetter) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		for k, v := range s.src {
			s.dst[k] = v
		}
	}
	return n, err
}

// TestLargeBodyEchoed: a server that answers while it reads (an echo,
// Tomcat's /echo) does not deadlock a body larger than the socket
// buffers.
func TestLargeBodyEchoed(t *testing.T) {
	fs := newFakeServer(t, func(nc net.Conn, br *bufio.Reader) {
		defer nc.Close()
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		fmt.Fprintf(nc, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", req.ContentLength)
		io.Copy(nc, req.Body)
	})
	c := fs.dial(t, Config{})
	body := bytes.Repeat([]byte("x"), 8<<20)
	resp, got := roundTrip(t, c, newRequest(t, "PUT", "http://x/echo", body))
	if resp.StatusCode != 200 || len(got) != len(body) {
		t.Fatalf("status %d, %d bytes back, want %d", resp.StatusCode, len(got), len(body))
	}
}

func TestExpectContinue(t *testing.T) {
	for _, accept := range []bool{true, false} {
		t.Run(fmt.Sprint("accept=", accept), func(t *testing.T) {
			fs := newFakeServer(t, func(nc net.Conn, br *bufio.Reader) {
				defer nc.Close()
				tp := textproto.NewReader(br)
				if _, err := tp.ReadLine(); err != nil {
					return
				}
				if _, err := tp.ReadMIMEHeader(); err != nil {
					return
				}
				if !accept {
					io.WriteString(nc, "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
					return
				}
				io.WriteString(nc, "HTTP/1.1 100 Continue\r\n\r\n")
				b := make([]byte, 5)
				io.ReadFull(br, b)
				fmt.Fprintf(nc, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n%s", b)
			})
			c := fs.dial(t, Config{})
			req := newRequest(t, "PUT", "http://x/", []byte("hello"))
			req.Header.Set("Expect", "100-continue")
			var got1xx []int
			req = req.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				Got1xxResponse: func(code int, _ textproto.MIMEHeader) error { got1xx = append(got1xx, code); return nil },
			}))
			resp, body := roundTrip(t, c, req)
			if accept {
				if resp.StatusCode != 200 || body != "hello" || len(got1xx) != 1 || got1xx[0] != 100 {
					t.Errorf("status %d, body %q, 1xx %v; want 200, hello, [100]", resp.StatusCode, body, got1xx)
				}
				return
			}
			if resp.StatusCode != 417 || len(got1xx) != 0 || !errors.Is(c.Err(), ErrKeepAliveEnded) {
				t.Errorf("status %d, 1xx %v, Err %v; want 417, none, closed", resp.StatusCode, got1xx, c.Err())
			}
		})
	}
}

// TestNoBodyAnswers: answers to HEAD, 204 and 304 have no body whatever
// their fields say, and the connection goes on.
func TestNoBodyAnswers(t *testing.T) {
	answers := map[string]string{
		"/head": "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
		"/204":  "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
		"/304":  "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
		"/next": "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext",
	}
	fs := newFakeServer(t, serveEach(func(req *http.Request, _ []byte) string { return answers[req.URL.Path] }))
	c := fs.dial(t, Config{})
	for _, tt := range []struct {
		method, path string
		status       int
		length       int64
	}{
		{"HEAD", "/head", 200, 1000},
		{"GET", "/204", 204, 0},
		{"GET", "/304", 304, 0},
		{"GET", "/next", 200, 4},
	} {
		resp, body := roundTrip(t, c, newRequest(t, tt.method, "http://x"+tt.path, nil))
		if resp.StatusCode != tt.status || resp.ContentLength != tt.length || (body != "") != (tt.path == "/next") {
			t.Errorf("%s %s: %d, length %d, body %q", tt.method, tt.path, resp.StatusCode, resp.ContentLength, body)
		}
	}
	if fs.conns.Load() != 1 {
		t.Errorf("%d connections, want 1", fs.conns.Load())
	}
}

func TestMalformedAnswers(t *testing.T) {
	for _, tt := range []struct {
		name, answer string
		want         error
	}{
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", h1.ErrStatusLine},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", h1.ErrBareLF},
		{"TE and CL", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", h1.ErrTEWithCL},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", h1.ErrContentLength},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n", h1.ErrObsFold},
		{"truncated head", "HTTP/1.1 200 OK\r\nContent-Le", io.ErrUnexpectedEOF},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFakeServer(t, func(nc net.Conn, br *bufio.Reader) {
				if _, err := http.ReadRequest(br); err == nil {
					io.WriteString(nc, tt.answer)
				}
				nc.Close()
			})
			c := fs.dial(t, Config{})
			_, err := c.RoundTrip(newRequest(t, "GET", "http://x/", nil))
			var pe *ProtocolError
			if !errors.As(err, &pe) || !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want a ProtocolError for %v", err, tt.want)
			}
			if c.Err() == nil {
				t.Error("connection still usable")
			}
		})
	}
	t.Run("bad chunk", func(t *testing.T) {
		fs := newFakeServer(t, serveEach(func(*http.Request, []byte) string {
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
		}))
		c := fs.dial(t, Config{})
		resp, err := c.RoundTrip(newRequest(t, "GET", "http://x/", nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(resp.Body); !errors.Is(err, h1.ErrChunkSize) {
			t.Errorf("body error %v, want ErrChunkSize", err)
		}
		if c.Err() == nil {
			t.Error("connection still usable")
		}
	})
	t.Run("short body", func(t *testing.T) {
		fs := newFakeServer(t, func(nc net.Conn, br *bufio.Reader) {
			if _, err := http.ReadRequest(br); err == nil {
				io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
			}
			nc.Close()
		})
		c := fs.dial(t, Config{})
		resp, err := c.RoundTrip(newRequest(t, "GET", "http://x/", nil))
		if err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) || string(b) != "abc" {
			t.Errorf("body %q, error %v, want abc and ErrUnexpectedEOF", b, err)
		}
	})
}

func TestHeadTooLarge(t *testing.T) {
	fs := newFakeServer(t, serveEach(func(*http.Request, []byte) string {
		return "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 40<<10) + "\r\nContent-Length: 0\r\n\r\n"
	}))
	c := fs.dial(t, Config{MaxHeaderBytes: 32 << 10})
	if _, err := c.RoundTrip(newRequest(t, "GET", "http://x/", nil)); !errors.Is(err, h1.ErrResponseHeadTooLarge) {
		t.Fatalf("error %v, want ErrResponseHeadTooLarge", err)
	}
	// Within the limit, a head larger than the read buffer is fine.
	c = fs.dial(t, Config{MaxHeaderBytes: 64 << 10})
	if resp, _ := roundTrip(t, c, newRequest(t, "GET", "http://x/", nil)); len(resp.Header.Get("X-Big")) != 40<<10 {
		t.Fatalf("X-Big of %d bytes", len(resp.Header.Get("X-Big")))
	}
}

// TestContextInterrupts: a server that never answers is given up on when
// the request's context ends (the pool's response header timeout), with
// the context's cause.
func TestContextInterrupts(t *testing.T) {
	got := make(chan struct{})
	fs := newFakeServer(t, func(nc net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err == nil {
			close(got)
		}
		io.Copy(io.Discard, br)
	})
	c := fs.dial(t, Config{})
	errTimeout := errors.New("header timeout")
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		<-got
		cancel(errTimeout)
	}()
	req := newRequest(t, "GET", "http://x/", nil).WithContext(ctx)
	if _, err := c.RoundTrip(req); !errors.Is(err, errTimeout) {
		t.Fatalf("error %v, want the context's cause", err)
	}
	if c.Err() == nil {
		t.Error("interrupted connection still usable")
	}
}

// TestBodyClosedEarly: closing a body before its end closes the
// connection; closing it after changes nothing.
func TestBodyClosedEarly(t *testing.T) {
	fs := newFakeServer(t, serveEach(func(*http.Request, []byte) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("z", 100000)
	}))
	c := fs.dial(t, Config{})
	resp, err := c.RoundTrip(newRequest(t, "GET", "http://x/", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Read(make([]byte, 10))
	resp.Body.Close()
	if !errors.Is(c.Err(), ErrBodyUnfinished) {
		t.Errorf("Err %v, want ErrBodyUnfinished", c.Err())
	}
	if _, err := resp.Body.Read(make([]byte, 10)); err == nil {
		t.Error("Read after Close succeeded")
	}
}

func TestSwitchingProtocols(t *testing.T) {
	fs := newFakeServer(t, func(nc net.Conn, br *bufio.Reader) {
		defer nc.Close()
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhi")
		io.Copy(nc, br)
	})
	c := fs.dial(t, Config{})
	req := newRequest(t, "GET", "http://x/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := c.RoundTrip(req)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v %v", resp, err)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatal("101 body not writable")
	}
	if !errors.Is(c.Err(), ErrSwitched) {
		t.Errorf("Err %v, want ErrSwitched", c.Err())
	}
	c.Close() // leaves the switched connection alone
	io.WriteString(rwc, "ping")
	b := make([]byte, 6)
	if _, err := io.ReadFull(rwc, b); err != nil || string(b) != "hiping" {
		t.Fatalf("read %q %v, want hiping", b, err)
	}
	rwc.Close()
}

func TestInvalidRequestKeepsConnection(t *testing.T) {
	fs := newFakeServer(t, serveEach(func(*http.Request, []byte) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	}))
	c := fs.dial(t, Config{})
	req := newRequest(t, "GET", "http://x/", nil)
	req.Header["Bad Name"] = []string{"x"}
	var re *RequestError
	if _, err := c.RoundTrip(req); !errors.As(err, &re) {
		t.Fatalf("error %v, want a RequestError", err)
	}
	req.Header = http.Header{"X-Split": {"a\r\nInjected: 1"}}
	if _, err := c.RoundTrip(req); !errors.As(err, &re) {
		t.Fatalf("error %v, want a RequestError", err)
	}
	if _, body := roundTrip(t, c, newRequest(t, "GET", "http://x/", nil)); body != "ok" {
		t.Fatalf("body %q", body)
	}
}

// failingReader returns n bytes, then err.
type failingReader struct {
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

// TestRequestBodyFails: a request body that fails before anything was
// written leaves the connection usable; one that fails after the head
// went out (a body longer than a buffer) fails the request with the
// body's error and closes the connection, even though the server still
// waits for the rest.
func TestRequestBodyFails(t *testing.T) {
	errClient := errors.New("client went away")
	fs := newFakeServer(t, serveEach(func(*http.Request, []byte) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	}))
	c := fs.dial(t, Config{})
	req := newRequest(t, "POST", "http://x/", nil)
	req.Body, req.ContentLength = io.NopCloser(&failingReader{n: 10, err: errClient}), 100
	if _, err := c.RoundTrip(req); !errors.Is(err, errClient) {
		t.Fatalf("small body: %v, want the body's error", err)
	}
	if c.Available() != 1 {
		t.Fatalf("connection lost to a body that failed before any write: %v", c.Err())
	}
	req = newRequest(t, "POST", "http://x/", nil)
	req.Body, req.ContentLength = io.NopCloser(&failingReader{n: 100 << 10, err: errClient}), 1<<20
	if _, err := c.RoundTrip(req); !errors.Is(err, errClient) {
		t.Fatalf("large body: %v, want the body's error", err)
	}
	if c.Err() == nil {
		t.Error("connection still usable after half a request")
	}
}

// TestEarlyAnswer: a server that answers before it reads a long body
// (413) gets its answer through, and the connection, whose server
// stopped reading mid-request, is not reused; the body writer ends.
func TestEarlyAnswer(t *testing.T) {
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	fs := newFakeServer(t, func(nc net.Conn, br *bufio.Reader) {
		tp := textproto.NewReader(br)
		tp.ReadLine()
		tp.ReadMIMEHeader()
		io.WriteString(nc, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 3\r\n\r\nbig")
		<-hold // reads nothing more, holds the connection open
	})
	c := fs.dial(t, Config{})
	resp, body := roundTrip(t, c, newRequest(t, "PUT", "http://x/", bytes.Repeat([]byte("x"), 32<<20)))
	if resp.StatusCode != 413 || body != "big" {
		t.Fatalf("%d %q, want 413 big", resp.StatusCode, body)
	}
	if !errors.Is(c.Err(), errEarlyAnswer) {
		t.Errorf("Err %v, want errEarlyAnswer", c.Err())
	}
}
