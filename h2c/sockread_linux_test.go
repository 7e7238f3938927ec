//go:build linux

package h2c

import (
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

// TestSockReaderIsRaw: a TCP connection is read raw, except under -race;
// anything else (no socket under it) is read as it is.
func TestSockReaderIsRaw(t *testing.T) {
	c, _ := tcpPair(t)
	_, raw := SockReader(c).(*sockReader)
	if raw == raceEnabled {
		t.Fatalf("SockReader of a TCP connection raw = %v, want %v (-race: %v)", raw, !raceEnabled, raceEnabled)
	}
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	if r := SockReader(p); r != io.Reader(p) {
		t.Fatalf("SockReader of a pipe = %T, want the pipe itself", r)
	}
}

// TestSockReaderReads: bytes already there, bytes a read waits for, and
// the end of stream, in order.
func TestSockReaderReads(t *testing.T) {
	c, s := tcpPair(t)
	r := SockReader(c)
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

// TestSockReaderWaitEnds: a read waiting for bytes ends with the
// connection's read deadline, and with its Close, as net's read would.
func TestSockReaderWaitEnds(t *testing.T) {
	c, _ := tcpPair(t)
	r := SockReader(c)
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

// TestSockReaderReset: a connection the peer reset reads as net's would:
// an *net.OpError carrying ECONNRESET.
func TestSockReaderReset(t *testing.T) {
	c, s := tcpPair(t)
	r := SockReader(c)
	// No linger: the peer's close sends a reset, not a FIN.
	s.(*net.TCPConn).SetLinger(0)
	s.Close()
	_, err := r.Read(make([]byte, 8))
	var oe *net.OpError
	if !errors.As(err, &oe) || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read after a reset = %#v, want an *net.OpError with ECONNRESET", err)
	}
}
