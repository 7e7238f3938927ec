package h2c

import (
	"net"
	"sync/atomic"
)

type watchKey struct{}

// settingsWatch learns when the client has applied the server's first
// SETTINGS frame. The Go client acknowledges SETTINGS right after applying
// them, so the first SETTINGS ACK it writes is the signal; the public
// ClientConn API offers none.
type settingsWatch struct {
	acked chan struct{}
}

// watchedConn parses the frames the client writes until the first SETTINGS
// ACK, then passes writes through untouched.
type watchedConn struct {
	net.Conn
	w    *settingsWatch
	done atomic.Bool

	// Parser state; only the transport's writer goroutine touches it.
	preface int     // preface bytes still to skip
	hdr     [9]byte // partial frame header
	hdrLen  int
	payload int // payload bytes of the current frame still to skip
	started bool
}

const (
	prefaceLen       = 24
	frameSettings    = 0x4
	flagSettingsAck  = 0x1
	frameHeaderBytes = 9
)

func (c *watchedConn) Write(p []byte) (int, error) {
	if !c.done.Load() {
		c.scan(p)
	}
	return c.Conn.Write(p)
}

// scan advances the frame parser over p, the bytes about to be written.
func (c *watchedConn) scan(p []byte) {
	if !c.started {
		c.started = true
		c.preface = prefaceLen
	}
	for len(p) > 0 {
		switch {
		case c.preface > 0:
			n := min(c.preface, len(p))
			c.preface -= n
			p = p[n:]
		case c.payload > 0:
			n := min(c.payload, len(p))
			c.payload -= n
			p = p[n:]
		default:
			n := copy(c.hdr[c.hdrLen:], p)
			c.hdrLen += n
			p = p[n:]
			if c.hdrLen < frameHeaderBytes {
				return
			}
			c.hdrLen = 0
			length := int(c.hdr[0])<<16 | int(c.hdr[1])<<8 | int(c.hdr[2])
			if c.hdr[3] == frameSettings && c.hdr[4]&flagSettingsAck != 0 {
				c.done.Store(true)
				close(c.w.acked)
				return
			}
			c.payload = length
		}
	}
}
