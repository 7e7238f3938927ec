package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/gateway/h1"
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
	rejected func(error)
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

func (c *guardConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.switched.Load() {
		if err := c.g.scan(p[:n]); err != nil {
			c.refuse(err)
			return 0, fmt.Errorf("%w: %w", ErrSmuggling, err)
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

// refuse answers a request the guard rejects with the parser's status
// (400, 414 for a long target, 431 for a head over the limit) and closes
// the connection, once. A client speaking HTTP/2 would not read an
// HTTP/1.1 answer: its connection is just closed (a connection error,
// RFC 9113 3.4).
func (c *guardConn) refuse(err error) {
	c.once.Do(func() {
		if c.rejected != nil {
			c.rejected(err)
		}
		if c.g.h2 {
			c.Conn.Close()
			return
		}
		status, reason := refusal(err)
		body := reason + "\n"
		if status == http.StatusBadRequest {
			body = "bad request: " + body
		}
		fmt.Fprintf(c.Conn, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
			status, http.StatusText(status), len(body), body)
		c.Conn.Close()
	})
}

// refusal is the status and reason a refused request is answered with.
func refusal(err error) (int, string) {
	if e, ok := errors.AsType[*h1.Error](err); ok {
		return e.Status, e.Reason
	}
	return http.StatusBadRequest, err.Error()
}

// headGuard is the scanner's state; it sees every byte once, in order.
// HTTP/1.1 heads and chunked bodies are read by package h1, the parser
// whose verdict on framing is final: the guard only finds where each head
// and body ends.
type headGuard struct {
	head []byte // the current request head, up to the limit and a line
	// lim bounds a head (h1.Limits). The guard's MaxHeadBytes is the
	// configured max_header_bytes plus the 4 KiB of slack Go's server
	// has (headSlack); zero means h1's default.
	lim h1.Limits
	req h1.Request // the last head parsed, its storage reused
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
	chunk    h1.ChunkDecoder
}

// headSlack is what Go's HTTP/1.1 server reads beyond MaxHeaderBytes
// before it answers 431; the guard's limit keeps it.
const headSlack = 4096

var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\n")

// h2ClientPreface is what an HTTP/2 connection opens with (RFC 9113 3.4);
// h2PrefaceRest is what follows its request line "PRI * HTTP/2.0\r\n".
var (
	h2ClientPreface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	h2PrefaceRest   = h2ClientPreface[len("PRI * HTTP/2.0\r\n"):]
)

// errBadPreface refuses a connection that starts like HTTP/2 and goes on
// otherwise.
var errBadPreface = errors.New("malformed HTTP/2 preface")

// expectH2 makes the guard require HTTP/2 from the first byte: the client
// chose h2 by ALPN.
func (g *headGuard) expectH2() {
	g.h2, g.began, g.preface = true, true, h2ClientPreface
}

// scanH2 follows an HTTP/2 connection: the rest of the preface must follow
// its first line exactly, or Go's server would read the connection as
// HTTP/1.1 with the guard off; then its RST_STREAM frames are counted.
func (g *headGuard) scanH2(p []byte) error {
	if len(g.preface) > 0 {
		n := min(len(g.preface), len(p))
		if !bytes.Equal(p[:n], g.preface[:n]) {
			return errBadPreface
		}
		g.preface = g.preface[n:]
		p = p[n:]
	}
	g.resets += g.frames.scan(p)
	return nil
}

// scan advances over p and returns why to refuse the request, or nil.
func (g *headGuard) scan(p []byte) error {
	for len(p) > 0 {
		if g.h2 {
			return g.scanH2(p)
		}
		switch {
		case g.bodyLeft > 0:
			n := min(int64(len(p)), g.bodyLeft)
			g.bodyLeft -= n
			p = p[n:]
		case g.chunked:
			_, n, err := g.chunk.Feed(p)
			if err != nil {
				return err
			}
			p = p[n:]
			if g.chunk.Done() {
				g.chunked = false
			}
		default:
			i := bytes.IndexByte(p, '\n')
			n := i + 1
			if i < 0 {
				n = len(p)
			}
			// Keep no more than one byte over the limit: enough for the
			// parser to tell which limit it is over.
			max := g.maxHead() + 1
			k := min(n, max-len(g.head))
			g.head = append(g.head, p[:k]...)
			p = p[n:]
			if k < n || i < 0 {
				if len(g.head) >= max {
					_, err := h1.ParseHead(g.head, g.lim, &g.req)
					return err
				}
				continue
			}
			if err := g.line(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *headGuard) maxHead() int {
	if g.lim.MaxHeadBytes > 0 {
		return g.lim.MaxHeadBytes
	}
	return h1.DefaultMaxHeadBytes
}

// line handles the head's newest line (ending in \n): the preface's, an
// empty line before a request, or the empty line ending a head, which
// h1.ParseHead then reads as a whole.
func (g *headGuard) line() error {
	h := g.head
	last := h[bytes.LastIndexByte(h[:len(h)-1], '\n')+1:]
	if len(last) == len(h) { // the request line
		switch {
		case string(h) == "\r\n":
			// An empty line before a request may be ignored (RFC 9112 2.2).
			g.head = g.head[:0]
		case string(h) == "\n":
			return h1.ErrBareLF
		case !g.began && bytes.Equal(h, h2Preface[:len(h2Preface)-2]):
			g.h2, g.preface = true, h2PrefaceRest
			g.head = g.head[:0]
		}
		g.began = true
		return nil
	}
	if string(last) != "\r\n" && string(last) != "\n" {
		return nil
	}
	defer func() { g.head = g.head[:0] }()
	if _, err := h1.ParseHead(h, g.lim, &g.req); err != nil {
		return err
	}
	if g.req.Upgrade {
		// Whatever follows a 101 answer is another protocol; guardConn
		// stops checking then. Until the answer, and for good if it is
		// not 101, this is still HTTP/1.1 and the next bytes are checked
		// as such. (CONNECT needs no such case: the gateway never opens a
		// tunnel, so what follows is HTTP/1.1 to Go's server too.)
		g.upgrade.Store(true)
	}
	switch g.req.Framing {
	case h1.Chunked:
		g.chunked = true
		g.chunk.Reset()
	case h1.Length:
		g.bodyLeft = g.req.ContentLength
	}
	return nil
}
