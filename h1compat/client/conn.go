package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-gw/sluice/gateway/h1"
	"github.com/sluice-gw/sluice/upstream/sendq"
	"github.com/sluice-gw/sluice/upstream/sockio"
)

// Config tunes the connections of one backend. Zero values pick defaults.
type Config struct {
	// KeepAlive is the TCP keep-alive period. Zero means 30s.
	KeepAlive time.Duration
	// MaxHeaderBytes caps a response head, status line and final CRLF
	// included; a longer one fails the request with a *ProtocolError
	// (h1.ErrResponseHeadTooLarge). Zero means 1 MiB, what the net/http
	// transport this package replaced was given.
	MaxHeaderBytes int
	// Sender, when not nil, writes the heads of requests without a body
	// (of at most sendq.MaxHead bytes) from its own goroutine, and the
	// request's goroutine goes on to read the answer; a full queue leaves
	// the head to the request's goroutine.
	Sender *sendq.Queue
}

func (c Config) maxHead() int {
	if c.MaxHeaderBytes > 0 {
		return c.MaxHeaderBytes
	}
	return 1 << 20
}

// connState is where a connection stands between requests.
type connState uint8

const (
	stateIdle     connState = iota
	stateReserved           // a Reserve awaits its RoundTrip or Release
	stateBusy               // a request is being written or its answer read
	stateClosed             // err says why
)

// Conn is one HTTP/1.1 connection. Its methods are safe for concurrent
// use; it carries one request at a time.
type Conn struct {
	nc net.Conn
	// job is the request head with the Sender: owned by the exchange
	// that holds the connection, which settles it before the exchange
	// ends (so before anyone else may use the connection).
	job sendq.Job
	// fd is the socket's descriptor, for the liveness peek; -1 when nc
	// has none. It is used only while the connection is idle, under mu:
	// nothing closes the socket then without taking mu first (Close
	// marks the connection closed before it closes the socket).
	fd   int
	addr string
	cfg  Config

	mu    sync.Mutex // guards state, err and hook; never held while calling hook or doing I/O
	state connState
	err   error // set once, with stateClosed
	hook  func(*Conn)
	// early: the reserved connection's request head was written by
	// Presend; its RoundTrip reads the answer without writing.
	early bool
	// unchecked: the reservation skipped the liveness peek
	// (ReserveUnchecked) on a reused connection, one that an exchange
	// ended on and left open (reused), so the server may have closed it
	// since.
	unchecked, reused bool

	// The read side, owned by the exchange that holds it (see the
	// package doc): the pooled buffer (nil while idle), its unread bytes
	// rb[r:w], the parsed head and the chunked decoder.
	rbp   *[]byte
	rb    []byte
	r, w  int
	head  h1.Response
	chunk h1.ChunkDecoder
}

var _ http.RoundTripper = (*Conn)(nil)

// Dial opens one HTTP/1.1 connection to addr (host:port); ctx bounds the
// dial.
func Dial(ctx context.Context, addr string, cfg Config) (*Conn, error) {
	ka := cfg.KeepAlive
	if ka == 0 {
		ka = 30 * time.Second
	}
	d := net.Dialer{KeepAlive: ka}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// Reads and writes by raw calls (package sockio): one of each per
	// request.
	return newConn(sockio.Conn(nc), addr, cfg), nil
}

// newConn wraps an open connection.
func newConn(nc net.Conn, addr string, cfg Config) *Conn {
	c := &Conn{nc: nc, addr: addr, cfg: cfg, fd: -1}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) { c.fd = int(fd) })
		}
	}
	return c
}

// SetStateHook arranges for f to be called when the connection becomes
// available again (its request ended, or a reservation was released) or
// closes. f is called synchronously, from Release, Close, the response
// body's last Read or Close, or RoundTrip when it fails; never with the
// connection's lock held. A nil f stops the calls.
func (c *Conn) SetStateHook(f func(*Conn)) {
	c.mu.Lock()
	c.hook = f
	c.mu.Unlock()
}

func (c *Conn) runHook() {
	c.mu.Lock()
	f := c.hook
	c.mu.Unlock()
	if f != nil {
		f(c)
	}
}

// Reserve takes the connection for one later RoundTrip. It fails if the
// connection is closed or busy, or if the server closed it while it
// idled: a peek without blocking at the socket, which has nothing to say
// between answers, finds the end of the stream (or stray bytes). The
// connection is then closed and Err reports ErrIdleClosed.
func (c *Conn) Reserve() error { return c.reserve(true) }

// ReserveUnchecked is Reserve without the liveness peek, for a request
// its caller sends again, on another connection, if this one turns out
// closed: one system call less per request. If the server had closed the
// connection after an earlier exchange, the RoundTrip (or Presend) of
// the request meets the end of the stream or a reset before any byte of
// answer and reports ErrReusedClosed (and ErrServerClosed).
func (c *Conn) ReserveUnchecked() error { return c.reserve(false) }

func (c *Conn) reserve(peek bool) error {
	c.mu.Lock()
	switch c.state {
	case stateClosed:
		err := c.err
		c.mu.Unlock()
		return err
	case stateReserved, stateBusy:
		c.mu.Unlock()
		return ErrBusy
	}
	if peek {
		if err := c.checkIdleLocked(); err != nil {
			return err
		}
	}
	c.state, c.unchecked = stateReserved, !peek && c.reused
	c.mu.Unlock()
	return nil
}

// CheckIdle closes an idle connection the server has closed, as Reserve
// would find it, and reports ErrIdleClosed; it leaves a connection in use
// alone. The pool's reaper calls it, so that such a connection leaves the
// pool (and its socket closes) without waiting for a request.
func (c *Conn) CheckIdle() error {
	c.mu.Lock()
	if c.state != stateIdle {
		c.mu.Unlock()
		return nil
	}
	if err := c.checkIdleLocked(); err != nil {
		return err
	}
	c.mu.Unlock()
	return nil
}

// checkIdleLocked peeks at an idle connection. If the server closed it,
// it closes it, unlocks mu, runs the hook and returns ErrIdleClosed;
// otherwise mu stays locked.
func (c *Conn) checkIdleLocked() error {
	if !c.serverClosedLocked() {
		return nil
	}
	c.closeLocked(ErrIdleClosed)
	c.mu.Unlock()
	c.nc.Close()
	c.runHook()
	return ErrIdleClosed
}

// serverClosedLocked peeks at an idle connection's socket: anything to
// read (the end of the stream, a reset, or bytes) means the server is
// done with it.
func (c *Conn) serverClosedLocked() bool {
	return c.fd >= 0 && peekClosed(c.fd)
}

// Release gives back a reservation no request used.
func (c *Conn) Release() {
	c.mu.Lock()
	if c.state != stateReserved {
		c.mu.Unlock()
		return
	}
	if c.early {
		// A request went out that nobody will read the answer of.
		c.early = false
		c.closeLocked(ErrClosed)
		c.mu.Unlock()
		c.nc.Close()
		c.runHook()
		return
	}
	c.state = stateIdle
	c.mu.Unlock()
	c.runHook()
}

// Available is 1 when a request may be sent now, else 0.
func (c *Conn) Available() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateIdle {
		return 1
	}
	return 0
}

// InFlight is 1 while a request is reserved or carried, else 0 (also once
// closed).
func (c *Conn) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateReserved || c.state == stateBusy {
		return 1
	}
	return 0
}

// Err reports why the connection can no longer be used, or nil.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection; a request in progress fails, and a
// response body's Read returns an error. After a 101 the connection
// belongs to the response body, and Close leaves it open.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return nil
	}
	c.closeLocked(ErrClosed)
	c.mu.Unlock()
	err := c.nc.Close()
	c.runHook()
	return err
}

// closeLocked marks the connection closed with err; the caller closes the
// socket and runs the hook after unlocking.
func (c *Conn) closeLocked(err error) {
	c.state, c.err = stateClosed, err
}

// begin takes the connection for a RoundTrip: the reservation, or an idle
// connection (checked as Reserve does). early reports that Presend wrote
// the request head already; unchecked, that the reservation skipped the
// liveness peek on a reused connection (see ReserveUnchecked).
func (c *Conn) begin() (early, unchecked bool, err error) {
	c.mu.Lock()
	if c.state == stateReserved {
		c.state = stateBusy
		early, c.early = c.early, false
		unchecked = c.unchecked
		c.mu.Unlock()
		return early, unchecked, nil
	}
	c.mu.Unlock()
	if err := c.Reserve(); err != nil {
		return false, false, err
	}
	c.mu.Lock()
	if c.state != stateReserved {
		err := c.err
		c.mu.Unlock()
		return false, false, err
	}
	c.state = stateBusy
	c.mu.Unlock()
	return false, false, nil
}

// reusedClosed marks err, a failure before any byte of answer on a reused
// connection reserved without the peek, as ErrReusedClosed when the
// socket met the end of the stream or a reset: what the peek would have
// found.
func reusedClosed(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("%w: %w", ErrReusedClosed, err)
	}
	return err
}

// maxPresend bounds a head Presend writes: the send queue's bound, for
// the same reason (an idle connection's empty send buffer takes it whole,
// so the write never waits for the server to read); the goroutine that
// writes it is another request's, and no context bounds it.
const maxPresend = sendq.MaxHead

// Presend writes the head of req, a request without a body, on the
// reserved connection, ahead of the RoundTrip of the same request, which
// then only reads the answer. A head over maxPresend bytes is left to
// RoundTrip. It lets the goroutine that hands a
// connection to a queued request write that request at once. A head
// that cannot be built leaves the connection as it was (RoundTrip then
// fails the same way); a failed write closes it.
func (c *Conn) Presend(req *http.Request) error { return c.PresendOrder(req, nil) }

// PresendOrder is Presend writing req's fields in order, as
// RoundTripOrder does.
func (c *Conn) PresendOrder(req *http.Request, order []string) error {
	if req.Body != nil && req.Body != http.NoBody {
		return errPresendBody
	}
	c.mu.Lock()
	if c.state != stateReserved || c.early {
		c.mu.Unlock()
		return ErrBusy
	}
	c.mu.Unlock()
	wb := getBuf()
	b, err := appendHead((*wb)[:0], req, order, false)
	if err != nil {
		putBuf(wb)
		return err
	}
	if sendsEmptyLength(req.Method) {
		b = append(b, "Content-Length: 0\r\n"...)
	}
	b = append(b, "\r\n"...)
	if len(b) > maxPresend {
		putBuf(wb)
		return errPresendSize
	}
	_, err = c.nc.Write(b)
	*wb = b
	putBuf(wb)
	c.mu.Lock()
	if c.state != stateReserved {
		// Closed while the head was written.
		err = c.err
		c.mu.Unlock()
		return err
	}
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrServerClosed, err)
		if c.unchecked {
			err = reusedClosed(err)
		}
		c.closeLocked(err)
		c.mu.Unlock()
		c.nc.Close()
		c.runHook()
		return err
	}
	c.early = true
	c.mu.Unlock()
	return nil
}

// Presended reports whether the reservation carries a request that
// Presend wrote: Release would close the connection, while a RoundTrip
// (of any request; nothing more is written) reads that request's answer.
func (c *Conn) Presended() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == stateReserved && c.early
}

// end finishes an exchange: the connection is idle again, or closed with
// why (ErrKeepAliveEnded, a read error...). It runs the hook.
func (c *Conn) end(why error) {
	c.mu.Lock()
	closeIt := false
	switch {
	case c.state == stateClosed:
	case why != nil:
		c.closeLocked(why)
		closeIt = true
	default:
		c.state, c.reused = stateIdle, true
	}
	c.mu.Unlock()
	if closeIt && why != ErrSwitched {
		c.nc.Close()
	}
	c.runHook()
}

// limits is the response parser's.
func (c *Conn) limits() h1.Limits { return h1.Limits{MaxHeadBytes: c.cfg.maxHead()} }
