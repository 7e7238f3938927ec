//go:build !linux

package h1

import (
	"sync/atomic"
	"syscall"
)

// waitReadable is not wired where no non-blocking peek is: canWait is
// false, and the watcher reads one byte instead (conn.readOne).
func waitReadable(syscall.RawConn, *waiter) error { return nil }

type waiter struct {
	gone     bool
	classify atomic.Bool
}

// canWait: waitReadable cannot wait here.
const canWait = false
