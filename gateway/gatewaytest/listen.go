package gatewaytest

import (
	"bufio"
	"net"
	"sync"
	"testing"
	"time"
)

// Listen accepts TCP connections on 127.0.0.1 until the test ends and
// hands each to serve in a goroutine of its own; a nil serve holds them
// open and never answers (a hung JVM, or a firewall that swallows
// everything after the handshake). When the test ends it closes the
// listener and every connection, and waits for the goroutines.
func Listen(t testing.TB, serve func(net.Conn)) *net.TCPAddr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn // guarded by mu
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if serve != nil {
				wg.Go(func() { serve(c) })
			}
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr)
}

// Dial opens a TCP connection to addr with a 10 s deadline for everything
// the test does on it, closed when the test ends, and a reader over it.
func Dial(t testing.TB, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}
