//go:build linux

package rawsock

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Listener accepts connections of a TCP listening socket as *Conn.
type Listener struct {
	// f is the listening socket, registered with the poller: a
	// net.TCPListener's RawConn cannot wait (its Read is EINVAL).
	f    *os.File
	rc   syscall.RawConn
	addr net.Addr
	// closed is set by Close: the file's RawConn tells a closed file by
	// an error of internal/poll's, not os.ErrClosed.
	closed atomic.Bool
	// local is the address every accepted connection has, when the
	// listener is bound to one (not a wildcard); nil: ask each socket.
	local *net.TCPAddr

	// mu serialises Accept: the fields below are the callback's results.
	mu    sync.Mutex
	fn    func(uintptr) bool // l.accept4, bound once
	nfd   int
	rsa   syscall.RawSockaddrAny // the peer's address
	errno error
}

// NewListener takes over l's socket: l is closed, its socket listens on
// under the Listener, which accepts its connections as *Conn.
func NewListener(l *net.TCPListener) (*Listener, error) {
	f, err := l.File()
	l.Close()
	if err != nil {
		return nil, fmt.Errorf("rawsock: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("rawsock: %w", err)
	}
	ln := &Listener{f: f, rc: rc, addr: l.Addr()}
	if a, ok := ln.addr.(*net.TCPAddr); ok && !a.IP.IsUnspecified() {
		ln.local = a
	}
	ln.fn = ln.accept4
	return ln, nil
}

// SyscallConn gives the listening socket, for its options.
func (l *Listener) SyscallConn() (syscall.RawConn, error) { return l.rc, nil }

// Addr is the listener's address.
func (l *Listener) Addr() net.Addr { return l.addr }

// Close closes the listening socket; a pending Accept returns
// net.ErrClosed.
func (l *Listener) Close() error {
	l.closed.Store(true)
	if err := l.f.Close(); err != nil {
		return &net.OpError{Op: "close", Net: "tcp", Addr: l.addr, Err: closedAsNet(err)}
	}
	return nil
}

// closedAsNet is err with a closed file's error as a closed network
// connection's, which callers of net test for.
func closedAsNet(err error) error {
	if errors.Is(err, os.ErrClosed) {
		return net.ErrClosed
	}
	return err
}

// Accept waits for the next connection and returns it as a *Conn, not
// registered with the poller.
func (l *Listener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.nfd, l.errno = -1, nil
	err := l.rc.Read(l.fn)
	if err != nil && l.closed.Load() {
		err = net.ErrClosed
	}
	nfd, errno := l.nfd, l.errno
	var remote *net.TCPAddr
	if err == nil && errno == nil {
		remote = tcpAddr(&l.rsa)
	}
	l.mu.Unlock()
	if err == nil && errno != nil {
		err = os.NewSyscallError("accept4", errno)
	}
	if err != nil {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: err}
	}
	c := &Conn{fd: nfd, l: l, remote: remote}
	c.raw.c = c
	c.state.Store(1) // the reference Close drops
	return c, nil
}

// tcpAddr is the address in rsa, as accept4 filled it.
func tcpAddr(rsa *syscall.RawSockaddrAny) *net.TCPAddr {
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return &net.TCPAddr{IP: net.IPv4(sa.Addr[0], sa.Addr[1], sa.Addr[2], sa.Addr[3]), Port: port(sa.Port)}
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: port(sa.Port), Zone: zone(sa.Scope_id)}
	}
	return &net.TCPAddr{}
}

// port is a sockaddr's port, which is in network byte order.
func port(p uint16) int {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return int(b[0])<<8 | int(b[1])
}

// accept4 is Accept's callback on the listening socket: true once it has
// a connection or an error to report, false to wait for the next. Its
// system call is raw, as the Conn's reads and writes are (the package
// doc): it never waits, the socket being non-blocking.
func (l *Listener) accept4(fd uintptr) bool {
	for {
		n := uint32(syscall.SizeofSockaddrAny)
		nfd, _, errno := syscall.RawSyscall6(syscall.SYS_ACCEPT4, fd, uintptr(unsafe.Pointer(&l.rsa)), uintptr(unsafe.Pointer(&n)),
			syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
		switch errno {
		case 0:
			l.nfd = int(nfd)
			return true
		case syscall.EINTR, syscall.ECONNABORTED:
			// Gone from the queue before it was accepted: the next.
			continue
		case syscall.EAGAIN:
			return false
		}
		l.errno = errno
		return true
	}
}

func zone(id uint32) string {
	if id == 0 {
		return ""
	}
	if ifi, err := net.InterfaceByIndex(int(id)); err == nil {
		return ifi.Name
	}
	return ""
}

// Conn is an accepted connection, served on its bare descriptor until an
// operation must wait (see the package doc). It is a net.Conn and a
// syscall.Conn, safe for concurrent use as a net.Conn is.
type Conn struct {
	fd     int
	l      *Listener
	remote *net.TCPAddr
	raw    rawConn

	// state counts the references to the bare descriptor (the low
	// bits): Close's own, and one per operation on it in flight; and
	// closedBit, set by Close. Whoever drops the last reference of a
	// closed Conn closes the descriptor (destroy).
	state atomic.Uint64
	// file is the registered descriptor, once an operation had to wait;
	// from then on every operation goes through it. Set once, under mu.
	file atomic.Pointer[registered]
	// rd and wd are the deadlines set (UnixNano, 0 for none): checked
	// by operations on the bare descriptor, given to the file when it
	// is made. Written under mu.
	rd, wd atomic.Int64

	mu    sync.Mutex // guards making file, and the deadlines' writes
	local net.Addr   // guarded by mu; asked of the socket once
}

// registered is the descriptor under the poller.
type registered struct {
	f  *os.File
	rc syscall.RawConn
}

const closedBit = 1 << 63

var (
	_ net.Conn     = (*Conn)(nil)
	_ syscall.Conn = (*Conn)(nil)
)

// incref takes a reference to the bare descriptor for an operation; false
// means the Conn is closed.
func (c *Conn) incref() bool {
	for {
		s := c.state.Load()
		if s&closedBit != 0 {
			return false
		}
		if c.state.CompareAndSwap(s, s+1) {
			return true
		}
	}
}

// decref drops a reference; the last one of a closed Conn closes it.
func (c *Conn) decref() {
	if c.state.Add(^uint64(0)) == closedBit {
		c.destroy()
	}
}

// destroy closes the descriptor: through its file if it was registered,
// which also ends the waits on it.
func (c *Conn) destroy() {
	c.mu.Lock()
	r := c.file.Load()
	c.mu.Unlock()
	if r != nil {
		r.f.Close()
		return
	}
	syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(c.fd), 0, 0)
}

// Registered reports whether the connection was registered with the
// poller: whether an operation had to wait.
func (c *Conn) Registered() bool { return c.file.Load() != nil }

// register registers the descriptor with the poller, if it is not yet,
// with the deadlines set so far. The caller holds a reference.
func (c *Conn) register() (*registered, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.file.Load(); r != nil {
		return r, nil
	}
	f := os.NewFile(uintptr(c.fd), "tcp")
	if f == nil {
		return nil, os.NewSyscallError("register", syscall.EBADF)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	for _, d := range []struct {
		at  int64
		set func(time.Time) error
	}{{c.rd.Load(), f.SetReadDeadline}, {c.wd.Load(), f.SetWriteDeadline}} {
		if d.at == 0 {
			continue
		}
		if err := d.set(time.Unix(0, d.at)); err != nil {
			// Not pollable after all: nothing here can wait.
			return nil, err
		}
	}
	r := &registered{f: f, rc: rc}
	c.file.Store(r)
	return r, nil
}

// passed reports whether the deadline d (UnixNano, 0 for none) passed.
func passed(d int64) bool { return d != 0 && time.Now().UnixNano() >= d }

// opError is what an operation returns for err, as net.Conn's do: an
// *net.OpError, io.EOF as it is, the closed file's error as
// net.ErrClosed.
func (c *Conn) opError(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	err = closedAsNet(err)
	if errno, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError(op, errno)
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.remote, Err: err}
}

// Read reads from the socket; only if nothing is there yet does it
// register the connection and wait.
func (c *Conn) Read(p []byte) (int, error) {
	if r := c.file.Load(); r != nil {
		n, err := r.f.Read(p)
		return n, c.opError("read", err)
	}
	if !c.incref() {
		return 0, c.opError("read", net.ErrClosed)
	}
	if passed(c.rd.Load()) {
		c.decref()
		return 0, c.opError("read", os.ErrDeadlineExceeded)
	}
	if len(p) == 0 {
		c.decref()
		return 0, nil
	}
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(c.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch errno {
		case syscall.EINTR:
			continue
		case 0:
			c.decref()
			if n == 0 {
				return 0, io.EOF
			}
			return int(n), nil
		case syscall.EAGAIN:
			r, err := c.register()
			c.decref()
			if err != nil {
				return 0, c.opError("read", err)
			}
			n, err := r.f.Read(p)
			return n, c.opError("read", err)
		}
		c.decref()
		return 0, c.opError("read", errno)
	}
}

// Write writes p to the socket; only what does not fit in its send
// buffer registers the connection and waits. A registered connection's
// write is tried on the bare descriptor too (it is non-blocking): a raw
// send neither enters the runtime's syscall state, where sysmon would
// hand the P to another thread when the send is slow, nor takes the
// file's write lock.
func (c *Conn) Write(p []byte) (int, error) {
	r := c.file.Load()
	if r != nil && raceEnabled {
		// The race detector orders a write with the peer's read
		// only through the file's.
		n, err := r.f.Write(p)
		return n, c.opError("write", err)
	}
	if !c.incref() {
		return 0, c.opError("write", net.ErrClosed)
	}
	if passed(c.wd.Load()) {
		c.decref()
		return 0, c.opError("write", os.ErrDeadlineExceeded)
	}
	done := 0
	for done < len(p) {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(c.fd), uintptr(unsafe.Pointer(&p[done])), uintptr(len(p)-done),
			syscall.MSG_NOSIGNAL, 0, 0)
		switch errno {
		case 0:
			done += int(n)
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			var err error
			if r == nil {
				r, err = c.register()
			}
			c.decref()
			if err != nil {
				return done, c.opError("write", err)
			}
			n, err := r.f.Write(p[done:])
			return done + n, c.opError("write", err)
		}
		c.decref()
		return done, c.opError("write", errno)
	}
	c.decref()
	return done, nil
}

// Close closes the connection; the descriptor closes when no operation
// on it is in flight, and a wait on it ends.
func (c *Conn) Close() error {
	for {
		s := c.state.Load()
		if s&closedBit != 0 {
			return c.opError("close", net.ErrClosed)
		}
		if c.state.CompareAndSwap(s, s|closedBit) {
			break
		}
	}
	c.decref()
	return nil
}

// CloseWrite shuts down the sending side, as net.TCPConn's does.
func (c *Conn) CloseWrite() error {
	if !c.incref() {
		return c.opError("close", net.ErrClosed)
	}
	defer c.decref()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_SHUTDOWN, uintptr(c.fd), syscall.SHUT_WR, 0); errno != 0 {
		return c.opError("close", os.NewSyscallError("shutdown", errno))
	}
	return nil
}

// LocalAddr is the listener's address, or for a wildcard listener the
// socket's, asked once.
func (c *Conn) LocalAddr() net.Addr {
	if c.l.local != nil {
		return c.l.local
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.local != nil {
		return c.local
	}
	if !c.incref() {
		return &net.TCPAddr{}
	}
	sa, err := syscall.Getsockname(c.fd)
	c.decref()
	a := &net.TCPAddr{}
	if err == nil {
		switch sa := sa.(type) {
		case *syscall.SockaddrInet4:
			a = &net.TCPAddr{IP: net.IPv4(sa.Addr[0], sa.Addr[1], sa.Addr[2], sa.Addr[3]), Port: sa.Port}
		case *syscall.SockaddrInet6:
			a = &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port, Zone: zone(sa.ZoneId)}
		}
	}
	c.local = a
	return a
}

// RemoteAddr is the client's address, from accept.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *Conn) SetReadDeadline(t time.Time) error { return c.setDeadline(&c.rd, t, true) }

func (c *Conn) SetWriteDeadline(t time.Time) error { return c.setDeadline(&c.wd, t, false) }

// setDeadline records d for the bare descriptor's operations and for the
// file to be made, or sets it on the file.
func (c *Conn) setDeadline(d *atomic.Int64, t time.Time, read bool) error {
	var at int64
	if !t.IsZero() {
		if at = t.UnixNano(); at == 0 {
			at = 1
		}
	}
	c.mu.Lock()
	d.Store(at)
	r := c.file.Load()
	c.mu.Unlock()
	if r == nil {
		if c.state.Load()&closedBit != 0 {
			return c.opError("set deadline", net.ErrClosed)
		}
		return nil
	}
	var err error
	if read {
		err = r.f.SetReadDeadline(t)
	} else {
		err = r.f.SetWriteDeadline(t)
	}
	return c.opError("set deadline", err)
}

// SyscallConn gives the socket for raw operations: their callbacks run
// on the bare descriptor first, and wait only after one reports it would
// block.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return &c.raw, nil }

// rawConn is Conn's syscall.RawConn.
type rawConn struct{ c *Conn }

// Registered is the Conn's: callers that hold only the RawConn (through
// wrappers of the Conn) can tell whether a wait would register it.
func (rc *rawConn) Registered() bool { return rc.c.Registered() }

func (rc *rawConn) Control(f func(uintptr)) error {
	c := rc.c
	if !c.incref() {
		return net.ErrClosed
	}
	defer c.decref()
	if r := c.file.Load(); r != nil {
		return r.rc.Control(f)
	}
	f(uintptr(c.fd))
	return nil
}

// Read calls f on the bare descriptor; if f reports it would block
// (false), the connection is registered and the wait goes on through the
// file's RawConn, which calls f again first.
func (rc *rawConn) Read(f func(uintptr) bool) error {
	return rc.do(f, &rc.c.rd, "read")
}

func (rc *rawConn) Write(f func(uintptr) bool) error {
	return rc.do(f, &rc.c.wd, "write")
}

func (rc *rawConn) do(f func(uintptr) bool, deadline *atomic.Int64, op string) error {
	c := rc.c
	if r := c.file.Load(); r != nil {
		return c.rawError(op, r.rc, f)
	}
	if !c.incref() {
		return net.ErrClosed
	}
	if passed(deadline.Load()) {
		c.decref()
		return os.ErrDeadlineExceeded
	}
	if f(uintptr(c.fd)) {
		c.decref()
		return nil
	}
	r, err := c.register()
	c.decref()
	if err != nil {
		return err
	}
	return c.rawError(op, r.rc, f)
}

// rawError runs f on the registered file's RawConn; its errors as the net
// package's RawConn gives them (the closed file's as net.ErrClosed).
func (c *Conn) rawError(op string, rc syscall.RawConn, f func(uintptr) bool) error {
	var err error
	if op == "read" {
		err = rc.Read(f)
	} else {
		err = rc.Write(f)
	}
	if err != nil && c.state.Load()&closedBit != 0 {
		return net.ErrClosed
	}
	return closedAsNet(err)
}
