package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// newH2CServer runs a net/http h2c server on loopback.
func newH2CServer(t testing.TB, h http.Handler) string {
	t.Helper()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &p}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func dialTest(t testing.TB, addr string, cfg Config) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		<-c.Done()
	})
	return c
}

func echoHandler(w http.ResponseWriter, r *http.Request) {
	for k, v := range r.Header {
		if strings.HasPrefix(k, "X-") {
			w.Header()[k] = v
		}
	}
	w.Header().Set("Trailer", "X-Sum")
	w.Header().Set("X-Method", r.Method)
	n, _ := io.Copy(w, r.Body)
	w.Header().Set("X-Sum", fmt.Sprint(n))
	if v := r.Trailer.Get("X-Req-Trailer"); v != "" {
		w.Header().Set(http.TrailerPrefix+"X-Got-Trailer", v)
	}
}

func TestRealGetPostEcho(t *testing.T) {
	addr := newH2CServer(t, http.HandlerFunc(echoHandler))
	c := dialTest(t, addr, Config{})
	big := make([]byte, 5<<20+123) // beyond every window
	rand.Read(big)
	for _, tc := range []struct {
		name   string
		method string
		body   []byte
		cl     bool
	}{
		{"get", "GET", nil, false},
		{"small post", "POST", []byte("hello"), true},
		{"big post", "POST", big, true},
		{"big post unknown length", "PUT", big, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != nil {
				body = bytes.NewReader(tc.body)
				if !tc.cl {
					body = io.MultiReader(body)
				}
			}
			req, _ := http.NewRequest(tc.method, "http://"+addr+"/echo", body)
			req.Header.Set("X-Echo", "yes")
			resp, err := c.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || resp.Header.Get("X-Echo") != "yes" || resp.Header.Get("X-Method") != tc.method {
				t.Fatalf("status %d header %v", resp.StatusCode, resp.Header)
			}
			if !bytes.Equal(got, tc.body) {
				t.Fatalf("echo: got %d bytes, want %d", len(got), len(tc.body))
			}
			if s := resp.Trailer.Get("X-Sum"); s != fmt.Sprint(len(tc.body)) {
				t.Fatalf("trailer X-Sum %q", s)
			}
		})
	}
	if n := c.InFlight(); n != 0 {
		t.Fatalf("InFlight %d after all requests", n)
	}
}

func TestRealRequestTrailers(t *testing.T) {
	addr := newH2CServer(t, http.HandlerFunc(echoHandler))
	c := dialTest(t, addr, Config{})
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", "http://"+addr+"/", pr)
	req.Trailer = http.Header{"X-Req-Trailer": nil}
	go func() {
		pw.Write([]byte("body"))
		req.Trailer.Set("X-Req-Trailer", "late")
		pw.Close()
	}()
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got := resp.Trailer.Get("X-Got-Trailer"); got != "late" {
		t.Fatalf("server saw request trailer %q, want late", got)
	}
}

func TestReal1xx(t *testing.T) {
	addr := newH2CServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body) // sends 100 Continue first
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Write(b)
	}))
	c := dialTest(t, addr, Config{ExpectContinueTimeout: time.Minute})
	var mu sync.Mutex
	var codes []int
	var link string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		mu.Lock()
		defer mu.Unlock()
		codes = append(codes, code)
		if code == 103 {
			link = h.Get("Link")
		}
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST", "http://"+addr+"/", strings.NewReader("payload"))
	req.Header.Set("Expect", "100-continue")
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if string(b) != "payload" || fmt.Sprint(codes) != "[100 103]" || link != "</a.css>; rel=preload" {
		t.Fatalf("body %q, 1xx codes %v, link %q", b, codes, link)
	}
}

func TestRealConcurrentStreams(t *testing.T) {
	addr := newH2CServer(t, http.HandlerFunc(echoHandler))
	c := dialTest(t, addr, Config{})
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			msg := strings.Repeat(fmt.Sprint(i), 1000+i)
			req, _ := http.NewRequest("POST", "http://"+addr+"/", strings.NewReader(msg))
			resp, err := c.RoundTrip(req)
			if err != nil {
				errs <- err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != msg {
				errs <- fmt.Errorf("request %d: %v, %d bytes", i, err, len(b))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := c.Requests(); got != n {
		t.Errorf("Requests %d, want %d", got, n)
	}
	if c.InFlight() != 0 {
		t.Errorf("InFlight %d after all requests", c.InFlight())
	}
}

func TestRealReserveAndHook(t *testing.T) {
	release := make(chan struct{})
	addr := newH2CServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-release
	}))
	c := dialTest(t, addr, Config{})
	hooked := make(chan struct{}, 100)
	c.SetStateHook(func(*Conn) { hooked <- struct{}{} })
	if err := c.Reserve(); err != nil {
		t.Fatal(err)
	}
	if c.InFlight() != 1 || c.Available() != 249 {
		// net/http's server allows 250 streams.
		t.Fatalf("after Reserve: InFlight %d Available %d", c.InFlight(), c.Available())
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/slow", nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if c.InFlight() != 1 {
		t.Fatalf("RoundTrip did not use the reservation: InFlight %d", c.InFlight())
	}
	close(release)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if c.InFlight() != 0 {
		t.Fatalf("InFlight %d after body closed", c.InFlight())
	}
	c.Close()
	<-c.Done()
	if c.Err() == nil || c.Available() != 0 || c.Reserve() == nil {
		t.Fatalf("after Close: Err %v Available %d", c.Err(), c.Available())
	}
	if len(hooked) == 0 {
		t.Fatal("state hook never ran")
	}
}

// TestRealLargeRequestHeaders: a header block larger than MAX_FRAME_SIZE
// goes out as HEADERS and CONTINUATION frames.
func TestRealLargeRequestHeaders(t *testing.T) {
	addr := newH2CServer(t, http.HandlerFunc(echoHandler))
	c := dialTest(t, addr, Config{})
	big := strings.Repeat("v", 40000)
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Header.Set("X-Big", big)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Header.Get("X-Big") != big {
		t.Fatalf("X-Big came back with %d bytes", len(resp.Header.Get("X-Big")))
	}
}

// TestTrailersNotRacing: the response's Trailer map is read by the caller
// while the body streams (httputil.ReverseProxy counts the announced
// trailers first); trailers arriving meanwhile must not write to it.
func TestTrailersNotRacing(t *testing.T) {
	c, f := start(t, Config{})
	rt := goRoundTrip(c, get(context.Background()))
	id := f.headers().streamID
	f.writeHeaders(id, false, ":status", "200", "trailer", "x-t")
	res := wait(t, rt)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			_ = len(res.resp.Trailer)
			_ = res.resp.Trailer["X-T"]
		}
	}()
	f.fr.WriteData(id, false, []byte("x"))
	f.writeHeaders(id, true, "x-t", "v", "x-late", "w")
	<-done
	io.ReadAll(res.resp.Body)
	if res.resp.Trailer.Get("X-T") != "v" || res.resp.Trailer.Get("X-Late") != "w" {
		t.Fatalf("trailers %v", res.resp.Trailer)
	}
}

// TestRealStatelessHPACK: net/http's server reads the stateless
// encoder's blocks, request after request.
func TestRealStatelessHPACK(t *testing.T) {
	addr := newH2CServer(t, http.HandlerFunc(echoHandler))
	c := dialTest(t, addr, Config{})
	for i := range 3 {
		req, _ := http.NewRequest("POST", "http://"+addr+"/p?q=1", strings.NewReader("body"))
		req.Header.Set("X-Echo", fmt.Sprint(i))
		req.Header.Set("User-Agent", "ua")
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "body" || resp.Header.Get("X-Echo") != fmt.Sprint(i) {
			t.Fatalf("request %d: body %q header %v", i, b, resp.Header)
		}
	}
}
