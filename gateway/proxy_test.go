package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/h2c/client"
	"github.com/sluice-gw/sluice/upstream"
)

// captureGateway is a gateway whose backend records the outbound request
// and answers with resp (a 200 "ok" when nil).
func captureGateway(t *testing.T, cfg Config, resp func(*http.Request) *http.Response) (*Gateway, *http.Request) {
	t.Helper()
	got := new(http.Request)
	rt := rtFunc(func(r *http.Request) (*http.Response, error) {
		*got = *r
		if resp != nil {
			return resp(r), nil
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok")), ContentLength: 2}, nil
	})
	cfg.Routes = []Route{{Backend: "b"}}
	g, err := New(cfg, map[string]http.RoundTripper{"b": rt}, NewMetrics(nil), quiet())
	if err != nil {
		t.Fatal(err)
	}
	return g, got
}

// TestProxyRequestHeaders pins what the backend receives: hop-by-hop
// headers (and those Connection names) dropped, forwarding headers replaced
// by what the gateway saw, TE: trailers kept, no Go User-Agent added, Host
// kept, scheme http.
func TestProxyRequestHeaders(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name   string
		remote string
		tls    bool
		in     http.Header
		want   map[string]string // "" means absent
	}{
		{
			name:   "hop-by-hop stripped",
			remote: "192.0.2.1:1234",
			in: http.Header{
				"Connection": {"X-Hop, close"}, "X-Hop": {"1"}, "Keep-Alive": {"5"},
				"Proxy-Authorization": {"x"}, "Proxy-Connection": {"keep-alive"},
				"Upgrade": {"foo"}, "Trailer": {"X-T"}, "X-End-To-End": {"kept"},
			},
			want: map[string]string{
				"Connection": "", "X-Hop": "", "Keep-Alive": "", "Proxy-Authorization": "",
				"Proxy-Connection": "", "Upgrade": "", "Trailer": "", "X-End-To-End": "kept",
			},
		},
		{
			name:   "TE trailers kept, other codings dropped",
			remote: "192.0.2.1:1234",
			in:     http.Header{"Te": {"trailers, deflate"}},
			want:   map[string]string{"Te": "trailers"},
		},
		{
			name:   "TE without trailers dropped",
			remote: "192.0.2.1:1234",
			in:     http.Header{"Te": {"deflate"}},
			want:   map[string]string{"Te": ""},
		},
		{
			name:   "untrusted peer: forwarding headers replaced",
			remote: "192.0.2.1:1234",
			in: http.Header{
				"X-Forwarded-For": {"6.6.6.6"}, "X-Forwarded-Host": {"evil"},
				"X-Forwarded-Proto": {"https"}, "Forwarded": {"for=6.6.6.6"},
			},
			want: map[string]string{
				"X-Forwarded-For": "192.0.2.1", "X-Forwarded-Host": "front.example",
				"X-Forwarded-Proto": "http", "Forwarded": "",
			},
		},
		{
			name:   "trusted peer: chain kept and appended",
			remote: "10.1.2.3:1234",
			in:     http.Header{"X-Forwarded-For": {"198.51.100.7", "203.0.113.9"}},
			want:   map[string]string{"X-Forwarded-For": "198.51.100.7, 203.0.113.9, 10.1.2.3"},
		},
		{
			name:   "TLS client: proto https",
			remote: "[2001:db8::1]:443",
			tls:    true,
			want:   map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-For": "2001:db8::1"},
		},
		{
			name:   "no User-Agent: none added",
			remote: "192.0.2.1:1234",
			want:   map[string]string{"User-Agent": ""},
		},
		{
			name:   "User-Agent kept",
			remote: "192.0.2.1:1234",
			in:     http.Header{"User-Agent": {"curl/8"}},
			want:   map[string]string{"User-Agent": "curl/8"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, got := captureGateway(t, Config{TrustedProxies: trusted}, nil)
			r := httptest.NewRequest("GET", "http://front.example/p?q=1", nil)
			r.RemoteAddr = tt.remote
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for k, v := range tt.in {
				r.Header[k] = v
			}
			in := r.Header.Clone()
			g.ServeHTTP(httptest.NewRecorder(), r)
			for k, want := range tt.want {
				if v := strings.Join(got.Header[k], ", "); v != want {
					t.Errorf("%s = %q, want %q", k, v, want)
				}
			}
			if _, ok := got.Header["User-Agent"]; !ok {
				t.Error("User-Agent absent: the transport would add Go's")
			}
			if got.Host != "front.example" || got.URL.Scheme != "http" || got.URL.Host != "b" || got.URL.RawQuery != "q=1" {
				t.Errorf("host %q url %q", got.Host, got.URL)
			}
			for k, v := range in {
				if strings.Join(r.Header[k], ",") != strings.Join(v, ",") {
					t.Errorf("inbound header %s changed: %q, was %q", k, r.Header[k], v)
				}
			}
		})
	}
}

func TestProxyCleansUnparsableQuery(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"a=1&b=2", "a=1&b=2"},
		{"a=1;b=2", ""},
		{"a=%zz&b=2", "b=2"},
		{"", ""},
	} {
		if got := cleanQueryParams(tt.in); got != tt.want {
			t.Errorf("cleanQueryParams(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestProxyResponseHeaders: hop-by-hop response headers and those the
// response's Connection names are dropped; the rest pass, appended to what
// the gateway set itself.
func TestProxyResponseHeaders(t *testing.T) {
	g, _ := captureGateway(t, Config{AltSvc: `h3=":443"`}, func(*http.Request) *http.Response {
		return &http.Response{StatusCode: 201, Header: http.Header{
			"Connection": {"X-Resp-Hop"}, "X-Resp-Hop": {"1"}, "Keep-Alive": {"timeout=5"},
			"Transfer-Encoding": {"chunked"}, "X-End": {"kept"}, "Alt-Svc": {"clear"},
		}, Body: http.NoBody}
	})
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	h := rec.Result().Header
	if rec.Code != 201 {
		t.Errorf("status %d", rec.Code)
	}
	for _, k := range []string{"Connection", "X-Resp-Hop", "Keep-Alive", "Transfer-Encoding"} {
		if v, ok := h[k]; ok {
			t.Errorf("%s passed: %q", k, v)
		}
	}
	if h.Get("X-End") != "kept" || strings.Join(h["Alt-Svc"], "|") != `h3=":443"|clear` {
		t.Errorf("X-End %q Alt-Svc %q", h.Get("X-End"), h["Alt-Svc"])
	}
}

// TestProxyErrorStatuses: a failed round trip is answered with the status
// of errorStatus; a client that left is counted as 499 and sent nothing.
func TestProxyErrorStatuses(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		clientGone bool
		want       int
	}{
		{"unreachable", &upstream.DialError{Addr: "x", Err: errors.New("refused")}, false, 502},
		{"reset", errors.New("stream reset"), false, 502},
		{"queue full", upstream.ErrQueueFull, false, 503},
		{"request body memory full", upstream.ErrBodyMemoryFull, false, 503},
		{"header timeout", upstream.ErrResponseHeaderTimeout, false, 504},
		{"client gone", context.Canceled, true, StatusClientClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := New(Config{Routes: []Route{{Backend: "b"}}}, map[string]http.RoundTripper{"b": failWith(tt.err)}, NewMetrics(nil), quiet())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
			rec := httptest.NewRecorder()
			w := &statusWriter{ResponseWriter: rec}
			if tt.clientGone {
				cancel()
			}
			p := g.table.Load().router.match("", "/")
			p.serve(w, r, new(exchange))
			if w.status() != tt.want {
				t.Errorf("status %d, want %d", w.status(), tt.want)
			}
			if tt.clientGone && rec.Body.Len() > 0 {
				t.Errorf("wrote %q to a client that left", rec.Body)
			}
		})
	}
}

// failingBody returns some bytes, then fails: the upstream stream broke
// midway.
type failingBody struct{ sent bool }

func (b *failingBody) Read(p []byte) (int, error) {
	if b.sent {
		return 0, errors.New("stream reset")
	}
	b.sent = true
	return copy(p, "partial"), nil
}
func (b *failingBody) Close() error { return nil }

// TestProxyAbortsOnBodyFailure: a body failing midway aborts the handler
// with http.ErrAbortHandler (under a server), so the client sees a
// truncated response, not a complete-looking one.
func TestProxyAbortsOnBodyFailure(t *testing.T) {
	g, _ := captureGateway(t, Config{}, func(*http.Request) *http.Response {
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: &failingBody{}, ContentLength: 100}
	})
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(context.WithValue(r.Context(), http.ServerContextKey, &http.Server{}))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler", v)
		}
	}()
	g.ServeHTTP(httptest.NewRecorder(), r)
}

// TestProxyInformationalTrailersAndUpload runs through real servers: 103
// Early Hints reach the client before the final response, trailers
// (declared and undeclared) follow the body, and the request body arrives
// whole and is counted.
func TestProxyInformationalTrailersAndUpload(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Declared")
		io.WriteString(w, "got "+string(body))
		// Unknown length: with a Content-Length, trailers cannot follow
		// on HTTP/1.1 (ReverseProxy drops them too).
		w.(http.Flusher).Flush()
		w.Header().Set("X-Declared", "d")
		w.Header().Set(http.TrailerPrefix+"X-Undeclared", "u")
	})
	gw := newGateway(t, up, upstream.QueueConfig{MaxPending: 10})
	var hints []string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, h.Get("Link"))
			return nil
		},
	})
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+gw+"/", strings.NewReader("hello"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "got hello" {
		t.Errorf("body %q", body)
	}
	if len(hints) != 1 || hints[0] != "</style.css>; rel=preload" {
		t.Errorf("103 hints %q", hints)
	}
	if resp.Header.Get("Link") != "" {
		t.Error("the 103's Link leaked into the final response")
	}
	if resp.Trailer.Get("X-Declared") != "d" || resp.Trailer.Get("X-Undeclared") != "u" {
		t.Errorf("trailers %v", resp.Trailer)
	}
}

// TestProxyUpgradeHeadersForwarded: a protocol switch (WebSocket) is
// forwarded with its Upgrade and Connection headers, which the lean path
// strips.
func TestProxyUpgradeHeadersForwarded(t *testing.T) {
	g, got := captureGateway(t, Config{}, func(*http.Request) *http.Response {
		return &http.Response{StatusCode: 400, Header: http.Header{}, Body: http.NoBody}
	})
	r := httptest.NewRequest("GET", "/ws", nil)
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	g.ServeHTTP(httptest.NewRecorder(), r)
	if got.Header.Get("Upgrade") != "websocket" || got.Header.Get("Connection") != "Upgrade" {
		t.Errorf("upgrade headers %v", got.Header)
	}
	// Upgrade: h2c is answered as plain HTTP/1.1.
	r.Header.Set("Upgrade", "h2c")
	g.ServeHTTP(httptest.NewRecorder(), r)
	if got.Header.Get("Upgrade") != "" || got.Header.Get("Connection") != "" {
		t.Errorf("h2c upgrade forwarded: %v", got.Header)
	}
}

// TestProxyStreamingHeadersFlushedAtOnce: a streaming response's headers
// reach the client before its first body bytes do.
func TestProxyStreamingHeadersFlushedAtOnce(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: 1\n\n")
	})
	gw := newGateway(t, up, upstream.QueueConfig{MaxPending: 10})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+gw+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("headers did not arrive before the body: %v", err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
}

// TestProxyReusedExchangeStartsClean: exchanges (and, over HTTP/1.1, the
// h1 server's requests) are reused; one request's headers, query and
// forwarding values never reach the next one's upstream request. One
// keep-alive client sends requests with differing fields in turn, to an
// h2c server (the header goes as a list) and to an HTTP/1.1 one (as the
// map built from it).
func TestProxyReusedExchangeStartsClean(t *testing.T) {
	for _, proto := range []string{upstream.H2C, upstream.H1} {
		t.Run(proto, func(t *testing.T) { testReusedExchange(t, proto) })
	}
}

func testReusedExchange(t *testing.T, proto string) {
	got := make(chan http.Header, 1)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("X-Seen-Query", r.URL.RawQuery)
		h.Set("X-Seen-Host", r.Host)
		got <- h
		io.WriteString(w, "ok")
	})
	c, br := gatewaytest.Dial(t, newGatewayProto(t, up, proto, upstream.QueueConfig{}))
	for i, tt := range []struct {
		head    string
		has     map[string]string
		lacking []string
	}{
		{"GET /a?x=1 HTTP/1.1\r\nHost: one\r\nX-First: 1\r\nTE: trailers\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n",
			map[string]string{"X-First": "1", "X-Seen-Query": "x=1", "X-Seen-Host": "one", "X-Forwarded-Host": "one"}, nil},
		{"GET /b HTTP/1.1\r\nHost: two\r\nUser-Agent: ua2\r\n\r\n",
			map[string]string{"User-Agent": "ua2", "X-Seen-Query": "", "X-Seen-Host": "two", "X-Forwarded-Host": "two"},
			[]string{"X-First", "Te"}},
		{"GET /c HTTP/1.1\r\nHost: three\r\n\r\n",
			map[string]string{"X-Seen-Host": "three", "User-Agent": ""}, []string{"X-First", "Te"}},
		{"GET /d HTTP/1.1\r\nHost: four\r\nX-Two: a\r\nConnection: keep-alive, X-Gone\r\nX-Gone: 1\r\nX-Two: b\r\n\r\n",
			map[string]string{"X-Seen-Host": "four", "X-Two": "a, b"}, []string{"X-First", "X-Gone", "Connection"}},
	} {
		if _, err := io.WriteString(c, tt.head); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		h := <-got
		for k, v := range tt.has {
			if got := strings.Join(h.Values(k), ", "); got != v {
				t.Errorf("request %d: %s %q, want %q (all: %q)", i, k, got, v, h)
			}
		}
		for _, k := range tt.lacking {
			if _, ok := h[k]; ok {
				t.Errorf("request %d: %s %q from an earlier request", i, k, h[k])
			}
		}
		if xff := h.Get("X-Forwarded-For"); strings.Contains(xff, "198.51.100.1") {
			t.Errorf("request %d: X-Forwarded-For %q kept from an untrusted client", i, xff)
		}
	}
}

// TestProxyRefusesUnsendableFields: a header field the HTTP/1.1 parser
// would have refused, coming from another front end (the h2 and h3
// servers call ServeHTTP with what their parsers let in), or a Host
// that became invalid, is not sent upstream: the h2c client checks every
// field it encodes.
func TestProxyRefusesUnsendableFields(t *testing.T) {
	reached := make(chan string, 10)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		reached <- r.Header.Get("X-A")
		io.WriteString(w, "ok")
	})
	be := newBackend(t, upstream.Config{Protocol: upstream.H2C, Servers: []upstream.ServerConfig{{Address: up}}})
	g, err := New(Config{Routes: []Route{{Backend: "b"}}}, map[string]http.RoundTripper{"b": be}, NewMetrics(nil), quiet())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*http.Request)
	}{
		{"CRLF in a value", func(r *http.Request) { r.Header["X-A"] = []string{"a\r\nX-Injected: 1"} }},
		{"NUL in a value", func(r *http.Request) { r.Header["X-A"] = []string{"a\x00"} }},
		{"bad name", func(r *http.Request) { r.Header["X A"] = []string{"1"} }},
		{"bad Host", func(r *http.Request) { r.Host = "a\nb" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "http://front/p", nil)
			tc.mod(req)
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, req)
			if rec.Code < 500 {
				t.Fatalf("status %d, want a gateway error", rec.Code)
			}
		})
	}
	select {
	case v := <-reached:
		t.Fatalf("origin reached (X-A %q)", v)
	default:
	}
	// The connection is still good for a valid request.
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest("GET", "http://front/p", nil))
	if rec.Code != 200 {
		t.Fatalf("valid request after the refusals: status %d", rec.Code)
	}
}

// TestProxyBodySole: the body the backend gets says whether its client
// sends nothing else while it waits (client.SoleBody): an HTTP/1.1
// client's does, an HTTP/2 or HTTP/3 client's does not.
func TestProxyBodySole(t *testing.T) {
	for _, tt := range []struct {
		major int
		sole  bool
	}{{1, true}, {2, false}, {3, false}} {
		g, got := captureGateway(t, Config{}, nil)
		r := httptest.NewRequest("POST", "/", strings.NewReader("hello"))
		r.ProtoMajor = tt.major
		g.ServeHTTP(httptest.NewRecorder(), r)
		s, ok := got.Body.(client.SoleBody)
		if !ok || s.Sole() != tt.sole {
			t.Errorf("HTTP/%d client's body %T: SoleBody %v, sole %v; want sole %v", tt.major, got.Body, ok, ok && s.Sole(), tt.sole)
		}
	}
}
