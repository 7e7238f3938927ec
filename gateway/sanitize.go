package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
)

// ErrSmuggling reports a request whose framing or header syntax could be
// read two ways: Go's parser tolerates some of these (obs-fold, bare LF,
// Content-Length next to Transfer-Encoding), Tomcat or a proxy in between
// might not, so they are refused outright.
var ErrSmuggling = errors.New("ambiguous HTTP/1.1 request")

// guardConn checks the raw HTTP/1.1 byte stream of a cleartext client
// connection before Go's server parses it: each request head is validated
// and its body framing followed, so the next head is found. A connection
// that starts with the HTTP/2 preface is passed through, and so is one
// the server has switched to another protocol (101 to an upgrade).
type guardConn struct {
	net.Conn
	g        headGuard
	rejected func(reason string)
	once     sync.Once
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

func (c *guardConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.g.off && !c.switched.Load() {
		if reason := c.g.scan(p[:n]); reason != "" {
			c.once.Do(func() {
				if c.rejected != nil {
					c.rejected(reason)
				}
				body := "bad request: " + reason + "\n"
				fmt.Fprintf(c.Conn, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
				c.Conn.Close()
			})
			return 0, fmt.Errorf("%w: %s", ErrSmuggling, reason)
		}
	}
	return n, err
}

// headGuard is the scanner's state; it sees every byte once, in order.
type headGuard struct {
	off  bool   // passing through: HTTP/2, or a head too large for Go's server
	head []byte // the current request head, up to maxHead
	// upgrade is set at the end of a head asking to upgrade, until the
	// server answers it (guardConn.Write, another goroutine).
	upgrade atomic.Bool
	// Body framing of the request whose head just ended.
	bodyLeft int64 // Content-Length bytes still to skip
	chunked  bool
	chunk    chunkState
}

// maxHead bounds what the guard keeps of one head; Go's server answers 431
// long before that (MaxHeaderBytes).
const maxHead = 1<<20 + 4096

var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\n")

// scan advances over p and returns a reason to reject, or "".
func (g *headGuard) scan(p []byte) string {
	for len(p) > 0 && !g.off {
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
		} else if bytes.Equal(cur, h2Preface[:len(h2Preface)-4]) {
			g.off = true
		}
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
	var cls [][]byte
	te, upgrade := false, false
	lines := bytes.Split(g.head[:len(g.head)-4], []byte("\r\n"))
	for _, l := range lines[1:] {
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
			cls = append(cls, val)
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
	if te && len(cls) > 0 {
		return "both Content-Length and Transfer-Encoding"
	}
	for _, cl := range cls[min(1, len(cls)):] {
		if !bytes.Equal(cl, cls[0]) {
			return "conflicting Content-Length values"
		}
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
	if len(cls) > 0 {
		n, err := strconv.ParseInt(string(cls[0]), 10, 64)
		if err != nil || n < 0 || cls[0][0] == '+' {
			return "invalid Content-Length"
		}
		g.bodyLeft = n
	}
	return ""
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
