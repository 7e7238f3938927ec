//go:build linux

package h1

import (
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// waitReadable blocks until rc's socket has bytes to read, or its end of
// stream or an error, or its read deadline passes or it is closed;
// whatever it has is left for the next Read. It first peeks at one byte
// with MSG_PEEK, so that bytes that came before the wait, whose readiness
// an earlier read may have consumed (Go's poller is edge-triggered), are
// not waited for; after a wait, the poller's word is taken without another
// peek, unless w.classify is set. w carries that state; its callback is
// made once per connection. w.gone reports whether a peek saw the end of
// stream or an error: the client left.
func waitReadable(rc syscall.RawConn, w *waiter) error {
	if w.fn == nil {
		w.fn = w.ready
	}
	w.waited, w.gone = false, false
	return rc.Read(w.fn)
}

// readNow reads into b what rc's socket has, without waiting: n > 0, or
// errWouldBlock while nothing came, or io.EOF at the end of stream.
func readNow(rc syscall.RawConn, b []byte, w *waiter) (int, error) {
	if w.fn == nil {
		w.fn = w.ready
	}
	w.read = b
	err := rc.Read(w.fn)
	w.read = nil
	n, errno := w.n, w.errno
	switch {
	case err != nil:
		return 0, err
	case errno == syscall.EAGAIN:
		return 0, errWouldBlock
	case errno != 0:
		return 0, os.NewSyscallError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// waiter is waitReadable's state for one connection.
type waiter struct {
	// read, when not nil, has ready read into it once and return, with
	// what it got in n and errno (readNow).
	read   []byte
	n      int
	errno  syscall.Errno
	waited bool
	gone   bool // the last peek saw the end of stream or an error
	// classify: a request is being served, so a wake-up must tell the
	// client leaving from the next request's bytes, by a peek. Set and
	// cleared by the request's goroutine while the watcher waits.
	classify atomic.Bool
	fn       func(uintptr) bool // w.ready, bound once
}

func (w *waiter) ready(fd uintptr) bool {
	if w.read != nil {
		for {
			n, _, errno := syscall.Syscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&w.read[0])), uintptr(len(w.read)))
			if errno != syscall.EINTR {
				w.n, w.errno = int(n), errno
				return true
			}
		}
	}
	if w.waited && !w.classify.Load() {
		return true
	}
	w.waited = true
	n, errno := peek(fd)
	if errno == syscall.EAGAIN {
		return false
	}
	w.gone = errno != 0 || n == 0
	return true
}

// peekSink is where peeks land: the byte is never looked at, so one for
// every connection will do (and the callback allocates no closure).
var peekSink [1]byte

// peek peeks at one byte of fd without waiting: n is 1 with bytes to
// read, 0 at the end of stream; errno is EAGAIN while there is nothing.
func peek(fd uintptr) (int, syscall.Errno) {
	n, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&peekSink[0])), 1,
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
		n, _, errno := syscall.Syscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&l.b[0])), uintptr(len(l.b)),
			syscall.MSG_MORE|syscall.MSG_NOSIGNAL|syscall.MSG_DONTWAIT, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		l.n, l.errno = int(n), errno
		if errno != 0 {
			l.n = 0
		}
		if l.n == len(l.b) {
			syscall.Shutdown(int(fd), syscall.SHUT_WR)
		}
		return true
	}
}
