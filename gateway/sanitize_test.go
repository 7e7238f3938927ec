package gateway

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/h1"
)

// The smuggling corpus: each must be refused before Go's parser (and so
// Tomcat) sees it.
var smugglingCorpus = map[string]string{
	"CL.TE":              "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
	"TE.CL":              "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
	"TE.TE xchunked":     "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
	"TE.TE space name":   "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
	"TE.TE duplicate":    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
	"TE.TE list":         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
	"TE obs-fold":        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
	"duplicate CL":       "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"obs-fold":           "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
	"bare LF":            "GET / HTTP/1.1\nHost: x\n\n",
	"bare LF in header":  "GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
	"NUL in header":      "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
	"CR in header":       "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
	"CL plus sign":       "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
	"smuggled 2nd head":  "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
	"bad chunk size":     "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
	"chunk without CRLF": "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n",
	// Asking to upgrade does not switch the guard off: only a 101 answer
	// does (TestGuardConnUpgrade).
	"after Upgrade": "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
	"after CONNECT": "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\nGET / HTTP/1.1\nHost: x\n\n",
}

var cleanCorpus = map[string]string{
	"get":             "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"pipelined":       "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
	"post CL":         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nhello\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"chunked":         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhe\nlo\r\n0\r\nX-Trailer: t\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"leading CRLF":    "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"same CL twice":   "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
	"h2 preface":      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\n\n\n",
	"upgrade":         "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"TE chunked case": "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
}

// resetsAll is the RST_STREAM frames the guard counts in in, fed step bytes
// at a time, up to its first rejection.
func resetsAll(in string, step int) int {
	var g headGuard
	n := 0
	for len(in) > 0 {
		k := min(step, len(in))
		err := g.scan([]byte(in[:k]))
		n += g.resets
		g.resets = 0
		if err != nil {
			break
		}
		in = in[k:]
	}
	return n
}

// scanAll is the guard's verdict on in, fed step bytes at a time.
func scanAll(in string, step int) error {
	return scanWith(&headGuard{}, in, step)
}

func scanWith(g *headGuard, in string, step int) error {
	for len(in) > 0 {
		n := min(step, len(in))
		if err := g.scan([]byte(in[:n])); err != nil {
			return err
		}
		in = in[n:]
	}
	return nil
}

func TestHeadGuard(t *testing.T) {
	for _, step := range []int{1, 3, 7, 1 << 20} {
		for name, in := range smugglingCorpus {
			if err := scanAll(in, step); err == nil {
				t.Errorf("step %d: %s accepted", step, name)
			}
		}
		for name, in := range cleanCorpus {
			if err := scanAll(in, step); err != nil {
				t.Errorf("step %d: clean %s rejected: %v", step, name, err)
			}
		}
	}
}

// TestHeadGuardH2: after the preface's first line, or from the first byte
// when ALPN chose h2, nothing but the HTTP/2 preface and frames may follow:
// Go's server would read anything else as HTTP/1.1 with the guard off.
func TestHeadGuardH2(t *testing.T) {
	frames := "\x00\x00\x00\x04\x00\x00\x00\x00\x00" // empty SETTINGS
	tests := []struct {
		name   string
		alpnH2 bool
		in     string
		ok     bool
	}{
		{"preface", false, string(h2ClientPreface) + frames, true},
		{"preface, HTTP/1.1 after its first line", false, "PRI * HTTP/2.0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"alpn h2, preface", true, string(h2ClientPreface) + frames, true},
		{"alpn h2, HTTP/1.1", true, cleanCorpus["get"], false},
		{"alpn h2, preface line only", true, "PRI * HTTP/2.0\r\n\r\nGET", false},
	}
	for _, tt := range tests {
		for _, step := range []int{1, 5, 1 << 10} {
			var g headGuard
			if tt.alpnH2 {
				g.expectH2()
			}
			if err := scanWith(&g, tt.in, step); (err == nil) != tt.ok {
				t.Errorf("%s, step %d: %v, want ok=%v", tt.name, step, err, tt.ok)
			}
		}
	}
}

func FuzzHeadGuard(f *testing.F) {
	for _, in := range smugglingCorpus {
		f.Add(in, 3)
	}
	for _, in := range cleanCorpus {
		f.Add(in, 5)
	}
	// HTTP/2: settings, a request, its reset, a ping.
	f.Add(string(h2ClientPreface)+"\x00\x00\x00\x04\x00\x00\x00\x00\x00"+
		"\x00\x00\x03\x01\x05\x00\x00\x00\x01\x82\x86\x84"+
		"\x00\x00\x04\x03\x00\x00\x00\x00\x01\x00\x00\x00\x08"+
		"\x00\x00\x08\x06\x00\x00\x00\x00\x00\x03\x03\x03\x03\x03\x03\x03\x03", 4)
	f.Fuzz(func(t *testing.T, in string, step int) {
		if step <= 0 || step > 1<<16 {
			step = 1
		}
		a, b := scanAll(in, step), scanAll(in, len(in)+1)
		// The verdict must not depend on how the bytes arrive.
		if (a == nil) != (b == nil) {
			t.Fatalf("split %d: %v vs whole: %v", step, a, b)
		}
		// Nor the resets counted on an HTTP/2 connection.
		if ra, rb := resetsAll(in, step), resetsAll(in, len(in)+1); ra != rb {
			t.Fatalf("split %d: %d resets vs whole: %d", step, ra, rb)
		}
	})
}

// A connection passes through unchecked after the server answers 101 to an
// upgrade, and stays guarded when it answers anything else.
func TestGuardConnUpgrade(t *testing.T) {
	const upgradeHead = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	for _, tc := range []struct {
		answers []string
		next    string
		wantErr bool
	}{
		{[]string{"HTTP/1.1 101 Switching Protocols\r\n\r\n"}, "\x81\x05hello\n\n binary", false},
		{[]string{"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 101 Switching Protocols\r\n\r\n"}, "\n\n binary", false},
		{[]string{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"}, "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", true},
		// A body that happens to look like a 101 does not count: only the
		// first final status after the upgrade head decides.
		{[]string{"HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 101 Switching Protocols\r\n\r\n"}, "GET / HTTP/1.1\nHost: x\n\n", true},
	} {
		client, server := tcpPair(t)
		g := &guardConn{Conn: server}
		answered := make(chan struct{})
		go func() {
			io.WriteString(client, upgradeHead)
			<-answered
			io.WriteString(client, tc.next)
		}()
		buf := make([]byte, 4096)
		if n, err := g.Read(buf); err != nil || string(buf[:n]) != upgradeHead {
			t.Fatalf("head: %q %v", buf[:n], err)
		}
		for _, a := range tc.answers {
			g.Write([]byte(a))
		}
		close(answered)
		server.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := g.Read(buf)
		if got := err != nil; got != tc.wantErr {
			t.Errorf("answers %q then %q: read %q, err %v; want error %v", tc.answers, tc.next, buf[:n], err, tc.wantErr)
		}
		client.Close()
		server.Close()
	}
}

// TestGuardConnBatchesHTTP2Writes: once a connection has opened with the
// HTTP/2 preface its writes go through a coalescer, which delivers them in
// order and drains on Close; an HTTP/1.1 connection writes directly.
func TestGuardConnBatchesHTTP2Writes(t *testing.T) {
	for _, tc := range []struct {
		first string
		h2    bool
	}{
		{string(h2ClientPreface), true},
		{cleanCorpus["get"], false},
	} {
		client, server := tcpPair(t)
		client.SetDeadline(time.Now().Add(5 * time.Second))
		g := &guardConn{Conn: server}
		io.WriteString(client, tc.first)
		if _, err := io.ReadFull(g, make([]byte, len(tc.first))); err != nil {
			t.Fatal(err)
		}
		if got := g.h2w.Load() != nil; got != tc.h2 {
			t.Fatalf("first bytes %q: batched writes %v, want %v", tc.first[:8], got, tc.h2)
		}
		var want strings.Builder
		for i := range 200 {
			fmt.Fprintf(&want, "frame %d;", i)
			if _, err := fmt.Fprintf(g, "frame %d;", i); err != nil {
				t.Fatal(err)
			}
		}
		g.Close()
		got, err := io.ReadAll(client)
		if err != nil || string(got) != want.String() {
			t.Errorf("h2=%v: read %d bytes (err %v), want the %d written, in order", tc.h2, len(got), err, want.Len())
		}
		client.Close()
	}
}

// tcpPair is both ends of a loopback TCP connection (not net.Pipe: a
// guard's 400 or a coalescer's flush must not block on the reader).
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	return client, server
}

// TestHeadGuardLimit: a head of exactly the guard's limit, request line and
// final CRLF included, passes, however it is split across reads; one byte
// more is refused as too large, which the connection answers with 431; a
// target over its own limit is refused with 414.
func TestHeadGuardLimit(t *testing.T) {
	const limit = 8192 + headSlack
	head := func(size int) string {
		const pre, post = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ", "\r\n\r\n"
		return pre + strings.Repeat("a", size-len(pre)-len(post)) + post
	}
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"at the limit", head(limit), nil},
		{"one byte over", head(limit + 1), h1.ErrHeadTooLarge},
		{"over, in the request line", "GET /" + strings.Repeat("a", limit) + " HTTP/1.1\r\n\r\n", h1.ErrTargetTooLong},
		{"target at its limit", "GET /" + strings.Repeat("a", 8191) + " HTTP/1.1\r\nHost: x\r\n\r\n", nil},
		{"target one byte over its limit", "GET /" + strings.Repeat("a", 8192) + " HTTP/1.1\r\nHost: x\r\n\r\n", h1.ErrTargetTooLong},
		{"at the limit, then a second head at the limit", head(limit) + head(limit), nil},
	}
	for _, tt := range tests {
		for _, step := range []int{1, 7, 4096, 1 << 20} {
			g := headGuard{lim: h1.Limits{MaxHeadBytes: limit, MaxTargetBytes: 8192}}
			if err := scanWith(&g, tt.in, step); err != tt.want {
				t.Errorf("%s, step %d: %v, want %v", tt.name, step, err, tt.want)
			}
		}
	}
}
