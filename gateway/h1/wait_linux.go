//go:build linux

package h1

import (
	"syscall"
	"unsafe"
)

// waitReadable blocks until rc's socket has bytes to read, or its end of
// stream or an error, or its read deadline passes or it is closed;
// whatever it has is left for the next Read. It first peeks at one byte
// with MSG_PEEK, so that bytes that came before the wait, whose readiness
// an earlier read may have consumed (Go's poller is edge-triggered), are
// not waited for; after a wait, the poller's word is taken without another
// peek. w carries that state; its callback is made once per connection.
func waitReadable(rc syscall.RawConn, w *waiter) error {
	if w.fn == nil {
		w.fn = w.ready
	}
	w.waited = false
	return rc.Read(w.fn)
}

// waiter is waitReadable's state for one connection.
type waiter struct {
	waited bool
	fn     func(uintptr) bool // w.ready, bound once
}

func (w *waiter) ready(fd uintptr) bool {
	if w.waited {
		return true
	}
	w.waited = true
	return peekReady(fd)
}

// peekSink is where peeks land: the byte is never looked at, so one for
// every connection will do (and the callback allocates no closure).
var peekSink [1]byte

// peekReady is waitReadable's callback: false (wait) while the socket has
// nothing to read.
func peekReady(fd uintptr) bool {
	_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&peekSink[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno != syscall.EAGAIN
}
