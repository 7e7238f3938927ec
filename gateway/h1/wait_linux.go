//go:build linux

package h1

import (
	"syscall"
	"unsafe"
)

// waitReadable blocks until rc's socket has bytes to read, or its end of
// stream or an error, or its read deadline passes or it is closed;
// whatever it has is left for the next Read. It peeks at one byte with
// MSG_PEEK, so that readiness already consumed by an earlier read is not
// waited for again (Go's poller is edge-triggered).
func waitReadable(rc syscall.RawConn) error { return rc.Read(peekReady) }

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
