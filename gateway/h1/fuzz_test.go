package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"testing"
)

// parsed is what ParseHead and a ChunkDecoder make of a whole request, or
// ok false when they refuse it or it is incomplete.
func parseRequest(in []byte) (req Request, body []byte, ok bool) {
	n, err := ParseHead(in, Limits{}, &req)
	if err != nil {
		return req, nil, false
	}
	rest := in[n:]
	switch req.Framing {
	case Length:
		if int64(len(rest)) < req.ContentLength {
			return req, nil, false
		}
		body = rest[:req.ContentLength]
	case Chunked:
		var d ChunkDecoder
		for len(rest) > 0 && !d.Done() {
			data, k, err := d.Feed(rest)
			if err != nil {
				return req, nil, false
			}
			body = append(body, data...)
			rest = rest[k:]
		}
		if !d.Done() {
			return req, nil, false
		}
	}
	return req, body, true
}

// FuzzParseHeadDifferential holds the parser to net/http's: whatever
// http.ReadRequest refuses (head or body) is refused too, and what both
// accept has the same method, target, version, fields and body. The
// field lines keep their order and case.
func FuzzParseHeadDifferential(f *testing.F) {
	for _, in := range clientCorpus {
		f.Add([]byte(in))
	}
	f.Add([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\nHost: x\n\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		req, body, ok := parseRequest(in)
		if !ok {
			return
		}
		// RFC 9112 2.2 lets a server skip empty lines before a request;
		// http.ReadRequest does not.
		goIn := in
		for bytes.HasPrefix(goIn, []byte("\r\n")) {
			goIn = goIn[2:]
		}
		gr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(goIn)))
		if err != nil {
			t.Fatalf("accepted what net/http refuses (%v):\n%q\nparsed %s", err, in, describe(&req))
		}
		goBody, err := io.ReadAll(gr.Body)
		if err != nil {
			t.Fatalf("accepted a body net/http refuses (%v):\n%q", err, in)
		}
		if gr.Method != string(req.Method) || gr.RequestURI != string(req.Target) || gr.ProtoMinor != req.Minor || gr.ProtoMajor != 1 {
			t.Fatalf("request line: net/http %s %s 1.%d, h1 %s", gr.Method, gr.RequestURI, gr.ProtoMinor, describe(&req))
		}
		if !bytes.Equal(goBody, body) {
			t.Fatalf("body: net/http %q, h1 %q", goBody, body)
		}
		if chunked := slices.Equal(gr.TransferEncoding, []string{"chunked"}); chunked != (req.Framing == Chunked) {
			t.Fatalf("chunked: net/http %v, h1 %v", chunked, req.Framing)
		}
		if req.Framing == Length && gr.ContentLength != req.ContentLength {
			t.Fatalf("Content-Length: net/http %d, h1 %d", gr.ContentLength, req.ContentLength)
		}
		if req.Target[0] == '/' && gr.Host != string(req.Host) {
			t.Fatalf("Host: net/http %q, h1 %q", gr.Host, req.Host)
		}
		// The fields, per name in order, as net/http keeps them (it moves
		// Host out, drops Transfer-Encoding and folds equal
		// Content-Lengths into one).
		mine := http.Header{}
		for _, f := range req.Fields {
			k := textproto.CanonicalMIMEHeaderKey(string(f.Name))
			switch k {
			case "Host", "Transfer-Encoding":
				continue
			case "Content-Length":
				if len(mine[k]) > 0 {
					continue
				}
			}
			mine[k] = append(mine[k], string(f.Value))
		}
		if _, ok := mine["Cache-Control"]; !ok && len(mine["Pragma"]) > 0 && mine["Pragma"][0] == "no-cache" {
			// net/http adds it to requests with Pragma: no-cache.
			gr.Header.Del("Cache-Control")
		}
		if len(mine) != len(gr.Header) {
			t.Fatalf("fields: net/http %q, h1 %q", gr.Header, mine)
		}
		for k, v := range mine {
			if !slices.Equal(v, gr.Header[k]) {
				t.Fatalf("field %s: net/http %q, h1 %q", k, gr.Header[k], v)
			}
		}
		// Order and case: the fields are the head's lines, as sent.
		lines := bytes.Split(goIn[:bytes.Index(goIn, []byte("\r\n\r\n"))], []byte("\r\n"))[1:]
		if len(lines) != len(req.Fields) {
			t.Fatalf("%d field lines, %d fields", len(lines), len(req.Fields))
		}
		for i, l := range lines {
			name, _, _ := bytes.Cut(l, []byte(":"))
			if !bytes.Equal(name, req.Fields[i].Name) {
				t.Fatalf("field %d: line %q, name %q", i, l, req.Fields[i].Name)
			}
		}
	})
}

// FuzzChunkDecoderSplit: the decoder's verdict, body and trailers do not
// depend on how the bytes arrive.
func FuzzChunkDecoderSplit(f *testing.F) {
	f.Add([]byte("5;a=b\r\nhello\r\n0\r\nX: y\r\n\r\n"), 1)
	f.Add([]byte("3\r\nabcX0\r\n\r\n"), 2)
	f.Fuzz(func(t *testing.T, in []byte, step int) {
		if step <= 0 || step > len(in) {
			step = 1
		}
		b1, t1, r1, e1 := decodeAll(string(in), step)
		b2, t2, r2, e2 := decodeAll(string(in), len(in)+1)
		if e1 != e2 || e1 == nil && (b1 != b2 || t1 != t2 || r1 != r2) {
			t.Fatalf("step %d: %q %q %v; whole: %q %q %v", step, b1, t1, e1, b2, t2, e2)
		}
	})
}

// FuzzWholeRequest holds the watcher's quick look (wholeRequest) to the
// parser: what it takes as a whole request that needs nothing more from
// the socket, the parser refuses or parses to end exactly there, body
// included, so the request's goroutine never has to read the socket the
// watcher waits on (untake is for a bug here).
func FuzzWholeRequest(f *testing.F) {
	for _, in := range clientCorpus {
		f.Add([]byte(in))
	}
	f.Add([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\ncontent-length:  4\r\n\r\nbody"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 4\r\n\r\nbody"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
	f.Add([]byte("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n\tContent-Length: 4\r\n\r\nbody"))
	f.Add([]byte("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nConnection: x-close\r\nConnection: Close\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if !wholeRequest(in) {
			return
		}
		var req Request
		n, err := ParseHead(in, Limits{}, &req)
		if err == ErrIncomplete {
			t.Fatalf("taken whole, parser wants more: %q", in)
		}
		if err != nil {
			return
		}
		cc := &conn{req: req, w: len(in)}
		if !cc.selfContained(n) {
			t.Fatalf("taken whole, parser disagrees (head %d bytes, framing %d, length %d): %q", n, req.Framing, req.ContentLength, in)
		}
		if got := asksClose(in); got != req.Close {
			t.Fatalf("asksClose %v, the parser's Close %v: %q", got, req.Close, in)
		}
	})
}

// TestWholeRequest: the quick look takes the corpus's requests that are
// whole without a chunked body, and not one cut short or with more after.
func TestWholeRequest(t *testing.T) {
	for name, in := range clientCorpus {
		var req Request
		if _, err := ParseHead([]byte(in), Limits{}, &req); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, want := wholeRequest([]byte(in)), req.Framing != Chunked; got != want {
			t.Errorf("%s: wholeRequest %v, want %v", name, got, want)
		}
		if wholeRequest([]byte(in[:len(in)-1])) {
			t.Errorf("%s, its last byte cut: taken whole", name)
		}
		if wholeRequest([]byte(in + "G")) {
			t.Errorf("%s, a byte more: taken whole", name)
		}
	}
}
