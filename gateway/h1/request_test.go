package h1

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"testing"
)

// buildCases are heads beyond the client corpus for TestBuildMatchesReadRequest:
// targets the fast path must hand to url's parser, and field spellings.
var buildCases = []string{
	"GET /a%20b?x=%zz HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a!b*c HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a? HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a?b? HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /?x=1?y HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET //double/slash HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a#frag HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a;b=c,d:e@f$&+= HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /\xc3\xbc HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET http://Example.com:80/p?q HTTP/1.1\r\nHost: other\r\n\r\n",
	"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
	"CONNECT 000%000 HTTP/1.0\r\n0000:\r\n\r\n",
	"CONNECT a%41:1 HTTP/1.1\r\nHost: x\r\n\r\n",
	"CONNECT u@h:1/p?q HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\r\nhost: x\r\nuser-agent: lower\r\nX-MIXED-case: 1\r\nx-mixed-CASE: 2\r\nwww-authenticate: a\r\ncontent-md5: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nA: 3\r\nEmpty:\r\nA-: 4\r\n-A: 5\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc",
	"POST / HTTP/1.0\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
}

// checkBuild compares what build makes of the head in with what
// http.ReadRequest makes of it, field by field of the http.Request.
func checkBuild(t *testing.T, st *reqState, in []byte) {
	t.Helper()
	var req Request
	if _, err := ParseHead(in, Limits{}, &req); err != nil {
		return
	}
	goIn := in
	for bytes.HasPrefix(goIn, []byte("\r\n")) {
		goIn = goIn[2:]
	}
	gr, goErr := http.ReadRequest(bufio.NewReader(bytes.NewReader(goIn)))
	st.reset()
	r, err := st.build(&req, "192.0.2.1:1234")
	if goErr != nil || err != nil {
		if (goErr == nil) != (err == nil) {
			t.Fatalf("%q: net/http %v, build %v", in, goErr, err)
		}
		return
	}
	if _, ok := gr.Header["Cache-Control"]; ok && r.Header["Cache-Control"] == nil {
		// net/http adds it to requests with Pragma: no-cache.
		gr.Header.Del("Cache-Control")
	}
	if !reflect.DeepEqual(r.URL, gr.URL) {
		t.Fatalf("%q: URL %#v, net/http %#v", in, r.URL, gr.URL)
	}
	if !reflect.DeepEqual(r.Header, gr.Header) {
		t.Fatalf("%q: header %q, net/http %q", in, r.Header, gr.Header)
	}
	if r.Method != gr.Method || r.Host != gr.Host || r.RequestURI != gr.RequestURI || r.Proto != gr.Proto ||
		r.ProtoMinor != gr.ProtoMinor || r.ContentLength != gr.ContentLength || r.Close != gr.Close ||
		!slices.Equal(r.TransferEncoding, gr.TransferEncoding) {
		t.Fatalf("%q: %s %s %s %s 1.%d cl=%d close=%v te=%q, net/http %s %s %s %s 1.%d cl=%d close=%v te=%q", in,
			r.Method, r.Host, r.RequestURI, r.Proto, r.ProtoMinor, r.ContentLength, r.Close, r.TransferEncoding,
			gr.Method, gr.Host, gr.RequestURI, gr.Proto, gr.ProtoMinor, gr.ContentLength, gr.Close, gr.TransferEncoding)
	}
}

// TestBuildMatchesReadRequest: the handler's request is net/http's, for
// real clients' heads and awkward targets, also when the state is reused
// from a request with other fields.
func TestBuildMatchesReadRequest(t *testing.T) {
	var st reqState
	for _, in := range clientCorpus {
		checkBuild(t, &st, []byte(in))
	}
	for _, in := range buildCases {
		checkBuild(t, &st, []byte(in))
	}
}

// FuzzBuildDifferential is TestBuildMatchesReadRequest on any head both
// parsers accept.
func FuzzBuildDifferential(f *testing.F) {
	for _, in := range clientCorpus {
		f.Add([]byte(in))
	}
	for _, in := range buildCases {
		f.Add([]byte(in))
	}
	var st reqState
	f.Fuzz(func(t *testing.T, in []byte) { checkBuild(t, &st, in) })
}

// TestBuildAllocs: a request is built with one allocation, the string
// its fields are cut from, once the state has served a request.
func TestBuildAllocs(t *testing.T) {
	in := []byte(clientCorpus["chromium navigate"])
	var req Request
	if _, err := ParseHead(in, Limits{}, &req); err != nil {
		t.Fatal(err)
	}
	var st reqState
	st.build(&req, "192.0.2.1:1234")
	st.reset()
	if n := testing.AllocsPerRun(100, func() {
		st.build(&req, "192.0.2.1:1234")
		st.reset()
	}); n != 1 {
		t.Errorf("%.0f allocations per request, want 1", n)
	}
}

// TestReusedRequestState: a keep-alive connection's second request sees
// its own fields, URL and framing only, and the first request's strings,
// kept by its handler, are unchanged by the second.
func TestReusedRequestState(t *testing.T) {
	type seen struct {
		header http.Header
		url    url.URL
		te     []string
		ua     string
	}
	got := make(chan seen, 2)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Header.Clone(), *r.URL, slices.Clone(r.TransferEncoding), r.Header.Get("User-Agent")}
	})
	c, br := dial(t, startServer(t, &Server{}, h))
	for _, in := range []string{
		"POST /first?a=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: one\r\nX-Only-First: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET /second HTTP/1.1\r\nHost: x\r\nUser-Agent: two\r\n\r\n",
	} {
		if _, err := c.Write([]byte(in)); err != nil {
			t.Fatal(err)
		}
		readResponse(t, br, "")
	}
	first, second := <-got, <-got
	if first.ua != "one" || first.header.Get("X-Only-First") != "1" || first.url.RawQuery != "a=1" || !slices.Equal(first.te, []string{"chunked"}) {
		t.Errorf("first request: %+v", first)
	}
	want := http.Header{"User-Agent": {"two"}}
	if !reflect.DeepEqual(second.header, want) || second.url != (url.URL{Path: "/second"}) || second.te != nil {
		t.Errorf("second request: header %q, URL %#v, TransferEncoding %q", second.header, second.url, second.te)
	}
}
