//go:build !linux

package h1

import (
	"sync/atomic"
	"syscall"
)

// waitReadable is not wired where no non-blocking peek is: canWait is
// false, and the watcher reads one byte instead (conn.readOne).
func waitReadable(syscall.RawConn, *waiter) error { return nil }

// readNow is not wired either: no connection has a raw socket here.
func readNow(syscall.RawConn, []byte, *waiter) (int, error) { return 0, errWouldBlock }

type waiter struct {
	gone     bool
	classify atomic.Bool
}

// canWait: waitReadable cannot wait here.
const canWait = false

type lastWrite struct{}

// sendLast is not wired either: writeLast writes as any write.
func sendLast(syscall.RawConn, []byte, *lastWrite) (int, error) { return 0, nil }
