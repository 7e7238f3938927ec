//go:build linux

package h1

import (
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

// waiter is waitReadable's state for one connection.
type waiter struct {
	waited bool
	gone   bool // the last peek saw the end of stream or an error
	// classify: a request is being served, so a wake-up must tell the
	// client leaving from the next request's bytes, by a peek. Set and
	// cleared by the request's goroutine while the watcher waits.
	classify atomic.Bool
	fn       func(uintptr) bool // w.ready, bound once
}

func (w *waiter) ready(fd uintptr) bool {
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
