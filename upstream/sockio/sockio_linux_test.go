//go:build linux

package sockio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair is a loopback TCP connection: the client side (which the tests
// read through SockReader) and the server side.
func tcpPair(t *testing.T) (*net.TCPConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s
}

// TestRaw: a TCP connection is read and written raw, except under -race;
// anything else (no socket under it) as it is.
func TestRaw(t *testing.T) {
	c, _ := tcpPair(t)
	_, rawR := Reader(c).(*reader)
	_, rawW := Writer(c).(*writer)
	if rawR == raceEnabled || rawW == raceEnabled {
		t.Fatalf("TCP connection: reader raw %v, writer raw %v; want %v (-race: %v)", rawR, rawW, !raceEnabled, raceEnabled)
	}
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	if r, w := Reader(p), Writer(p); r != io.Reader(p) || w != io.Writer(p) {
		t.Fatalf("pipe: reader %T, writer %T; want the pipe itself", r, w)
	}
}

// TestReaderReads: bytes already there, bytes a read waits for, and
// the end of stream, in order.
func TestReaderReads(t *testing.T) {
	c, s := tcpPair(t)
	r := Reader(c)
	s.Write([]byte("first"))
	buf := make([]byte, 64)
	n, err := io.ReadFull(r, buf[:5])
	if err != nil || string(buf[:n]) != "first" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		s.Write([]byte("second"))
		s.Close()
	}()
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "second" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read after the end = %d, %v; want 0, io.EOF", n, err)
	}
}

// TestReaderWaitEnds: a read waiting for bytes ends with the
// connection's read deadline, and with its Close, as net's read would.
func TestReaderWaitEnds(t *testing.T) {
	c, _ := tcpPair(t)
	r := Reader(c)
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := r.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %v, want os.ErrDeadlineExceeded", err)
	}
	c.SetReadDeadline(time.Time{})
	go func() {
		time.Sleep(20 * time.Millisecond)
		c.Close()
	}()
	if _, err := r.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read on a closed connection = %v, want net.ErrClosed", err)
	}
}

// TestReaderReset: a connection the peer reset reads as net's would:
// an *net.OpError carrying ECONNRESET.
func TestReaderReset(t *testing.T) {
	c, s := tcpPair(t)
	r := Reader(c)
	// No linger: the peer's close sends a reset, not a FIN.
	s.(*net.TCPConn).SetLinger(0)
	s.Close()
	_, err := r.Read(make([]byte, 8))
	var oe *net.OpError
	if !errors.As(err, &oe) || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read after a reset = %#v, want an *net.OpError with ECONNRESET", err)
	}
}

// TestWriterWaits: what does not fit the send buffer waits for the
// peer to read; all of it arrives, in order. Past the write deadline a
// write that must wait ends with os.ErrDeadlineExceeded, having sent
// what fitted.
func TestWriterWaits(t *testing.T) {
	c, s := tcpPair(t)
	w := Writer(c)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := w.Write(big)
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == len(big) {
		t.Fatalf("Write nobody reads = %d, %v; want what fitted sent, then the deadline", n, err)
	}
	c.SetWriteDeadline(time.Time{})
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(s)
		got <- b
	}()
	if m, err := w.Write(big[n:]); m != len(big)-n || err != nil {
		t.Fatalf("Write of the rest = %d, %v", m, err)
	}
	c.CloseWrite()
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("peer got %d bytes, want the %d written, in order", len(b), len(big))
	}
}

// TestWriterReset: writing to a connection the peer reset fails as
// net's write would: an *net.OpError with the system call's error, and
// no SIGPIPE.
func TestWriterReset(t *testing.T) {
	c, s := tcpPair(t)
	w := Writer(c)
	s.(*net.TCPConn).SetLinger(0)
	s.Close()
	var err error
	// The reset may come in after the first write was taken.
	for end := time.Now().Add(10 * time.Second); err == nil && time.Now().Before(end); {
		_, err = w.Write([]byte("after the reset"))
		time.Sleep(time.Millisecond)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || !(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		t.Fatalf("Write after a reset = %#v, want an *net.OpError with ECONNRESET or EPIPE", err)
	}
}

// TestConn: Conn reads and writes raw (except under -race), keeps the
// connection's deadlines, and still exposes the socket.
func TestConn(t *testing.T) {
	c, s := tcpPair(t)
	rc := Conn(c)
	if _, raw := rc.(*conn); raw == raceEnabled {
		t.Fatalf("Conn of a TCP connection = %T (-race: %v)", rc, raceEnabled)
	}
	if _, ok := rc.(syscall.Conn); !ok {
		t.Fatal("Conn hides the socket")
	}
	if _, err := rc.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("peer read %q, %v", buf, err)
	}
	s.Write([]byte("pong"))
	if _, err := io.ReadFull(rc, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("read %q, %v", buf, err)
	}
	rc.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := rc.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %v", err)
	}
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	if Conn(p) != p {
		t.Fatal("Conn of a pipe is not the pipe")
	}
}
