//go:build linux

package client

import (
	"syscall"
	"unsafe"
)

// peekSink is where liveness peeks land: the byte is never looked at.
var peekSink [1]byte

// peekDone is Reserve's callback inside RawConn.Read: one recv with
// MSG_PEEK and MSG_DONTWAIT. Only "would block" leaves an idle
// connection alive: the end of the stream, a reset or bytes nobody asked
// for all mean the server is done with it. It never asks to wait.
func (c *Conn) peekDone(fd uintptr) bool {
	_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&peekSink[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	c.peekDead = errno != syscall.EAGAIN
	return true
}
