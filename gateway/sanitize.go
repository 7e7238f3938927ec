package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/h2c"
)

// ErrSmuggling reports a request whose framing or header syntax could be
// read two ways: Go's parser tolerates some of these (obs-fold, bare LF,
// Content-Length next to Transfer-Encoding), Tomcat or a proxy in between
// might not, so they are refused outright.
var ErrSmuggling = errors.New("ambiguous HTTP/1.1 request")

// guardConn checks the raw HTTP/1.1 byte stream of a cleartext client
// connection before Go's server parses it: each request head is validated
// and its body framing followed, so the next head is found. A connection
// that starts with the HTTP/2 preface has its frames followed instead, to
// cut rapid-reset floods (reset.go), and its writes batched (h2w); one the
// server has switched to another protocol (101 to an upgrade) is passed
// through.
type guardConn struct {
	net.Conn
	g        headGuard
	rejected func(reason string)
	flooded  func() // the connection was cut for a rapid-reset flood
	once     sync.Once
	resets   resetWindow
	// h2w is set, once, when the connection turns out to be HTTP/2: its
	// writes then go through a coalescer (h2c.Coalesce). Go's HTTP/2
	// server writes each response's HEADERS and DATA with a flush of
	// their own; batched, the frames of a response and of the streams
	// around it leave in one syscall.
	h2w atomic.Pointer[net.Conn]
	// switched is set when the server answers 101 to an upgrade request:
	// what follows is no longer HTTP/1.1. Only the answer can tell, since
	// a request asking to upgrade that gets any other status goes on as
	// HTTP/1.1 and must stay guarded.
	switched atomic.Bool
}

var status101 = []byte("HTTP/1.1 101 ")

// Write watches for the server's answer to an upgrade request: the first
// final status written after its head decides (interim 1xx such as 100
// Continue wait for it).
func (c *guardConn) Write(p []byte) (int, error) {
	if w := c.h2w.Load(); w != nil {
		return (*w).Write(p)
	}
	if c.g.upgrade.Load() {
		switch {
		case bytes.HasPrefix(p, status101):
			c.switched.Store(true)
			c.g.upgrade.Store(false)
		case !bytes.HasPrefix(p, []byte("HTTP/1.1 1")):
			c.g.upgrade.Store(false)
		}
	}
	return c.Conn.Write(p)
}

// errRapidReset ends the read loop of a connection cut for a flood.
var errRapidReset = errors.New("HTTP/2 rapid reset: connection closed")

// errHeadTooLarge ends the read loop of a connection whose request head
// went over the limit (headGuard.limit).
var errHeadTooLarge = errors.New("request head over max_header_bytes: connection closed")

func (c *guardConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.g.off && !c.switched.Load() {
		if reason := c.g.scan(p[:n]); reason != "" {
			c.refuse(reason)
			if reason == reasonHeadTooLarge {
				return 0, errHeadTooLarge
			}
			return 0, fmt.Errorf("%w: %s", ErrSmuggling, reason)
		}
		if c.g.h2 && c.h2w.Load() == nil {
			w := h2c.Coalesce(c.Conn)
			c.h2w.Store(&w)
		}
		if k := c.g.resets; k > 0 {
			c.g.resets = 0
			if c.resets.add(time.Now().UnixNano(), k) {
				c.once.Do(func() {
					if c.flooded != nil {
						c.flooded()
					}
					// Closing the socket ends Go's HTTP/2 server's read
					// loop; the streams still open end with it. No
					// GOAWAY: the client is not owed one.
					c.Conn.Close()
				})
				return 0, errRapidReset
			}
		}
	}
	return n, err
}

// Close drains the coalescer of an HTTP/2 connection first.
func (c *guardConn) Close() error {
	if w := c.h2w.Load(); w != nil {
		return (*w).Close()
	}
	return c.Conn.Close()
}

// SetWriteDeadline and SetDeadline go to the coalescer when there is one:
// it owns the socket's write deadline.
func (c *guardConn) SetWriteDeadline(t time.Time) error {
	if w := c.h2w.Load(); w != nil {
		return (*w).SetWriteDeadline(t)
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *guardConn) SetDeadline(t time.Time) error {
	if w := c.h2w.Load(); w != nil {
		return (*w).SetDeadline(t)
	}
	return c.Conn.SetDeadline(t)
}

// refuse answers a request the guard rejects with 400 (431 for a head over
// the limit) and closes the connection, once. A client speaking HTTP/2
// would not read an HTTP/1.1 answer: its connection is just closed (a
// connection error, RFC 9113 3.4).
func (c *guardConn) refuse(reason string) {
	c.once.Do(func() {
		if c.rejected != nil {
			c.rejected(reason)
		}
		if c.g.h2 {
			c.Conn.Close()
			return
		}
		status, body := "400 Bad Request", "bad request: "+reason+"\n"
		if reason == reasonHeadTooLarge {
			status, body = "431 Request Header Fields Too Large", reason+"\n"
		}
		fmt.Fprintf(c.Conn, "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", status, len(body), body)
		c.Conn.Close()
	})
}

// headGuard is the scanner's state; it sees every byte once, in order.
type headGuard struct {
	off  bool   // passing through: a head too large for Go's server
	head []byte // the current request head, up to maxHead
	// limit, when positive, is the most a request head may take, request
	// line and final CRLF included; a longer one is refused with 431
	// (reasonHeadTooLarge). Go's server would do the same at its
	// MaxHeaderBytes plus 4 KiB, but that limit is shared with HTTP/2,
	// where it is set higher (maxHeadHard).
	limit int
	// h2 is set when the connection opened with the HTTP/2 preface's
	// request line: the rest of the preface and then frames follow.
	// began is set once any line has been read: only the first can be
	// the preface, as only there does Go's server look for it.
	h2, began bool
	preface   []byte   // what is still due of the preface, once h2 is set
	frames    h2Frames // the client's frames, after the preface
	resets    int      // RST_STREAM frames scanned, for the reader to take
	// upgrade is set at the end of a head asking to upgrade, until the
	// server answers it (guardConn.Write, another goroutine).
	upgrade atomic.Bool
	// Body framing of the request whose head just ended.
	bodyLeft int64 // Content-Length bytes still to skip
	chunked  bool
	chunk    chunkState
}

// maxHead bounds what the guard keeps of one head; the guard's limit, at
// most max_header_bytes' own upper bound plus 4 KiB, refuses a head before
// that.
const maxHead = 1<<20 + 4096

// headSlack is what Go's HTTP/1.1 server reads beyond MaxHeaderBytes
// before it answers 431; the guard's limit keeps it.
const headSlack = 4096

// reasonHeadTooLarge is the guard's reason for a head over its limit: the
// request gets 431, not 400.
const reasonHeadTooLarge = "request header fields too large"

var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\n")

// h2ClientPreface is what an HTTP/2 connection opens with (RFC 9113 3.4);
// h2PrefaceRest is what follows its request line "PRI * HTTP/2.0\r\n".
var (
	h2ClientPreface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	h2PrefaceRest   = h2ClientPreface[len("PRI * HTTP/2.0\r\n"):]
)

// expectH2 makes the guard require HTTP/2 from the first byte: the client
// chose h2 by ALPN.
func (g *headGuard) expectH2() {
	g.h2, g.began, g.preface = true, true, h2ClientPreface
}

// scanH2 follows an HTTP/2 connection: the rest of the preface must follow
// its first line exactly, or Go's server would read the connection as
// HTTP/1.1 with the guard off; then its RST_STREAM frames are counted.
func (g *headGuard) scanH2(p []byte) string {
	if len(g.preface) > 0 {
		n := min(len(g.preface), len(p))
		if !bytes.Equal(p[:n], g.preface[:n]) {
			return "malformed HTTP/2 preface"
		}
		g.preface = g.preface[n:]
		p = p[n:]
	}
	g.resets += g.frames.scan(p)
	return ""
}

// scan advances over p and returns a reason to reject, or "".
func (g *headGuard) scan(p []byte) string {
	for len(p) > 0 && !g.off {
		if g.h2 {
			return g.scanH2(p)
		}
		switch {
		case g.bodyLeft > 0:
			n := int64(len(p))
			if n > g.bodyLeft {
				n = g.bodyLeft
			}
			g.bodyLeft -= n
			p = p[n:]
		case g.chunked:
			var reason string
			p, reason = g.chunk.scan(p)
			if reason != "" {
				return reason
			}
			if g.chunk.done {
				g.chunked = false
				g.chunk = chunkState{}
			}
		default:
			i := bytes.IndexByte(p, '\n')
			n := i + 1
			if i < 0 {
				n = len(p)
			}
			if g.limit > 0 && len(g.head)+n > g.limit {
				return reasonHeadTooLarge
			}
			if i < 0 {
				if len(g.head)+len(p) > maxHead {
					g.off = true // Go's server rejects it (431)
					return ""
				}
				g.head = append(g.head, p...)
				return ""
			}
			g.head = append(g.head, p[:i+1]...)
			p = p[i+1:]
			if reason := g.line(); reason != "" {
				return reason
			}
		}
	}
	return ""
}

// line handles the head's newest line (ending in \n).
func (g *headGuard) line() string {
	h := g.head
	if len(h) < 2 || h[len(h)-2] != '\r' {
		return "bare LF line ending"
	}
	start := bytes.LastIndexByte(h[:len(h)-1], '\n') + 1
	cur := h[start : len(h)-2]
	if start == 0 { // the request line
		if len(cur) == 0 {
			// An empty line before a request may be ignored (RFC 9112 2.2).
			g.head = g.head[:0]
		} else if !g.began && bytes.Equal(cur, h2Preface[:len(h2Preface)-4]) {
			g.h2, g.preface = true, h2PrefaceRest
		}
		g.began = true
		return ""
	}
	if len(cur) == 0 {
		return g.end()
	}
	if cur[0] == ' ' || cur[0] == '\t' {
		return "obs-fold (header line continued with whitespace)"
	}
	if bytes.IndexByte(cur, 0) >= 0 || bytes.IndexByte(cur, '\r') >= 0 {
		return "control character in header"
	}
	return ""
}

// end validates a complete head and sets up the body framing.
func (g *headGuard) end() string {
	defer func() { g.head = g.head[:0] }()
	var cl []byte // the first Content-Length value
	te, upgrade, haveCL := false, false, false
	// The header lines, after the request line; each ends in CRLF (line
	// checked that), and the head in an empty line.
	rest := g.head[:len(g.head)-2]
	rest = rest[bytes.IndexByte(rest, '\n')+1:]
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		l := rest[:i-1]
		rest = rest[i+1:]
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 {
			return "malformed header line"
		}
		name := l[:colon]
		if bytes.ContainsAny(name, " \t") {
			return "whitespace in header name"
		}
		val := bytes.TrimSpace(l[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if !haveCL {
				cl, haveCL = val, true
			} else if !bytes.Equal(val, cl) {
				return "conflicting Content-Length values"
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if te {
				return "repeated Transfer-Encoding"
			}
			te = true
			if !bytes.EqualFold(val, []byte("chunked")) {
				return "Transfer-Encoding other than chunked"
			}
		case bytes.EqualFold(name, []byte("Upgrade")):
			upgrade = true
		}
	}
	if te && haveCL {
		return "both Content-Length and Transfer-Encoding"
	}
	if upgrade {
		// Whatever follows a 101 answer is another protocol; guardConn
		// stops checking then. Until the answer, and for good if it is
		// not 101, this is still HTTP/1.1 and the next bytes are checked
		// as such. (CONNECT needs no such case: the gateway never opens a
		// tunnel, so what follows is HTTP/1.1 to Go's server too.)
		g.upgrade.Store(true)
	}
	if te {
		g.chunked = true
		return ""
	}
	if haveCL {
		n, ok := parseContentLength(cl)
		if !ok {
			return "invalid Content-Length"
		}
		g.bodyLeft = n
	}
	return ""
}

// parseContentLength reads a Content-Length value: decimal digits only (no
// sign, no spaces), at most 18 of them so that it cannot overflow.
func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// chunkState follows a chunked body: size lines, data, trailers.
type chunkState struct {
	line     []byte
	dataLeft int64
	needCRLF int // CRLF bytes after a chunk's data still expected
	trailers bool
	done     bool
}

func (c *chunkState) scan(p []byte) ([]byte, string) {
	for len(p) > 0 && !c.done {
		switch {
		case c.dataLeft > 0:
			n := min(int64(len(p)), c.dataLeft)
			c.dataLeft -= n
			p = p[n:]
			if c.dataLeft == 0 {
				c.needCRLF = 2
			}
		case c.needCRLF > 0:
			want := byte('\r')
			if c.needCRLF == 1 {
				want = '\n'
			}
			if p[0] != want {
				return p, "chunk data not followed by CRLF"
			}
			c.needCRLF--
			p = p[1:]
		default:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				if len(c.line)+len(p) > 4096 {
					return p, "chunk line too long"
				}
				c.line = append(c.line, p...)
				return nil, ""
			}
			c.line = append(c.line, p[:i+1]...)
			p = p[i+1:]
			l := c.line
			c.line = c.line[:0]
			if len(l) < 2 || l[len(l)-2] != '\r' {
				return p, "bare LF in chunked body"
			}
			l = l[:len(l)-2]
			if c.trailers {
				if len(l) == 0 {
					c.done = true
				}
				continue
			}
			if semi := bytes.IndexByte(l, ';'); semi >= 0 {
				l = l[:semi]
			}
			size, err := strconv.ParseInt(string(bytes.TrimRight(l, " \t")), 16, 64)
			if err != nil || size < 0 {
				return p, "invalid chunk size"
			}
			if size == 0 {
				c.trailers = true
				continue
			}
			c.dataLeft = size
		}
	}
	return p, ""
}
