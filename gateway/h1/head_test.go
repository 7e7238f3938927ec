package h1

import (
	"errors"
	"strings"
	"testing"
)

func TestParseHeadRefuses(t *testing.T) {
	long := strings.Repeat("a", 100)
	tests := []struct {
		name string
		in   string
		lim  Limits
		want error
	}{
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", Limits{}, ErrObsFold},
		{"obs-fold with tab", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", Limits{}, ErrObsFold},
		{"bare LF head", "GET / HTTP/1.1\nHost: x\n\n", Limits{}, ErrBareLF},
		{"bare LF in a field", "GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", Limits{}, ErrBareLF},
		{"bare LF ending the head", "GET / HTTP/1.1\r\nHost: x\r\n\n", Limits{}, ErrBareLF},
		{"bare LF before the request", "\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", Limits{}, ErrBareLF},
		{"bare CR in a value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", Limits{}, ErrFieldValue},
		{"NUL in a value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", Limits{}, ErrFieldValue},
		{"DEL in a value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n", Limits{}, ErrFieldValue},
		{"NUL in a name", "GET / HTTP/1.1\r\nHost: x\r\nX\x00A: b\r\n\r\n", Limits{}, ErrFieldName},
		{"non-ASCII in a name", "GET / HTTP/1.1\r\nHost: x\r\nX\xc3\xa9: b\r\n\r\n", Limits{}, ErrFieldName},
		{"space before colon", "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", Limits{}, ErrSpaceBeforeColon},
		{"tab before colon", "GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", Limits{}, ErrSpaceBeforeColon},
		{"no colon", "GET / HTTP/1.1\r\nHost: x\r\nX-A\r\n\r\n", Limits{}, ErrFieldLine},
		{"empty name", "GET / HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n", Limits{}, ErrFieldLine},
		{"TE with CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", Limits{}, ErrTEWithCL},
		{"CL with TE", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", Limits{}, ErrTEWithCL},
		{"differing CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", Limits{}, ErrConflictingCL},
		{"CL repeated with a leading zero", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-length: 03\r\n\r\nabc", Limits{}, ErrConflictingCL},
		{"CL list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc", Limits{}, ErrContentLength},
		{"CL sign", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", Limits{}, ErrContentLength},
		{"CL hex", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x3\r\n\r\nabc", Limits{}, ErrContentLength},
		{"CL empty", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n", Limits{}, ErrContentLength},
		{"CL overflow", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775808\r\n\r\n", Limits{}, ErrContentLength},
		{"TE xchunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n", Limits{}, ErrTransferEncoding},
		{"TE gzip, chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Limits{}, ErrTransferEncoding},
		{"TE chunked, identity", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n", Limits{}, ErrTransferEncoding},
		{"TE twice", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", Limits{}, ErrRepeatedTE},
		{"TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", Limits{}, ErrTEWithCL},
		{"TE alone on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", Limits{}, ErrTEOnHTTP10},
		{"no Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", Limits{}, ErrHost},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Limits{}, ErrHost},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", Limits{}, ErrVersion},
		{"HTTP/1.10", "GET / HTTP/1.10\r\nHost: x\r\n\r\n", Limits{}, ErrVersion},
		{"lower-case version", "GET / http/1.1\r\nHost: x\r\n\r\n", Limits{}, ErrVersion},
		{"two spaces", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", Limits{}, ErrTarget},
		{"no version", "GET /\r\nHost: x\r\n\r\n", Limits{}, ErrRequestLine},
		{"method with a slash", "GE/T / HTTP/1.1\r\nHost: x\r\n\r\n", Limits{}, ErrMethod},
		{"target with a NUL", "GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n", Limits{}, ErrTarget},
		{"target with a fragment", "GET /#a HTTP/1.1\r\nHost: x\r\n\r\n", Limits{}, ErrTarget},
		{"target non-ASCII", "GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", Limits{}, ErrTarget},
		{"target with a bad percent", "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", Limits{}, ErrTarget},
		{"target with a backslash", "GET /a\\b HTTP/1.1\r\nHost: x\r\n\r\n", Limits{}, ErrTarget},
		{"absolute-form, bad host", "GET http://a\\b/ HTTP/1.1\r\nHost: x\r\n\r\n", Limits{}, ErrTarget},
		{"absolute-form, bad port", "GET http://a:8x/ HTTP/1.1\r\nHost: x\r\n\r\n", Limits{}, ErrTarget},
		{"relative target", "GET a/b HTTP/1.1\r\nHost: x\r\n\r\n", Limits{}, ErrTarget},
		{"asterisk on GET", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", Limits{}, ErrTarget},
		{"CONNECT with a path", "CONNECT /x HTTP/1.1\r\nHost: x\r\n\r\n", Limits{}, ErrTarget},
		{"userinfo in absolute-form", "GET http://u@x/ HTTP/1.1\r\nHost: x\r\n\r\n", Limits{}, ErrTarget},
		{"head over the limit", "GET / HTTP/1.1\r\nHost: x\r\nX: " + long + "\r\n\r\n", Limits{MaxHeadBytes: 64}, ErrHeadTooLarge},
		{"unfinished head over the limit", "GET / HTTP/1.1\r\nHost: x\r\nX: " + long, Limits{MaxHeadBytes: 64}, ErrHeadTooLarge},
		{"too many fields", "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n", Limits{MaxFields: 2}, ErrTooManyFields},
		{"long target", "GET /" + long + " HTTP/1.1\r\nHost: x\r\n\r\n", Limits{MaxTargetBytes: 64}, ErrTargetTooLong},
		{"long target, unfinished", "GET /" + long, Limits{MaxTargetBytes: 64}, ErrTargetTooLong},
		{"long target over the head limit too", "GET /" + long, Limits{MaxTargetBytes: 64, MaxHeadBytes: 64}, ErrTargetTooLong},
		{"incomplete", "GET / HTTP/1.1\r\nHost: x\r\n", Limits{}, ErrIncomplete},
		{"incomplete request line", "GET / HTTP/1.1\r", Limits{}, ErrIncomplete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req Request
			n, err := ParseHead([]byte(tt.in), tt.lim, &req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseHead = %d, %v; want %v", n, err, tt.want)
			}
		})
	}
}

func TestParseHeadStatus(t *testing.T) {
	for _, tt := range []struct {
		err    *Error
		status int
	}{{ErrHeadTooLarge, 431}, {ErrTooManyFields, 431}, {ErrTargetTooLong, 414}, {ErrObsFold, 400}} {
		if tt.err.Status != tt.status {
			t.Errorf("%v: status %d, want %d", tt.err, tt.err.Status, tt.status)
		}
	}
}

func TestParseHeadAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		lim  Limits
		want Request
	}{
		{"GET", "GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Mixed-Case:  v 1 \t\r\n\r\n", Limits{}, Request{
			Method: []byte("GET"), Target: []byte("/a?b=c"), Minor: 1, Host: []byte("x"),
			Fields: []Field{{[]byte("Host"), []byte("x")}, {[]byte("X-Mixed-Case"), []byte("v 1")}},
		}},
		{"leading CRLF, POST with CL", "\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\ncontent-length: 5\r\nContent-Length: 5\r\n\r\nhello", Limits{}, Request{
			Method: []byte("POST"), Target: []byte("/"), Minor: 1, Host: []byte("x"), Framing: Length, ContentLength: 5,
			Fields: []Field{{[]byte("Host"), []byte("x")}, {[]byte("content-length"), []byte("5")}, {[]byte("Content-Length"), []byte("5")}},
		}},
		{"chunked, TE trailers, expect, upgrade", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\nTE: trailers\r\nExpect: 100-Continue\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\n\r\n", Limits{}, Request{
			Method: []byte("POST"), Target: []byte("/"), Minor: 1, Host: []byte("x"), Framing: Chunked,
			Close: true, Upgrade: true, Expect100: true, TETrailers: true,
			Fields: []Field{{[]byte("Host"), []byte("x")}, {[]byte("Transfer-Encoding"), []byte("Chunked")}, {[]byte("TE"), []byte("trailers")},
				{[]byte("Expect"), []byte("100-Continue")}, {[]byte("Upgrade"), []byte("websocket")}, {[]byte("Connection"), []byte("Upgrade, close")}},
		}},
		{"HTTP/1.0 closes", "GET / HTTP/1.0\r\n\r\n", Limits{}, Request{Method: []byte("GET"), Target: []byte("/"), Close: true, Fields: []Field{}}},
		{"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", Limits{}, Request{
			Method: []byte("GET"), Target: []byte("/"), Fields: []Field{{[]byte("Connection"), []byte("keep-alive")}},
		}},
		{"CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", Limits{}, Request{
			Method: []byte("CONNECT"), Target: []byte("x:443"), Minor: 1, Host: []byte("x:443"), Fields: []Field{{[]byte("Host"), []byte("x:443")}},
		}},
		{"IPv6 absolute-form", "GET http://[::1]:8080/a?b HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", Limits{}, Request{
			Method: []byte("GET"), Target: []byte("http://[::1]:8080/a?b"), Minor: 1, Host: []byte("[::1]:8080"), Fields: []Field{{[]byte("Host"), []byte("[::1]:8080")}},
		}},
		{"at every limit", "GET /" + strings.Repeat("a", 9) + " HTTP/1.1\r\nHost: x\r\n\r\n", Limits{MaxHeadBytes: 39, MaxFields: 1, MaxTargetBytes: 10}, Request{
			Method: []byte("GET"), Target: []byte("/aaaaaaaaa"), Minor: 1, Host: []byte("x"), Fields: []Field{{[]byte("Host"), []byte("x")}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req Request
			n, err := ParseHead([]byte(tt.in), tt.lim, &req)
			if err != nil {
				t.Fatal(err)
			}
			// The head ends at the first empty line after the leading ones.
			lead := len(tt.in) - len(strings.TrimLeft(tt.in, "\r\n"))
			if want := lead + strings.Index(tt.in[lead:], "\r\n\r\n") + 4; n != want {
				t.Errorf("n = %d, want %d", n, want)
			}
			if got, want := describe(&req), describe(&tt.want); got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

// TestParseHeadReusesFields: a Request kept for a connection parses its
// next head without allocating.
func TestParseHeadReusesFields(t *testing.T) {
	in := []byte(clientCorpus["chromium navigate"])
	var req Request
	if _, err := ParseHead(in, Limits{}, &req); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(100, func() { ParseHead(in, Limits{}, &req) }); a != 0 {
		t.Errorf("%v allocations per head, want 0", a)
	}
}

func BenchmarkParseHead(b *testing.B) {
	in := []byte(clientCorpus["chromium navigate"])
	var req Request
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := ParseHead(in, Limits{}, &req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPutFieldsLeavesStorageZero: a head with fewer fields than the one
// before it on the same storage leaves no slice of the first past its
// length, so putFields, which clears only up to the length, pools the
// storage all zero (nothing pinning a read buffer).
func TestPutFieldsLeavesStorageZero(t *testing.T) {
	box := new([]Field)
	*box = make([]Field, 0, 8)
	req := Request{Fields: *box}
	storage := req.Fields[:cap(req.Fields)]
	for _, head := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		if _, err := ParseHead([]byte(head), Limits{}, &req); err != nil {
			t.Fatal(err)
		}
	}
	if len(req.Fields) != 1 {
		t.Fatalf("%d fields, want 1", len(req.Fields))
	}
	putFields(box, req.Fields)
	for i, f := range storage {
		if f.Name != nil || f.Value != nil {
			t.Errorf("field %d still set after putFields: %q: %q", i, f.Name, f.Value)
		}
	}
}
