//go:build linux

package h1

import (
	"net"
	"net/http"
	"os"
	"syscall"
	"unsafe"
)

// waitReadable blocks until rc's socket has bytes to read, or its end of
// stream or an error, or its read deadline passes or it is closed;
// whatever it has is left for the next Read, but for the idle
// connection's next request, which may be taken on the way (takeRequest).
//
// Go's poller is edge-triggered, and rc.Read forgets, as it starts, a
// readiness the poller recorded before: bytes that came since the
// socket was last read would never wake the wait. So the first look
// after it starts, and any look while a request is served (the next
// request's bytes are not to be taken then, only told from the client
// leaving), is a read of the socket: a peek (MSG_PEEK), or on an idle
// connection a read into its buffer. Once a read found the socket
// drained inside this wait, a later arrival raises an edge that wakes
// it: so a watcher that took the next request stays in this wait, and
// watches that request with no look of its own (takeRequest).
// cc.waiter.gone reports whether a look saw the end of stream or an
// error: the client left.
func (cc *conn) waitReadable(rc syscall.RawConn) error {
	w := &cc.waiter
	if w.fn == nil {
		w.fn = cc.onReadable
	}
	w.gone = false
	return rc.Read(w.fn)
}

// waiter is waitReadable's state for one connection, used by the
// goroutine in rc.Read.
type waiter struct {
	gone bool               // the last look saw the end of stream or an error
	arm  bool               // takeRequest found a fresh connection's first bytes not there yet
	hand bool               // takeRequest took a request on a socket not on the poller: await hands it to a worker, unwatched
	fn   func(uintptr) bool // cc.onReadable, bound once
	// now: the look is the accept loop's (serveAccepted), which cannot
	// wait on the socket; takeRequest leaves a whole request to be
	// watched to it (whole) rather than having it served itself.
	now, whole bool
}

// onReadable is rc.Read's callback: true ends the wait. Called first as the
// wait starts, then after each wake-up of the poller.
func (cc *conn) onReadable(fd uintptr) bool {
	w := &cc.waiter
	cc.watchMu.Lock()
	st := cc.watching
	cc.watchMu.Unlock()
	switch st {
	case watchOwns:
		return cc.takeRequest(fd)
	case watchRequest:
		cc.s.looks.Add(1)
		n, errno := peek(fd)
		if errno == syscall.EAGAIN {
			return false
		}
		w.gone = errno != 0 || n == 0
	}
	// Stopping or closing: the wait is to end anyway.
	return true
}

// takeRequest reads what the idle connection's socket has into its
// buffer, taken for it (none while nothing came). When that is, whole,
// a request that needs nothing more from the socket (a head without a
// body, or with all of it: wholeRequest) and the read left the socket
// drained, the watcher watches that request from here on and has a worker
// serve it, without ending the wait (false): no peek to start a new wait,
// no kick from the worker to start it (watch), and the worker reads
// nothing. Else the wait ends (true), and the watcher hands the
// connection over as it is (await), to a worker that reads on.
// The worker parses the head: this runs deep in rc.Read, and the
// parser's frames would grow the idle watcher's small stack for good.
func (cc *conn) takeRequest(fd uintptr) bool {
	w := &cc.waiter
	cc.takeBuf()
	b := *cc.buf
	room := len(b) - cc.w
	if room == 0 {
		return true
	}
	n, errno := sysRead(fd, b[cc.w:])
	switch {
	case errno == syscall.EAGAIN:
		cc.releaseBuf() // an idle connection holds none
		if !cc.headBy.IsZero() {
			// A fresh connection's first bytes are not there: its
			// head's clock is to be set on the socket before the
			// wait, outside this callback (await).
			w.arm = true
			return true
		}
		cc.s.looks.Add(1)
		return false
	case errno != 0 || n == 0:
		w.gone = true
		return true
	}
	cc.w += n
	if n == room || cc.first && cc.s.H2 != nil && mayBeH2(b[cc.r:cc.w]) || !wholeRequest(b[cc.r:cc.w]) {
		// Not drained, maybe HTTP/2 with prior knowledge (for the
		// worker to hand over), or more to read: the worker reads on.
		return true
	}
	cc.taken = true
	if cc.first && unregistered(cc.raw) && asksClose(b[cc.r:cc.w]) {
		// The connection's last request, on a socket not on the poller
		// (gateway/rawsock): waiting on it now would register it, and
		// take it off again as it closes, for a request most often
		// answered long before a client could leave. It is served
		// unwatched, and watched only if it runs long (watch,
		// lateWatchDelay). A keep-alive connection is registered for
		// its idle waits anyway: its watcher watches as on any socket,
		// and stays its idle goroutine (a new one, started once the
		// request is served, would start with the larger stack the
		// runtime sizes new goroutines by after serving some).
		w.hand = true
		return true
	}
	if w.now {
		w.whole = true
		return true
	}
	cc.watchMu.Lock()
	cc.watching = watchRequest
	cc.watchMu.Unlock()
	cc.s.workers.admit(cc)
	return false
}

// serveAccepted serves cc, just accepted, on the accept loop (Server.serveNew)
// as far as that never waits: it reads what the socket has, as a fresh
// connection's watcher would (takeRequest), and has the admission take a
// whole last request on the spot, unwatched (lateWatch), as await would.
// What must wait on the socket is left to a goroutine of cc's own, the
// watcher (await): the wait for the first bytes, under the head's clock,
// or the watch of a whole keep-alive request; a head read in part goes to
// a worker, which reads on. It reports false, having done nothing, when
// the socket is on the poller already (then it is not a fresh one) or
// not a socket: begin serves it.
func (cc *conn) serveAccepted() bool {
	rc := cc.rawConn()
	if rc == nil || !unregistered(rc) {
		return false
	}
	if !cc.startFresh() {
		return true
	}
	w := &cc.waiter
	w.now = true
	err := rc.Control(func(fd uintptr) { cc.takeRequest(fd) })
	w.now = false
	switch {
	case err != nil || w.gone:
		cc.watching = watchNone
		cc.close(http.StateClosed)
	case w.hand:
		cc.admitUnwatched()
	case w.whole:
		// As takeRequest would have it, but the wait that watches the
		// request is the watcher's, started here.
		w.whole = false
		cc.watching = watchRequest
		go cc.await(rc)
		cc.s.workers.admit(cc)
	case w.arm:
		cc.armFirst()
		go cc.await(rc)
	default:
		// Part of a head, or HTTP/2's preface, or a full buffer.
		cc.watching = watchNone
		cc.s.workers.run(cc)
	}
	cc.s.acceptReads.Add(1)
	return true
}

// bare is a RawConn whose socket is registered with Go's poller only once
// an operation on it must wait (gateway/rawsock).
type bare interface{ Registered() bool }

// unregistered reports whether rc is a socket not yet on the poller.
// Only a connection's first request can find one: its watcher's first
// wait registers it.
func unregistered(rc syscall.RawConn) bool {
	r, ok := rc.(bare)
	return ok && !r.Registered()
}

// The socket calls below never wait (a non-blocking socket, MSG_DONTWAIT,
// shutdown), so they are raw: the goroutine keeps its P through them, as
// h1compat/client's liveness peek does. Through syscall.Syscall the P
// goes into the syscall state, and one still there at sysmon's next look
// (the loopback send under shutdown can take that long) may be retaken
// and handed off; each retake puts sysmon back on its 20 µs sleep
// (BENCHMARKS.md, seventh session, Connection: close clients).

// sysRead is read(2) of fd into b, retried on EINTR.
func sysRead(fd uintptr, b []byte) (int, syscall.Errno) {
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if errno != syscall.EINTR {
			if errno != 0 {
				n = 0
			}
			return int(n), errno
		}
	}
}

// peekSink is where peeks land: the byte is never looked at, so one for
// every connection will do (and the callback allocates no closure).
var peekSink [1]byte

// peek peeks at one byte of fd without waiting: n is 1 with bytes to
// read, 0 at the end of stream; errno is EAGAIN while there is nothing.
func peek(fd uintptr) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&peekSink[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return int(n), errno
}

// canWait: waitReadable waits without reading here.
const canWait = true

// lastWrite is sendLast's state for one connection; its callback is made
// once per connection. Used by the goroutine writing the response.
type lastWrite struct {
	b     []byte
	n     int
	errno syscall.Errno
	fn    func(uintptr) bool // send, bound once
}

// sendLast writes b, the last bytes the connection will send, and shuts
// its write side down, so that the end of stream (FIN) leaves in the
// segment that carries them rather than in one of its own when the socket
// is closed: b goes with MSG_MORE, which holds it for more, and shutdown
// sends it with the FIN. It writes what the socket takes without waiting:
// n < len(b) with a nil error leaves the rest to the caller, and the write
// side open.
func sendLast(rc syscall.RawConn, b []byte, l *lastWrite) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if l.fn == nil {
		l.fn = l.send
	}
	l.b = b
	err := rc.Write(l.fn)
	l.b = nil
	switch {
	case err != nil:
		return 0, err
	case l.errno == syscall.EAGAIN:
		return 0, nil
	case l.errno != 0:
		return 0, os.NewSyscallError("sendto", l.errno)
	}
	return l.n, nil
}

func (l *lastWrite) send(fd uintptr) bool {
	for {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&l.b[0])), uintptr(len(l.b)),
			syscall.MSG_MORE|syscall.MSG_NOSIGNAL|syscall.MSG_DONTWAIT, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		l.n, l.errno = int(n), errno
		if errno != 0 {
			l.n = 0
		}
		if l.n == len(l.b) {
			syscall.RawSyscall(syscall.SYS_SHUTDOWN, fd, syscall.SHUT_WR, 0)
		}
		return true
	}
}

// vecWrite is sendBufs's state for one connection; its callback is made
// once per connection. Used by the goroutine writing the response, under
// the connection's wmu.
type vecWrite struct {
	bufs  net.Buffers
	iov   [4]syscall.Iovec // as many as response.write's buffers
	n     int64
	errno syscall.Errno
	fn    func(uintptr) bool // send, bound once
}

// sendBufs writes bufs with writev, as many at a time as the socket
// takes, waiting for room as a Write would: one system call for a large
// response's head, body and chunk framing, where net.Buffers writes each
// on its own to a connection that is not a *net.TCPConn (gateway/rawsock).
func sendBufs(rc syscall.RawConn, bufs net.Buffers, v *vecWrite) (int64, error) {
	if v.fn == nil {
		v.fn = v.send
	}
	v.bufs, v.n, v.errno = bufs, 0, 0
	err := rc.Write(v.fn)
	v.bufs = nil
	clear(v.iov[:])
	if err == nil && v.errno != 0 {
		err = os.NewSyscallError("writev", v.errno)
	}
	return v.n, err
}

func (v *vecWrite) send(fd uintptr) bool {
	for {
		iov := v.iov[:0]
		for _, b := range v.bufs {
			if len(b) == 0 {
				continue
			}
			if len(iov) == len(v.iov) {
				break
			}
			iov = append(iov, syscall.Iovec{Base: &b[0]})
			iov[len(iov)-1].SetLen(len(b))
		}
		if len(iov) == 0 {
			return true
		}
		n, _, errno := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		switch errno {
		case 0:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			v.errno = errno
			return true
		}
		v.n += int64(n)
		for left := int64(n); left > 0; {
			if l := int64(len(v.bufs[0])); left >= l {
				v.bufs = v.bufs[1:]
				left -= l
			} else {
				v.bufs[0] = v.bufs[0][left:]
				left = 0
			}
		}
	}
}
