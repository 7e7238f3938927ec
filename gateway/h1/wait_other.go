//go:build !linux

package h1

import "syscall"

// waitReadable is a no-op where no non-blocking peek is wired: the
// connection waits in Read, with its buffer.
func waitReadable(syscall.RawConn, *waiter) error { return nil }

type waiter struct{}
