package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"testing"
)

// serverCorpus is responses as servers send them: Tomcat 10's (no reason
// phrase), nginx's, and the edge shapes the upstream client must frame.
var serverCorpus = map[string]string{
	"tomcat 200":        "HTTP/1.1 200 \r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 2\r\nDate: Wed, 02 Dec 2026 04:00:00 GMT\r\nKeep-Alive: timeout=20\r\nConnection: keep-alive\r\n\r\nok",
	"tomcat last":       "HTTP/1.1 200 \r\nContent-Length: 2\r\nDate: Wed, 02 Dec 2026 04:00:00 GMT\r\nConnection: close\r\n\r\nok",
	"tomcat chunked":    "HTTP/1.1 200 \r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nDate: Wed, 02 Dec 2026 04:00:00 GMT\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"trailers":          "HTTP/1.1 200 OK\r\nTrailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: 900150983cd24fb0\r\n\r\n",
	"nginx 404":         "HTTP/1.1 404 Not Found\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\nContent-Length: 9\r\nConnection: keep-alive\r\n\r\nnot found",
	"no reason":         "HTTP/1.1 204\r\nDate: x\r\n\r\n",
	"304":               "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 10\r\n\r\n",
	"until close":       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it",
	"HTTP/1.0":          "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.0 kept":     "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc",
	"keep-alive max":    "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=1\r\nContent-Length: 0\r\n\r\n",
	"repeated fields":   "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 0\r\n\r\n",
	"switching":         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"equal lengths":     "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
	"obs-text reason":   "HTTP/1.1 200 \xc3\xa9t\xc3\xa9\r\nContent-Length: 0\r\n\r\n",
	"empty value":       "HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n",
	"continue then 200": "HTTP/1.1 100 Continue\r\n\r\n",
}

func TestParseResponseHead(t *testing.T) {
	for _, tt := range []struct {
		name    string
		in      string
		head    bool
		want    Response
		wantErr error
	}{
		{name: "tomcat", in: serverCorpus["tomcat 200"], want: Response{Minor: 1, Status: 200, Framing: Length, ContentLength: 2, KeepAliveMax: -1}},
		{name: "close", in: serverCorpus["tomcat last"], want: Response{Minor: 1, Status: 200, Framing: Length, ContentLength: 2, Close: true, KeepAliveMax: -1}},
		{name: "chunked", in: serverCorpus["tomcat chunked"], want: Response{Minor: 1, Status: 200, Framing: Chunked, ContentLength: -1, KeepAliveMax: -1}},
		{name: "trailer", in: serverCorpus["trailers"], want: Response{Minor: 1, Status: 200, Reason: []byte("OK"), Framing: Chunked, ContentLength: -1, KeepAliveMax: -1, Trailer: true}},
		{name: "until close", in: serverCorpus["until close"], want: Response{Minor: 1, Status: 200, Reason: []byte("OK"), Framing: UntilClose, ContentLength: -1, Close: true, KeepAliveMax: -1}},
		{name: "http/1.0", in: serverCorpus["HTTP/1.0"], want: Response{Minor: 0, Status: 200, Reason: []byte("OK"), Framing: Length, ContentLength: 3, Close: true, KeepAliveMax: -1}},
		{name: "http/1.0 keep-alive", in: serverCorpus["HTTP/1.0 kept"], want: Response{Minor: 0, Status: 200, Reason: []byte("OK"), Framing: Length, ContentLength: 3, KeepAliveMax: -1}},
		{name: "keep-alive max", in: serverCorpus["keep-alive max"], want: Response{Minor: 1, Status: 200, Reason: []byte("OK"), Framing: Length, ContentLength: 0, KeepAliveMax: 1}},
		{name: "HEAD keeps the length", in: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", head: true, want: Response{Minor: 1, Status: 200, Reason: []byte("OK"), Framing: NoBody, ContentLength: 99, KeepAliveMax: -1}},
		{name: "HEAD chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", head: true, want: Response{Minor: 1, Status: 200, Reason: []byte("OK"), Framing: NoBody, ContentLength: -1, KeepAliveMax: -1}},
		{name: "204", in: serverCorpus["no reason"], want: Response{Minor: 1, Status: 204, Framing: NoBody, ContentLength: -1, KeepAliveMax: -1}},
		{name: "304 with length", in: serverCorpus["304"], want: Response{Minor: 1, Status: 304, Reason: []byte("Not Modified"), Framing: NoBody, ContentLength: 10, KeepAliveMax: -1}},
		{name: "100", in: serverCorpus["continue then 200"], want: Response{Minor: 1, Status: 100, Reason: []byte("Continue"), Framing: NoBody, ContentLength: -1, KeepAliveMax: -1}},
		{name: "incomplete", in: "HTTP/1.1 200 OK\r\nContent-Len", wantErr: ErrIncomplete},
		{name: "incomplete line", in: "HTTP/1.1 2", wantErr: ErrIncomplete},
		{name: "HTTP/2", in: "HTTP/2.0 200 OK\r\n\r\n", wantErr: ErrStatusLine},
		{name: "HTTP/1.2", in: "HTTP/1.2 200 OK\r\n\r\n", wantErr: ErrStatusLine},
		{name: "lower-case version", in: "http/1.1 200 OK\r\n\r\n", wantErr: ErrStatusLine},
		{name: "two-digit code", in: "HTTP/1.1 20 OK\r\n\r\n", wantErr: ErrStatusLine},
		{name: "code 600", in: "HTTP/1.1 600 X\r\n\r\n", wantErr: ErrStatusLine},
		{name: "code 099", in: "HTTP/1.1 099 X\r\n\r\n", wantErr: ErrStatusLine},
		{name: "four-digit code", in: "HTTP/1.1 2000 OK\r\n\r\n", wantErr: ErrStatusLine},
		{name: "tab before code", in: "HTTP/1.1\t200 OK\r\n\r\n", wantErr: ErrStatusLine},
		{name: "control in reason", in: "HTTP/1.1 200 O\x01K\r\n\r\n", wantErr: ErrStatusLine},
		{name: "bare LF", in: "HTTP/1.1 200 OK\nContent-Length: 0\n\n", wantErr: ErrBareLF},
		{name: "obs-fold", in: "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", wantErr: ErrObsFold},
		{name: "space before colon", in: "HTTP/1.1 200 OK\r\nX : a\r\n\r\n", wantErr: ErrSpaceBeforeColon},
		{name: "bad length", in: "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", wantErr: ErrContentLength},
		{name: "length list", in: "HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n", wantErr: ErrContentLength},
		{name: "conflicting lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", wantErr: ErrConflictingCL},
		{name: "length repeated with a leading zero", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 01\r\n\r\n", wantErr: ErrConflictingCL},
		{name: "TE and CL", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", wantErr: ErrTEWithCL},
		{name: "gzip TE", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", wantErr: ErrTransferEncoding},
		{name: "repeated TE", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", wantErr: ErrRepeatedTE},
		{name: "TE on 1.0", in: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", wantErr: ErrTEOnHTTP10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got Response
			n, err := ParseResponseHead([]byte(tt.in), Limits{}, tt.head, &got)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if end := bytes.Index([]byte(tt.in), []byte("\r\n\r\n")) + 4; n != end {
				t.Errorf("head length %d, want %d", n, end)
			}
			got.Fields = nil
			if len(got.Reason) == 0 {
				got.Reason = nil
			}
			if !equalResponse(&got, &tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func equalResponse(a, b *Response) bool {
	return a.Minor == b.Minor && a.Status == b.Status && bytes.Equal(a.Reason, b.Reason) && a.Framing == b.Framing &&
		a.ContentLength == b.ContentLength && a.Close == b.Close && a.KeepAliveMax == b.KeepAliveMax && a.Trailer == b.Trailer
}

func TestParseResponseHeadLimits(t *testing.T) {
	big := "HTTP/1.1 200 OK\r\nX: " + string(bytes.Repeat([]byte("a"), 200)) + "\r\n\r\n"
	var r Response
	if _, err := ParseResponseHead([]byte(big), Limits{MaxHeadBytes: 100}, false, &r); err != ErrResponseHeadTooLarge {
		t.Errorf("complete head over the limit: %v, want ErrResponseHeadTooLarge", err)
	}
	if _, err := ParseResponseHead([]byte(big[:150]), Limits{MaxHeadBytes: 100}, false, &r); err != ErrResponseHeadTooLarge {
		t.Errorf("incomplete head over the limit: %v, want ErrResponseHeadTooLarge", err)
	}
	if _, err := ParseResponseHead([]byte(big[:90]), Limits{MaxHeadBytes: 100}, false, &r); err != ErrIncomplete {
		t.Errorf("incomplete head within the limit: %v, want ErrIncomplete", err)
	}
	if _, err := ParseResponseHead([]byte("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n"), Limits{MaxFields: 1}, false, &r); err != ErrTooManyRespFields {
		t.Errorf("two fields over a limit of one: %v, want ErrTooManyRespFields", err)
	}
}

func TestParseResponseHeadAllocs(t *testing.T) {
	in := []byte(serverCorpus["tomcat 200"])
	var r Response
	ParseResponseHead(in, Limits{}, false, &r)
	if n := testing.AllocsPerRun(100, func() { ParseResponseHead(in, Limits{}, false, &r) }); n != 0 {
		t.Errorf("%v allocations per head, want 0", n)
	}
}

// parseResponse is what ParseResponseHead and a ChunkDecoder make of a
// whole response (a body to the end of in when it runs until the close).
func parseResponse(in []byte, head bool) (resp Response, body []byte, trailer []byte, ok bool) {
	n, err := ParseResponseHead(in, Limits{}, head, &resp)
	if err != nil {
		return resp, nil, nil, false
	}
	rest := in[n:]
	switch resp.Framing {
	case Length:
		if int64(len(rest)) < resp.ContentLength {
			return resp, nil, nil, false
		}
		body = rest[:resp.ContentLength]
	case UntilClose:
		body = rest
	case Chunked:
		var d ChunkDecoder
		for len(rest) > 0 && !d.Done() {
			data, k, err := d.Feed(rest)
			if err != nil {
				return resp, nil, nil, false
			}
			body = append(body, data...)
			rest = rest[k:]
		}
		if !d.Done() {
			return resp, nil, nil, false
		}
		trailer = d.Trailers()
	}
	return resp, body, trailer, true
}

// FuzzParseResponseHeadDifferential holds the response parser to
// net/http's http.ReadResponse: whatever net/http refuses (head or body)
// is refused too, and what both accept has the same status, version,
// fields, framing, body and trailers.
func FuzzParseResponseHeadDifferential(f *testing.F) {
	for _, in := range serverCorpus {
		f.Add([]byte(in), false)
		f.Add([]byte(in), true)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n"), false)
	f.Fuzz(func(t *testing.T, in []byte, head bool) {
		resp, body, trailer, ok := parseResponse(in, head)
		if !ok {
			return
		}
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		gr, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(in)), &http.Request{Method: method})
		if err != nil {
			t.Fatalf("accepted what net/http refuses (%v):\n%q", err, in)
		}
		goBody, err := io.ReadAll(gr.Body)
		if err != nil {
			t.Fatalf("accepted a body net/http refuses (%v):\n%q", err, in)
		}
		if gr.StatusCode != resp.Status || gr.ProtoMajor != 1 || gr.ProtoMinor != resp.Minor {
			t.Fatalf("status line: net/http %d 1.%d, h1 %d 1.%d", gr.StatusCode, gr.ProtoMinor, resp.Status, resp.Minor)
		}
		if !bytes.Equal(goBody, body) {
			t.Fatalf("body: net/http %q, h1 %q", goBody, body)
		}
		if chunked := slices.Equal(gr.TransferEncoding, []string{"chunked"}); chunked != (resp.Framing == Chunked) && resp.Framing != NoBody {
			t.Fatalf("chunked: net/http %v, h1 %v", chunked, resp.Framing)
		}
		if gr.Close != resp.Close {
			t.Fatalf("close: net/http %v, h1 %v", gr.Close, resp.Close)
		}
		if resp.Framing == Length && gr.ContentLength != resp.ContentLength {
			t.Fatalf("Content-Length: net/http %d, h1 %d", gr.ContentLength, resp.ContentLength)
		}
		// The fields, per name in order, as net/http keeps them (it
		// drops Transfer-Encoding and Trailer, and folds equal
		// Content-Lengths into one).
		mine := http.Header{}
		for _, f := range resp.Fields {
			k := textproto.CanonicalMIMEHeaderKey(string(f.Name))
			switch k {
			case "Transfer-Encoding", "Trailer":
				continue
			case "Content-Length":
				if len(mine[k]) > 0 {
					continue
				}
			}
			mine[k] = append(mine[k], string(f.Value))
		}
		gh := gr.Header.Clone()
		delete(gh, "Trailer")
		if _, ok := gh["Connection"]; !ok {
			// net/http drops a Connection field that says close.
			delete(mine, "Connection")
		}
		if resp.Framing != Length {
			// net/http drops a Content-Length it does not use for framing.
			delete(mine, "Content-Length")
			delete(gh, "Content-Length")
		}
		if len(mine) != len(gh) {
			t.Fatalf("fields: net/http %q, h1 %q", gh, mine)
		}
		for k, v := range mine {
			if !slices.Equal(v, gh[k]) {
				t.Fatalf("field %s: net/http %q, h1 %q", k, gh[k], v)
			}
		}
		if resp.Framing == Chunked {
			mt := http.Header{}
			for _, l := range bytes.Split(bytes.TrimSuffix(trailer, []byte("\r\n")), []byte("\r\n")) {
				if len(l) == 0 {
					continue
				}
				f, err := parseField(l)
				if err != nil {
					t.Fatalf("trailer line %q: %v", l, err)
				}
				k := textproto.CanonicalMIMEHeaderKey(string(f.Name))
				mt[k] = append(mt[k], string(f.Value))
			}
			for k, v := range mt {
				if !slices.Equal(v, gr.Trailer[k]) {
					t.Fatalf("trailer %s: net/http %q, h1 %q", k, gr.Trailer[k], v)
				}
			}
		}
	})
}
