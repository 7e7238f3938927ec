//go:build linux

package client

import (
	"syscall"
	"unsafe"
)

// peekSink is where liveness peeks land: the byte is never looked at.
var peekSink [1]byte

// peekClosed is the liveness peek: one recv with MSG_PEEK and
// MSG_DONTWAIT on the socket fd, straight (it cannot block, so it needs
// neither the poller nor the scheduler's syscall bookkeeping). Only
// "would block" leaves an idle connection alive: the end of the stream,
// a reset or bytes nobody asked for all mean the server is done with it.
func peekClosed(fd int) bool {
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&peekSink[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno != syscall.EAGAIN
}
