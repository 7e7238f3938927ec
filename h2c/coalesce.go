package h2c

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/upstream/sockio"
)

const (
	// coalesceMax bounds the bytes waiting for the flusher. A Write that
	// would go beyond it waits for the flusher (back-pressure); a single
	// Write larger than it is taken whole when nothing else is pending.
	coalesceMax = 64 << 10
	// closeFlushTimeout bounds how long Close lets pending bytes drain
	// before it closes the socket, as a kernel send buffer would.
	closeFlushTimeout = 100 * time.Millisecond
	// keepMax bounds the buffers kept between bursts. Larger ones, left by
	// a big response, go to the garbage collector rather than stay with
	// an idle connection.
	keepMax = 16 << 10
)

// coalescedConn batches the writes of one HTTP/2 connection into fewer
// write syscalls. Go's HTTP/2 client flushes once per request under its
// write lock, and its server flushes a response's HEADERS and DATA
// separately; here Write only copies the bytes into a buffer and returns,
// and a flusher goroutine writes whatever is pending in a single syscall.
// While that syscall runs, the frames of other streams gather behind it.
// The flusher runs only while bytes are pending: started by the Write that
// finds it stopped, it returns once the buffer is empty, so an idle
// connection holds no goroutine. At low load each Write costs a goroutine
// start and nothing more; there is no timer and no waiting for company.
//
// The flusher writes a socket with raw system calls where it can
// (package sockio).
//
// Errors: the first write error is sticky. The flusher closes the socket
// at once, so the connection's reader fails too, and every later Write
// returns the error.
//
// Deadlines: a deadline set with SetWriteDeadline bounds the Write calls
// made while it is in force (waiting for room included), and the bytes
// they queued: the flusher's syscall carries the latest deadline among
// the Writes in its batch, or none if one of them had none. A write
// timeout in the flusher is an error like any other.
//
// A connection made with CoalesceTimeout bounds its writes without a
// deadline per Write: with no deadline set, a Write waits for room at
// most the timeout, and the flusher's syscall carries a deadline between
// 7/8 of the timeout and the timeout from when it starts (it is moved only
// when less than that is left). A writer that sets a deadline before
// every frame reads the clock and takes the lock twice per frame for what
// this does once per flush.
type coalescedConn struct {
	net.Conn

	// mu protects the fields below. It is never held across a socket
	// write or close; setting the socket's write deadline is done under
	// it so that Close's deadline cannot be overtaken by the flusher's.
	mu          sync.Mutex
	pending     []byte    // bytes written but not yet taken by the flusher
	spare       []byte    // the flusher's last batch buffer, emptied, for the next
	pendingDL   time.Time // latest write deadline among the pending bytes
	pendingNoDL bool      // some pending bytes were written without a deadline
	deadline    time.Time // set by SetWriteDeadline
	sockDL      time.Time // the deadline last set on the socket
	busy        bool      // a flusher goroutine is running
	err         error     // sticky: the first write error, or net.ErrClosed
	closing     bool
	closeDL     time.Time     // deadline for draining once closing
	changed     chan struct{} // closed when room frees, err is set, the deadline moves or the flusher stops; nil if nobody waits
	flushFn     func()        // c.flush, made once: "go c.flush()" would allocate a closure per start
	out         io.Writer     // what the flusher writes through: the socket by raw calls (sockio.Writer), or Conn
	timeout     time.Duration // set once by CoalesceTimeout: the bound of Writes and flushes without a deadline
}

var _ net.Conn = (*coalescedConn)(nil)

// Coalesce returns c with its writes batched (see coalescedConn). It sits
// under every h2c upstream connection, and the gateway puts it under its
// HTTP/2 client connections. Close the returned conn, not c: it drains
// what is pending first.
func Coalesce(c net.Conn) net.Conn { return newCoalescedConn(c) }

// CoalesceTimeout is Coalesce with every write bounded by timeout, not by
// deadlines set per write (see coalescedConn).
func CoalesceTimeout(c net.Conn, timeout time.Duration) net.Conn {
	cc := newCoalescedConn(c)
	cc.timeout = timeout
	return cc
}

func newCoalescedConn(c net.Conn) *coalescedConn {
	cc := &coalescedConn{Conn: c, out: sockio.Writer(c)}
	cc.flushFn = cc.flush
	return cc
}

// Write queues p and returns; it blocks only while too much is pending.
func (c *coalescedConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var timer *time.Timer
	var waitEnd time.Time // the timeout's end, once this Write has waited (CoalesceTimeout)
	c.mu.Lock()
	for {
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			stopTimer(timer)
			return 0, err
		}
		dl := c.deadline
		if dl.IsZero() {
			dl = waitEnd
		}
		if !dl.IsZero() && !time.Now().Before(dl) {
			c.mu.Unlock()
			stopTimer(timer)
			return 0, c.timeoutError()
		}
		if len(c.pending) == 0 || len(c.pending)+len(p) <= coalesceMax {
			break
		}
		if dl.IsZero() && c.timeout > 0 {
			waitEnd = time.Now().Add(c.timeout)
			dl = waitEnd
		}
		ch := c.changedLocked()
		c.mu.Unlock()
		var expired <-chan time.Time
		if !dl.IsZero() {
			if timer == nil {
				timer = time.NewTimer(time.Until(dl))
			} else {
				timer.Reset(time.Until(dl))
			}
			expired = timer.C
		}
		select {
		case <-ch:
		case <-expired:
		}
		c.mu.Lock()
	}
	if len(c.pending)+len(p) > cap(c.pending) && len(c.pending)+len(p) <= coalesceMax {
		// Past keepMax the buffer comes from bigBufs, and goes back there
		// once the flusher is done with it, rather than growing by
		// doubling and being dropped after every burst of a big body.
		if len(c.pending)+len(p) > keepMax {
			nb := getBig()
			c.pending = append(nb, c.pending...)
		}
	}
	c.pending = append(c.pending, p...)
	if dl := c.deadline; dl.IsZero() {
		// Bytes without a deadline: none for the flusher's syscall, or
		// the timeout (CoalesceTimeout).
		c.pendingNoDL = c.pendingNoDL || c.timeout == 0
	} else if dl.After(c.pendingDL) {
		c.pendingDL = dl
	}
	start := !c.busy
	c.busy = true
	c.mu.Unlock()
	stopTimer(timer)
	if start {
		go c.flushFn()
	}
	return len(p), nil
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

func (c *coalescedConn) timeoutError() error {
	return &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.ErrDeadlineExceeded}
}

// SetWriteDeadline applies to later Writes, to Writes waiting for room
// and to the bytes those Writes queue.
func (c *coalescedConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.broadcastLocked()
	c.mu.Unlock()
	return nil
}

func (c *coalescedConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// Close lets pending bytes drain for at most closeFlushTimeout, waits for
// the flusher to stop, and closes the socket.
func (c *coalescedConn) Close() error {
	c.mu.Lock()
	if !c.closing {
		c.closing = true
		if c.err == nil {
			c.err = net.ErrClosed
		}
		c.closeDL = time.Now().Add(closeFlushTimeout)
		c.setSockDeadlineLocked(c.closeDL)
		c.broadcastLocked()
	}
	for c.busy {
		ch := c.changedLocked()
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// flush writes pending bytes until there are none, or until a write fails,
// and returns: the next Write starts it again.
func (c *coalescedConn) flush() {
	// Let the goroutines made runnable with this Write add their frames
	// first: at load, that is what fills a batch.
	runtime.Gosched()
	c.mu.Lock()
	batch := c.spare
	c.spare = nil
	for len(c.pending) > 0 {
		batch, c.pending = c.pending, batch[:0]
		dl := c.pendingDL
		if c.pendingNoDL {
			dl = time.Time{}
		}
		if c.closing {
			dl = c.closeDL
		}
		c.pendingDL, c.pendingNoDL = time.Time{}, false
		if dl.IsZero() && c.timeout > 0 {
			c.extendSockDeadlineLocked()
		} else {
			c.setSockDeadlineLocked(dl)
		}
		c.broadcastLocked()
		c.mu.Unlock()

		_, err := c.out.Write(batch)

		c.mu.Lock()
		if err != nil {
			if c.err == nil || c.err == net.ErrClosed {
				c.err = err
			}
			c.pending = nil
			c.busy = false
			c.broadcastLocked()
			c.mu.Unlock()
			// The reader must see the connection as broken too.
			c.Conn.Close()
			return
		}
	}
	if cap(batch) <= keepMax {
		c.spare = batch[:0]
	} else {
		putBig(batch)
	}
	if cap(c.pending) > keepMax {
		putBig(c.pending)
		c.pending = nil
	}
	c.busy = false
	c.broadcastLocked()
	c.mu.Unlock()
}

// bigBufs holds coalesceMax-sized buffers between bursts, shared by all
// connections: only a connection in the middle of a big body holds one.
var bigBufs = sync.Pool{New: func() any { b := make([]byte, 0, coalesceMax); return &b }}

func getBig() []byte { return (*bigBufs.Get().(*[]byte))[:0] }

// putBig returns b to bigBufs if it is one of its size; a larger one (a
// single Write bigger than coalesceMax) is left to the garbage collector.
func putBig(b []byte) {
	if cap(b) == coalesceMax {
		b = b[:0]
		bigBufs.Put(&b)
	}
}

func (c *coalescedConn) setSockDeadlineLocked(dl time.Time) {
	if !dl.Equal(c.sockDL) {
		c.sockDL = dl
		c.Conn.SetWriteDeadline(dl)
	}
}

// extendSockDeadlineLocked gives the flusher's next syscall the timeout
// (CoalesceTimeout): the socket's deadline is moved to now + timeout when
// less than 7/8 of it is left, so a syscall that starts now has between
// 7/8 of the timeout and the timeout; it is not moved on every flush.
func (c *coalescedConn) extendSockDeadlineLocked() {
	now := time.Now()
	if c.sockDL.IsZero() || c.sockDL.Sub(now) < c.timeout-c.timeout/8 {
		c.setSockDeadlineLocked(now.Add(c.timeout))
	}
}

func (c *coalescedConn) changedLocked() chan struct{} {
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	return c.changed
}

func (c *coalescedConn) broadcastLocked() {
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}
