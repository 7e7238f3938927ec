//go:build linux

package sendq

import (
	"net"
	"os"
	"syscall"
	"unsafe"
)

const supported = true

// trySend writes p to the socket with one non-blocking send(2) (repeated
// only on EINTR), inside the socket's RawConn.Write so that the socket
// cannot be closed under it: ErrShort when the send buffer took less.
//
// Under -race it writes through nc itself, which may wait for room (the
// tests' heads never do): the race detector orders a write with the
// peer's read only through net's own calls, as package sockio says.
func trySend(nc net.Conn, rc syscall.RawConn, p []byte) (int, error) {
	if raceEnabled {
		return nc.Write(p)
	}
	var n int
	var errno syscall.Errno
	err := rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			k, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n),
				syscall.MSG_NOSIGNAL|syscall.MSG_DONTWAIT, 0, 0)
			switch e {
			case 0:
				n += int(k)
			case syscall.EINTR:
			default:
				if e != syscall.EAGAIN {
					errno = e
				}
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		// Closed, or past its write deadline: net's error.
		return n, err
	case errno != 0:
		return n, os.NewSyscallError("sendto", errno)
	case n < len(p):
		return n, ErrShort
	}
	return n, nil
}

// shutdown ends both directions of the socket, so that a read of it
// blocked in the poller returns (end of stream) and the server sees the
// connection end; the descriptor stays open until its owner closes it.
func shutdown(rc syscall.RawConn) {
	rc.Control(func(fd uintptr) { syscall.Shutdown(int(fd), syscall.SHUT_RDWR) })
}
