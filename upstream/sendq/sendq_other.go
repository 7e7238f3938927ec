//go:build !linux

package sendq

import (
	"net"
	"syscall"
)

const supported = false

func trySend(nc net.Conn, rc syscall.RawConn, p []byte) (int, error) { return 0, ErrNotSent }

func shutdown(rc syscall.RawConn) {}
