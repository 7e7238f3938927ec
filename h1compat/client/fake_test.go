package client

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServer accepts connections on a port of its own and runs serve on
// each, with a reader over it; the test's cleanup closes everything.
type fakeServer struct {
	ln    net.Listener
	conns atomic.Int64
	done  chan struct{}
}

func newFakeServer(t *testing.T, serve func(nc net.Conn, br *bufio.Reader)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeServer{ln: ln, done: make(chan struct{})}
	t.Cleanup(func() {
		ln.Close()
		<-fs.done
	})
	go func() {
		defer close(fs.done)
		var open []net.Conn
		defer func() {
			for _, c := range open {
				c.Close()
			}
		}()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			fs.conns.Add(1)
			open = append(open, nc)
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			go serve(nc, bufio.NewReader(nc))
		}
	}()
	return fs
}

func (fs *fakeServer) addr() string { return fs.ln.Addr().String() }

// dial opens a client connection to fs, closed at cleanup.
func (fs *fakeServer) dial(t *testing.T, cfg Config) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, fs.addr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// serveEach answers every request of a connection with answer(req),
// written as is, until the connection ends or answer returns "".
func serveEach(answer func(req *http.Request, body []byte) string) func(net.Conn, *bufio.Reader) {
	return func(nc net.Conn, br *bufio.Reader) {
		defer nc.Close()
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body := readAll(req)
			out := answer(req, body)
			if out == "" {
				return
			}
			if _, err := nc.Write([]byte(out)); err != nil {
				return
			}
		}
	}
}

func readAll(req *http.Request) []byte {
	var b []byte
	buf := make([]byte, 4096)
	for {
		n, err := req.Body.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			return b
		}
	}
}

func newRequest(t *testing.T, method, url string, body []byte) *http.Request {
	t.Helper()
	var req *http.Request
	var err error
	if body != nil {
		req, err = http.NewRequest(method, url, bytesReader(body))
	} else {
		req, err = http.NewRequest(method, url, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
