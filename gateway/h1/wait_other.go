//go:build !linux

package h1

import (
	"net"
	"syscall"
)

// waitReadable is not wired where no non-blocking peek is: canWait is
// false, and the watcher reads one byte instead (conn.readOne).
func (cc *conn) waitReadable(syscall.RawConn) error { return nil }

type waiter struct {
	gone bool
	arm  bool // never set: there is no takeRequest here
	hand bool // never set either
}

// serveAccepted is not wired either: every connection starts on a
// goroutine of its own (begin).
func (cc *conn) serveAccepted() bool { return false }

// canWait: waitReadable cannot wait here.
const canWait = false

type lastWrite struct{}

// sendLast is not wired either: writeLast writes as any write.
func sendLast(syscall.RawConn, []byte, *lastWrite) (int, error) { return 0, nil }

type vecWrite struct{}

// sendBufs is not wired either: rawConn is nil here, and writeBufs writes
// as net.Buffers do.
func sendBufs(syscall.RawConn, net.Buffers, *vecWrite) (int64, error) { return 0, nil }
