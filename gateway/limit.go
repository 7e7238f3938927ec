package gateway

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// limitListener caps open client connections. A connection beyond the cap
// is closed at once, never queued: a client retries or goes elsewhere, and
// the gateway keeps serving the ones it has.
type limitListener struct {
	net.Listener
	max      int64
	open     *atomic.Int64 // shared by the gateway's listeners
	rejected func()
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			c.Close()
			if l.rejected != nil {
				l.rejected()
			}
			continue
		}
		return &limitConn{Conn: c, l: l}, nil
	}
}

type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// SyscallConn exposes the socket, which limitConn does not buffer, so
// that an idle HTTP/1.1 connection waits on it without a buffer.
func (c *limitConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errNoRawConn
}
