package h2c

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

type watchKey struct{}

// settingsWatch learns when the client has applied the server's first
// SETTINGS frame. The Go client acknowledges SETTINGS right after applying
// them, so the first SETTINGS ACK it writes is the signal; the public
// ClientConn API offers none.
type settingsWatch struct {
	acked chan struct{}
	// closed is closed, with readErr set, when reading from the server
	// first fails: the connection is gone, SETTINGS or not.
	closed  chan struct{}
	once    sync.Once
	readErr error
	// goAway, set before the connection is used, learns of the server's
	// GOAWAY before the client has processed it.
	goAway atomic.Pointer[func(GoAway)]
	// stats, when not nil, gets the PING round trips; the write side then
	// keeps following frame headers after the SETTINGS ACK.
	stats *ConnStats
}

// ConnStats is what the frame watcher measures on one connection, for the
// stats page. The zero value is ready; it is written by the connection's
// reader and writer goroutines and read by anyone.
type ConnStats struct {
	pingSent atomic.Int64 // UnixNano of our last PING write; 0 when none is outstanding
	pingRTT  atomic.Int64 // nanoseconds, 0 before the first ACK
	pingAt   atomic.Int64 // UnixNano of that ACK
}

// PingRTT is the round trip of the last PING the client sent and the
// server acknowledged, and when the ACK arrived; zero before any. The Go
// client sends PINGs on connections idle for ping_interval.
func (s *ConnStats) PingRTT() (time.Duration, time.Time) {
	at := s.pingAt.Load()
	if at == 0 {
		return 0, time.Time{}
	}
	return time.Duration(s.pingRTT.Load()), time.Unix(0, at)
}

// GoAway is a GOAWAY frame received from the server.
type GoAway struct {
	// LastStreamID is the highest stream the server may have processed;
	// streams above it were not processed and are safe to retry.
	LastStreamID uint32
	// ErrCode is the HTTP/2 error code; 0 (NO_ERROR) is a graceful
	// shutdown, 11 (ENHANCE_YOUR_CALM) Tomcat's overhead protection.
	ErrCode uint32
}

// watchedConn parses the frames the client writes until the first SETTINGS
// ACK, then passes writes through untouched unless it measures PINGs
// (settingsWatch.stats): then it keeps reading frame headers only.
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

	rd readParser // only the transport's reader goroutine touches it
}

// readParser follows the frames the server sends.
type readParser struct {
	hdr     [9]byte
	hdrLen  int
	payload int // bytes of the current frame's payload still to pass
	goAway  bool
	body    [8]byte // GOAWAY last-stream-id and error code
	bodyLen int
}

const (
	frameGoAway = 0x7
	framePing   = 0x6
	flagPingAck = 0x1
)

func (r *readParser) scan(p []byte, w *settingsWatch) {
	for len(p) > 0 {
		if r.payload > 0 {
			n := min(r.payload, len(p))
			if r.goAway && r.bodyLen < len(r.body) {
				r.bodyLen += copy(r.body[r.bodyLen:], p[:n])
				if r.bodyLen == len(r.body) {
					r.deliver(w)
				}
			}
			r.payload -= n
			p = p[n:]
			continue
		}
		n := copy(r.hdr[r.hdrLen:], p)
		r.hdrLen += n
		p = p[n:]
		if r.hdrLen < frameHeaderBytes {
			return
		}
		r.hdrLen = 0
		r.payload = int(r.hdr[0])<<16 | int(r.hdr[1])<<8 | int(r.hdr[2])
		r.goAway = r.hdr[3] == frameGoAway && r.payload >= len(r.body)
		r.bodyLen = 0
		if r.hdr[3] == framePing && r.hdr[4]&flagPingAck != 0 && w.stats != nil {
			w.stats.acked(time.Now().UnixNano())
		}
	}
}

func (r *readParser) deliver(w *settingsWatch) {
	if f := w.goAway.Load(); f != nil {
		b := r.body
		(*f)(GoAway{
			LastStreamID: (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) & 0x7fffffff,
			ErrCode:      uint32(b[4])<<24 | uint32(b[5])<<16 | uint32(b[6])<<8 | uint32(b[7]),
		})
	}
}

const (
	prefaceLen       = 24
	frameSettings    = 0x4
	flagSettingsAck  = 0x1
	frameHeaderBytes = 9
)

// Read watches the server's frames for GOAWAY. Only frame headers are
// parsed; payloads are skipped, except a GOAWAY's first 8 bytes.
func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.rd.scan(p[:n], c.w)
	if err != nil {
		c.w.once.Do(func() {
			c.w.readErr = err
			close(c.w.closed)
		})
	}
	return n, err
}

// acked records the ACK of our outstanding PING, received at now.
func (s *ConnStats) acked(now int64) {
	if sent := s.pingSent.Swap(0); sent != 0 {
		s.pingRTT.Store(now - sent)
		s.pingAt.Store(now)
	}
}

func (c *watchedConn) Write(p []byte) (int, error) {
	if !c.done.Load() || c.w.stats != nil {
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
			switch {
			case c.hdr[3] == frameSettings && c.hdr[4]&flagSettingsAck != 0 && !c.done.Load():
				c.done.Store(true)
				close(c.w.acked)
				if c.w.stats == nil {
					return
				}
			case c.hdr[3] == framePing && c.hdr[4]&flagPingAck == 0 && c.w.stats != nil:
				c.w.stats.pingSent.Store(time.Now().UnixNano())
			}
			c.payload = length
		}
	}
}
