//go:build linux

package sockio

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// Reader returns what to read nc through: a reader of its socket by raw
// calls, or nc itself when there is no socket under it (or under -race).
// One goroutine reads at a time, as through a bufio.Reader.
func Reader(nc net.Conn) io.Reader {
	if rc := rawConnOf(nc); rc != nil {
		return newReader(nc, rc)
	}
	return nc
}

// Writer returns what to write nc through: a writer of its socket by raw
// calls, or nc itself. One goroutine writes at a time.
func Writer(nc net.Conn) io.Writer {
	if rc := rawConnOf(nc); rc != nil {
		return newWriter(nc, rc)
	}
	return nc
}

// Conn returns nc with its Read and Write made by raw calls (Reader and
// Writer), or nc itself. The rest is nc's; it still exposes the socket
// (syscall.Conn) for the callers' own raw calls.
func Conn(nc net.Conn) net.Conn {
	rc := rawConnOf(nc)
	if rc == nil {
		return nc
	}
	return &conn{Conn: nc, r: newReader(nc, rc), w: newWriter(nc, rc)}
}

type conn struct {
	net.Conn
	r *reader
	w *writer
}

func (c *conn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *conn) Write(p []byte) (int, error) { return c.w.Write(p) }

func (c *conn) SyscallConn() (syscall.RawConn, error) { return c.r.rc, nil }

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

type reader struct {
	nc net.Conn
	rc syscall.RawConn
	fn func(uintptr) bool // r.read, bound once: a closure per Read would allocate
	// The current Read's buffer and result, for fn.
	p     []byte
	n     int
	errno syscall.Errno
}

func newReader(nc net.Conn, rc syscall.RawConn) *reader {
	r := &reader{nc: nc, rc: rc}
	r.fn = r.read
	return r
}

func (r *reader) Read(p []byte) (int, error) {
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
func (r *reader) read(fd uintptr) bool {
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

type writer struct {
	nc net.Conn
	rc syscall.RawConn
	fn func(uintptr) bool // w.send, bound once
	// The current Write's bytes and progress, for fn.
	p     []byte
	done  int
	errno syscall.Errno
}

func newWriter(nc net.Conn, rc syscall.RawConn) *writer {
	w := &writer{nc: nc, rc: rc}
	w.fn = w.send
	return w
}

// Write sends all of p; what the send buffer does not take waits on the
// poller, under the write deadline.
func (w *writer) Write(p []byte) (int, error) {
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
func (w *writer) send(fd uintptr) bool {
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
