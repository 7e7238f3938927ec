package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// netHTTPTransport is the HTTP/1.1 transport the pool used before this
// package, as h1compat configured it.
func netHTTPTransport() *http.Transport {
	var protos http.Protocols
	protos.SetHTTP1(true)
	return &http.Transport{
		Protocols:              &protos,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 1 << 20,
		WriteBufferSize:        16 << 10,
		ReadBufferSize:         16 << 10,
	}
}

// exchangeCase is one request and how the server answers it.
type exchangeCase struct {
	name    string
	method  string
	target  string
	header  http.Header
	body    []byte
	length  int64 // req.ContentLength; -1 unknown
	trailer http.Header
}

// outcome is what a client made of an exchange, and what the server saw.
type outcome struct {
	Status     int
	Header     []string // "Key: v1|v2", sorted, Date left out
	Body       string
	Trailer    []string
	Length     int64
	Close      bool
	Chunked    bool
	SawMethod  string
	SawURI     string
	SawHeader  []string
	SawBody    string
	SawTrailer []string
	SawLength  int64
}

func flatten(h http.Header, skip ...string) []string {
	var out []string
	for k, vv := range h {
		if slices.Contains(skip, k) {
			continue
		}
		out = append(out, k+": "+strings.Join(vv, "|"))
	}
	sort.Strings(out)
	return out
}

// diffHandler answers according to the request's path, and reports what
// it saw in X-Saw-* fields and the body.
func diffHandler(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	saw := fmt.Sprintf("%s %s %d\n%s\n%s\n%s", r.Method, r.RequestURI, r.ContentLength,
		strings.Join(flatten(r.Header, "User-Agent", "Content-Length"), "\n"), body, strings.Join(flatten(r.Trailer), "\n"))
	h := w.Header()
	switch r.URL.Path {
	case "/chunked":
		h.Set("Trailer", "X-Sum")
		h.Set("Content-Type", "text/plain")
		io.WriteString(w, saw)
		w.(http.Flusher).Flush()
		io.WriteString(w, "!")
		h.Set("X-Sum", "42")
		h.Set(http.TrailerPrefix+"X-Late", "late")
	case "/204":
		w.WriteHeader(http.StatusNoContent)
	case "/304":
		h.Set("ETag", `"v1"`)
		w.WriteHeader(http.StatusNotModified)
	case "/close":
		h.Set("Connection", "close")
		io.WriteString(w, saw)
	case "/multi":
		h.Add("Set-Cookie", "a=1")
		h.Add("Set-Cookie", "b=2")
		h.Set("Keep-Alive", "timeout=5, max=1")
		io.WriteString(w, saw)
	case "/404":
		http.Error(w, "nope", http.StatusNotFound)
	default:
		h.Set("Content-Length", fmt.Sprint(len(saw)))
		io.WriteString(w, saw)
	}
}

func runCase(t *testing.T, rt http.RoundTripper, base string, tc exchangeCase) outcome {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), tc.method, base+tc.target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range tc.header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "")
	if tc.body != nil {
		req.Body = io.NopCloser(bytes.NewReader(tc.body))
		req.ContentLength = tc.length
	}
	if tc.trailer != nil {
		req.Trailer = tc.trailer.Clone()
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s: %v", tc.name, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: body: %v", tc.name, err)
	}
	resp.Body.Close()
	o := outcome{Status: resp.StatusCode, Header: flatten(resp.Header, "Date"), Body: string(b), Trailer: flatten(resp.Trailer),
		Length: resp.ContentLength, Close: resp.Close, Chunked: slices.Equal(resp.TransferEncoding, []string{"chunked"})}
	// The server's report: method, URI, length, fields, body, trailers.
	if first, rest, ok := strings.Cut(o.Body, "\n"); ok && resp.StatusCode == 200 {
		fmt.Sscanf(first, "%s %s %d", &o.SawMethod, &o.SawURI, &o.SawLength)
		o.SawHeader = strings.Split(rest, "\n")
		o.Body = ""
	}
	return o
}

// TestDifferentialAgainstNetHTTP sends the same exchanges through this
// client and through net/http's ClientConn (the path it replaces) to a
// net/http server, and compares what each client returns and what the
// server saw. Where the two differ on purpose, the case says so.
func TestDifferentialAgainstNetHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(diffHandler))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mine, err := Dial(ctx, addr, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mine.Close() })
	theirs, err := netHTTPTransport().NewClientConn(ctx, "http", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { theirs.Close() })

	big := bytes.Repeat([]byte("abcdefgh"), 40<<10/8)
	cases := []exchangeCase{
		{name: "GET", method: "GET", target: "/plain?a=1&b=%20"},
		{name: "GET escaped path", method: "GET", target: "/a%2Fb/c%20d"},
		{name: "HEAD", method: "HEAD", target: "/plain"},
		{name: "DELETE", method: "DELETE", target: "/plain"},
		{name: "headers", method: "GET", target: "/plain", header: http.Header{"Accept": {"a", "b"}, "X-Empty": {""}, "Cookie": {"c=1"}}},
		{name: "POST small", method: "POST", target: "/plain", body: []byte("a=1&b=2"), length: 7},
		{name: "POST large", method: "POST", target: "/plain", body: big, length: int64(len(big))},
		{name: "POST large unknown", method: "POST", target: "/plain", body: big, length: -1},
		// net/http sends a body of unknown length chunked; this client
		// sends one that fits a buffer with a Content-Length (the server's
		// ContentLength differs, nothing else).
		{name: "POST small unknown", method: "POST", target: "/plain", body: []byte("a=1"), length: -1},
		{name: "POST trailers", method: "POST", target: "/plain", body: []byte("xyz"), length: -1, trailer: http.Header{"X-T": nil}},
		{name: "chunked answer", method: "GET", target: "/chunked"},
		{name: "204", method: "GET", target: "/204"},
		{name: "304", method: "GET", target: "/304"},
		{name: "404", method: "GET", target: "/404"},
		{name: "multi", method: "GET", target: "/multi"},
		{name: "close", method: "GET", target: "/close"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := runCase(t, mine, srv.URL, tc)
			b := runCase(t, theirs, srv.URL, tc)
			if tc.name == "POST small unknown" {
				// (and so the length of the report)
				a.SawLength, b.SawLength, a.Length, b.Length, a.Header, b.Header = 0, 0, 0, 0, nil, nil
			}
			if fmt.Sprint(a) != fmt.Sprint(b) {
				t.Errorf("this client:\n%+v\nnet/http:\n%+v", a, b)
			}
		})
		if tc.name == "close" {
			break
		}
	}
}
