//go:build linux

package h2c

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// SockReader returns what an upstream connection's reader goroutine
// reads nc through: nc itself, or for a socket, a reader that makes each
// read(2) inside the socket's RawConn.Read callback with RawSyscall. Such
// a read never waits in the kernel (the socket is non-blocking; a read
// with nothing there waits on the poller, as nc.Read would), so it keeps
// the goroutine's P out of the runtime's syscall state, which sysmon hands
// to another thread when the P has runnable goroutines, as the reader's
// has after a batch of answers has woken their requests. Deadlines and
// Close end a wait as they end nc.Read's. Under -race it is nc: the race
// detector orders a read with the peer's write only through net's own.
//
// One goroutine reads at a time, as a bufio.Reader does.
func SockReader(nc net.Conn) io.Reader {
	rc := rawConnOf(nc)
	if rc == nil {
		return nc
	}
	r := &sockReader{nc: nc, rc: rc}
	r.fn = r.read
	return r
}

// rawConnOf is the socket under nc for raw calls, or nil: none, or -race.
func rawConnOf(nc net.Conn) syscall.RawConn {
	if raceEnabled {
		return nil
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

type sockReader struct {
	nc net.Conn
	rc syscall.RawConn
	fn func(uintptr) bool // r.read, bound once: a closure per Read would allocate
	// The current Read's buffer and result, for fn.
	p     []byte
	n     int
	errno syscall.Errno
}

func (r *sockReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p, r.n, r.errno = p, 0, 0
	err := r.rc.Read(r.fn)
	n, errno := r.n, r.errno
	r.p = nil
	switch {
	case err != nil:
		// Closed, or a deadline: net's error already.
		return 0, err
	case errno != 0:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: r.nc.LocalAddr(), Addr: r.nc.RemoteAddr(), Err: os.NewSyscallError("read", errno)}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// read is the RawConn.Read callback: true once it has bytes, the end of
// stream or an error; false to wait for the socket to be readable.
func (r *sockReader) read(fd uintptr) bool {
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.p[0])), uintptr(len(r.p)))
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		case 0:
			r.n = int(n)
		default:
			r.errno = errno
		}
		return true
	}
}

// sockWriter writes to a socket with sendto(2) made with RawSyscall inside
// the socket's RawConn.Write callback, for the coalescer's flusher: the
// reader's reasons (SockReader), on the writing side. What the send
// buffer does not take waits on the poller, under the socket's write
// deadline, as nc.Write would.
//
// One goroutine writes at a time (the flusher).
type sockWriter struct {
	nc net.Conn
	rc syscall.RawConn
	fn func(uintptr) bool // w.send, bound once
	// The current Write's bytes and progress, for fn.
	p     []byte
	done  int
	errno syscall.Errno
}

// sockWriterFor returns what the coalescer's flusher writes nc through: a
// sockWriter, or nc itself where there is no socket under it, or under
// -race.
func sockWriterFor(nc net.Conn) io.Writer {
	rc := rawConnOf(nc)
	if rc == nil {
		return nc
	}
	w := &sockWriter{nc: nc, rc: rc}
	w.fn = w.send
	return w
}

func (w *sockWriter) Write(p []byte) (int, error) {
	w.p, w.done, w.errno = p, 0, 0
	err := w.rc.Write(w.fn)
	n, errno := w.done, w.errno
	w.p = nil
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, &net.OpError{Op: "write", Net: "tcp", Source: w.nc.LocalAddr(), Addr: w.nc.RemoteAddr(), Err: os.NewSyscallError("write", errno)}
	}
	return n, nil
}

// send is the RawConn.Write callback: true once all is sent or an error
// came; false to wait for room.
func (w *sockWriter) send(fd uintptr) bool {
	for w.done < len(w.p) {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&w.p[w.done])), uintptr(len(w.p)-w.done),
			syscall.MSG_NOSIGNAL, 0, 0)
		switch errno {
		case 0:
			w.done += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			w.errno = errno
			return true
		}
	}
	return true
}
