//go:build linux

package rawsock

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// listen opens a loopback listener under rawsock, with deferred accept
// (as the gateway's), so that a client's first bytes are there when
// Accept returns.
func listen(t *testing.T) *Listener {
	t.Helper()
	return listenOn(t, "127.0.0.1:0")
}

// listenOn is listen on addr; it skips the test where addr's network is
// not there (a host without IPv6).
func listenOn(t *testing.T, addr string) *Listener {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 1)
		})
		return err
	}}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil && addr != "127.0.0.1:0" {
		t.Skipf("no %s here: %v", addr, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewListener(ln.(*net.TCPListener))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// pair dials l, sends first (if any), and accepts.
func pair(t *testing.T, l *Listener, first string) (*Conn, net.Conn) {
	t.Helper()
	cl, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	if first != "" {
		if _, err := cl.Write([]byte(first)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*Conn), cl
}

// waitRegistered waits, up to 10 s, until an operation on c waits: a
// client that sends only then is sure to be waited for.
func waitRegistered(c *Conn) {
	for end := time.Now().Add(10 * time.Second); !c.Registered() && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
}

// pairSendingLate is a pair whose first byte ("a") is read at once and
// whose client sends the second ("b") only once a read waits for it.
func pairSendingLate(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	c, cl := pair(t, listen(t), "a")
	c.Read(make([]byte, 1))
	go func() {
		waitRegistered(c)
		cl.Write([]byte("b"))
	}()
	return c, cl
}

// TestServedBare: a connection whose request is there when it is accepted
// and whose answer fits the send buffer is read, answered and closed
// without ever being registered with the poller; the client gets the
// answer and the end of stream.
func TestServedBare(t *testing.T) {
	l := listen(t)
	c, cl := pair(t, l, "GET / HTTP/1.1\r\n\r\n")
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "GET / HTTP/1.1\r\n\r\n" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if c.Registered() {
		t.Fatal("registered, though nothing waited")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(cl)
	if err != nil || string(got) != "HTTP/1.1 200 OK\r\n\r\n" {
		t.Fatalf("client read %q, %v", got, err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close = %v, want net.ErrClosed", err)
	}
	if _, err := c.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close = %v, want net.ErrClosed", err)
	}
}

// TestAddrs: the addresses are those the client sees, the other way
// round, over IPv4 and (where the host has it) IPv6.
func TestAddrs(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			l := listenOn(t, addr)
			c, cl := pair(t, l, "x")
			if c.RemoteAddr().String() != cl.LocalAddr().String() || c.LocalAddr().String() != cl.RemoteAddr().String() {
				t.Fatalf("server %v ← %v, client %v → %v", c.LocalAddr(), c.RemoteAddr(), cl.LocalAddr(), cl.RemoteAddr())
			}
		})
	}
}

// TestReadWaits: a read with nothing there registers the connection and
// waits for the bytes; then the end of stream reads as io.EOF.
func TestReadWaits(t *testing.T) {
	l := listen(t)
	c, cl := pair(t, l, "a")
	buf := make([]byte, 8)
	if n, err := c.Read(buf); n != 1 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	go func() {
		waitRegistered(c)
		cl.Write([]byte("bc"))
		cl.Close()
	}()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "bc" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	if !c.Registered() {
		t.Fatal("not registered, though a read waited")
	}
}

// TestDeadlines: a deadline set before the connection is registered
// bounds the wait that registers it, and one already passed fails an
// operation on the bare descriptor at once, as on a net.TCPConn.
func TestDeadlines(t *testing.T) {
	l := listen(t)
	t.Run("set before the wait", func(t *testing.T) {
		c, _ := pair(t, l, "a")
		c.Read(make([]byte, 1))
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		start := time.Now()
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("Read = %v, want a timeout", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("the deadline cut the read after %v", d)
		}
		if !c.Registered() {
			t.Fatal("not registered")
		}
	})
	t.Run("passed, bare", func(t *testing.T) {
		c, _ := pair(t, l, "a")
		c.SetDeadline(time.Now().Add(-time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read = %v, want a timeout", err)
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write = %v, want a timeout", err)
		}
		rc, _ := c.SyscallConn()
		if err := rc.Read(func(uintptr) bool { return true }); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("RawConn.Read = %v, want a timeout", err)
		}
		c.SetDeadline(time.Time{})
		if n, err := c.Read(make([]byte, 1)); n != 1 || err != nil {
			t.Fatalf("Read after clearing the deadline = %d, %v", n, err)
		}
		if c.Registered() {
			t.Fatal("registered, though nothing waited")
		}
	})
}

// TestCloseEndsWait: Close ends a read waiting on the registered
// connection, with net.ErrClosed.
func TestCloseEndsWait(t *testing.T) {
	l := listen(t)
	c, _ := pair(t, l, "a")
	c.Read(make([]byte, 1))
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		done <- err
	}()
	waitRegistered(c)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read = %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the wait")
	}
}

// TestLargeWrite: what does not fit the send buffer registers the
// connection and waits for the client to read; all of it arrives, then
// the end of stream.
func TestLargeWrite(t *testing.T) {
	l := listen(t)
	c, cl := pair(t, l, "a")
	c.Read(make([]byte, 1))
	want := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	got := make(chan []byte, 1)
	go func() {
		// Nothing is read until the write waits: the send buffer fills
		// for certain, and the wait registers the connection.
		waitRegistered(c)
		b, _ := io.ReadAll(cl)
		got <- b
	}()
	if n, err := c.Write(want); n != len(want) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if !c.Registered() {
		t.Fatal("not registered, though 16 MiB cannot fit a loopback send buffer")
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("client got %d bytes, want %d", len(b), len(want))
	}
}

// TestRegisteredWritesBare: once registered, a write that fits the send
// buffer still goes out on the bare descriptor (not through the file,
// whose write deadline the test sets to the past behind the Conn's back);
// what does not fit goes through the file and waits there. Under -race
// every write of a registered connection goes through the file.
func TestRegisteredWritesBare(t *testing.T) {
	c, cl := pairSendingLate(t)
	if n, err := c.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	r := c.file.Load()
	if r == nil {
		t.Fatal("not registered, though a read waited")
	}
	if err := r.f.SetWriteDeadline(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Write([]byte("answer"))
	if raceEnabled {
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("-race: Write = %v, want the file's deadline", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Write = %v, want it sent on the bare descriptor", err)
	}
	buf := make([]byte, 16)
	if n, err := io.ReadFull(cl, buf[:6]); n != 6 || string(buf[:6]) != "answer" {
		t.Fatalf("client read %q, %v", buf[:n], err)
	}
	// 16 MiB cannot fit: the rest goes through the file, whose
	// deadline has passed.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20)
	n, err := c.Write(big)
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 || n == len(big) {
		t.Fatalf("Write of 16 MiB = %d, %v; want part sent, then the file's deadline", n, err)
	}
	// With the deadline lifted, the rest waits for the client to read.
	if err := c.SetWriteDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(cl)
		got <- b
	}()
	if m, err := c.Write(big[n:]); m != len(big)-n || err != nil {
		t.Fatalf("Write of the rest = %d, %v", m, err)
	}
	c.CloseWrite()
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("client got %d bytes, want the %d written in order", len(b), len(big))
	}
}

// TestRawConnWaits: a RawConn callback that reports it would block is
// called again, on the registered connection, once bytes came.
func TestRawConnWaits(t *testing.T) {
	c, _ := pairSendingLate(t)
	rc, _ := c.SyscallConn()
	calls := 0
	var got byte
	err := rc.Read(func(fd uintptr) bool {
		calls++
		var b [1]byte
		n, err := syscall.Read(int(fd), b[:])
		if err == syscall.EAGAIN {
			return false
		}
		if n == 1 {
			got = b[0]
		}
		return true
	})
	if err != nil || got != 'b' || calls < 2 {
		t.Fatalf("RawConn.Read = %v, got %q after %d calls", err, got, calls)
	}
}

// TestCloseWaitsForOperations: Close never closes the descriptor under an
// operation on it (its number could be the next accept's): each callback
// that runs sees its socket open, whatever Close does meanwhile.
func TestCloseWaitsForOperations(t *testing.T) {
	l := listen(t)
	for i := 0; i < 50; i++ {
		c, _ := pair(t, l, "a")
		rc, _ := c.SyscallConn()
		var wg sync.WaitGroup
		bad := make(chan error, 8)
		for range 4 {
			wg.Go(func() {
				for {
					err := rc.Control(func(fd uintptr) {
						for range 20 {
							if _, err := syscall.Getsockname(int(fd)); err != nil {
								bad <- err
								return
							}
						}
					})
					if err != nil {
						return
					}
				}
			})
		}
		time.Sleep(100 * time.Microsecond)
		c.Close()
		wg.Wait()
		select {
		case err := <-bad:
			t.Fatalf("a callback saw its socket closed under it: %v", err)
		default:
		}
	}
}

// TestAcceptAfterClose: Accept on a closed listener fails with
// net.ErrClosed, as net.TCPListener's does (the gateway's accept loop
// tells its end by it).
func TestAcceptAfterClose(t *testing.T) {
	l := listen(t)
	l.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept = %v, want net.ErrClosed", err)
	}
}
