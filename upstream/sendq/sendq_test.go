package sendq

import (
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// pair is a connected TCP pair on loopback: the client side's socket
// (for the queue) and the server side.
func pair(t *testing.T) (client *net.TCPConn, server net.Conn) {
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

func requireLinux(t *testing.T) {
	if !supported {
		t.Skip("sendq writes only on Linux")
	}
}

func TestSendWritesHead(t *testing.T) {
	requireLinux(t)
	q := New(4)
	defer q.Close()
	rc, srv := pair(t)
	var j Job
	head := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if !q.Send(&j, rc, head) {
		t.Fatal("Send refused a head on an open queue")
	}
	got := make([]byte, len(head))
	srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(srv, got); err != nil || string(got) != string(head) {
		t.Fatalf("server read %q, %v; want %q", got, err, head)
	}
	if n, err := j.Settle(); n != len(head) || err != nil {
		t.Fatalf("Settle = %d, %v; want %d, nil", n, err, len(head))
	}
	// The job is reusable: a second head on the same connection.
	if !q.Send(&j, rc, head) {
		t.Fatal("Send refused the settled job")
	}
	if _, err := io.ReadFull(srv, got); err != nil || string(got) != string(head) {
		t.Fatalf("second head: %q, %v", got, err)
	}
	if n, err := j.Settle(); n != len(head) || err != nil {
		t.Fatalf("second Settle = %d, %v", n, err)
	}
	if w := q.Written(); w != 2 {
		t.Errorf("Written = %d, want 2", w)
	}
}

func TestSendRefuses(t *testing.T) {
	requireLinux(t)
	rc, _ := pair(t)
	q := New(1)
	var j Job
	for _, tt := range []struct {
		name string
		nc   net.Conn
		p    []byte
	}{
		{"empty head", rc, nil},
		{"head over MaxHead", rc, make([]byte, MaxHead+1)},
		{"no connection", nil, []byte("x")},
		{"no socket", struct{ net.Conn }{rc}, []byte("x")},
	} {
		if q.Send(&j, tt.nc, tt.p) {
			t.Errorf("%s: Send took it", tt.name)
			j.Settle()
		}
	}
	q.Close()
	if q.Send(&j, rc, []byte("x")) {
		t.Error("closed queue: Send took a head")
	}
	var nilQ *Queue
	if nilQ.Send(&j, rc, []byte("x")) {
		t.Error("nil queue: Send took a head")
	}
	nilQ.Close()
	if n, err := j.Settle(); n != 0 || !errors.Is(err, ErrNotSent) {
		t.Errorf("Settle of a job never taken = %d, %v; want 0, ErrNotSent", n, err)
	}
}

// TestSendFullQueue: with the goroutine stopped in its tracks (the
// queue's channel filled by hand), a further Send is refused and the
// caller keeps the head.
func TestSendFullQueue(t *testing.T) {
	requireLinux(t)
	rc, srv := pair(t)
	q := &Queue{ch: make(chan *Job, 1), stop: make(chan struct{}), done: make(chan struct{})}
	var a, b Job
	if !q.Send(&a, rc, []byte("a")) {
		t.Fatal("first Send refused")
	}
	if q.Send(&b, rc, []byte("b")) {
		t.Fatal("Send took a head beyond the queue's bound")
	}
	// Nothing runs the queue: a settles unsent, its entry left in the
	// channel, which is then full for a's next Send too.
	if n, err := a.Settle(); n != 0 || !errors.Is(err, ErrNotSent) {
		t.Fatalf("Settle before the queue took it = %d, %v; want 0, ErrNotSent", n, err)
	}
	if q.Send(&a, rc, []byte("a")) {
		t.Fatal("Send took a head into a channel full of a settled entry")
	}
	if n, err := a.Settle(); n != 0 || !errors.Is(err, ErrNotSent) {
		t.Fatalf("Settle of a refused job = %d, %v; want 0, ErrNotSent", n, err)
	}
	// The goroutine, when it comes, skips the stale entry: nothing is
	// written.
	go q.run()
	for len(q.ch) > 0 {
		runtime.Gosched()
	}
	close(q.stop)
	<-q.done
	srv.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if k, _ := srv.Read(make([]byte, 8)); k != 0 {
		t.Fatalf("server got %d bytes from settled or refused jobs", k)
	}
}

// TestCloseFailsQueued: jobs still queued when the queue closes fail as
// not sent, and their sockets are shut down, so a read waiting for the
// answer ends.
func TestCloseFailsQueued(t *testing.T) {
	requireLinux(t)
	c, _ := pair(t)
	rc := c
	q := &Queue{ch: make(chan *Job, 4), stop: make(chan struct{}), done: make(chan struct{})}
	var j Job
	if !q.Send(&j, rc, []byte("GET / HTTP/1.1\r\n\r\n")) {
		t.Fatal("Send refused")
	}
	read := make(chan error, 1)
	go func() {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err := c.Read(make([]byte, 1))
		read <- err
	}()
	close(q.stop) // stopped before its goroutine ran: the job stays queued
	go q.run()
	<-q.done
	if err := <-read; err != io.EOF {
		t.Fatalf("read after Close: %v, want io.EOF (socket shut down)", err)
	}
	if n, err := j.Settle(); n != 0 || !errors.Is(err, ErrNotSent) {
		t.Fatalf("Settle = %d, %v; want 0, ErrNotSent", n, err)
	}
}

// TestSendFailsShort: a head the send buffer cannot take whole (the
// server stopped reading and the buffers are full) fails with ErrShort,
// and the socket is shut down, ending the wait for an answer.
func TestSendFailsShort(t *testing.T) {
	requireLinux(t)
	if raceEnabled {
		t.Skip("under -race the queue writes through the connection, which waits for room")
	}
	c, _ := pair(t)
	rc := c
	c.SetWriteBuffer(4096)
	// Fill the send buffer and the server's receive buffer: nothing reads.
	c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	junk := make([]byte, 64<<10)
	for {
		if _, err := c.Write(junk); err != nil {
			break
		}
	}
	c.SetWriteDeadline(time.Time{})
	q := New(4)
	defer q.Close()
	var j Job
	if !q.Send(&j, rc, []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")) {
		t.Fatal("Send refused")
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after a failed send: %v, want io.EOF (socket shut down)", err)
	}
	n, err := j.Settle()
	if !errors.Is(err, ErrShort) || n >= 28 {
		t.Fatalf("Settle = %d, %v; want fewer than all bytes and ErrShort", n, err)
	}
}

// TestSettleRace: Settle and the queue's goroutine race for each job; the
// head is written at most once and Settle's report says whether it was.
func TestSettleRace(t *testing.T) {
	requireLinux(t)
	q := New(64)
	defer q.Close()
	rc, srv := pair(t)
	head := []byte("x")
	sent := 0
	for i := 0; i < 2000; i++ {
		var j Job
		if !q.Send(&j, rc, head) {
			// Full of jobs settled before the goroutine came to them.
			runtime.Gosched()
			continue
		}
		if i%2 == 0 {
			runtime.Gosched()
		}
		n, err := j.Settle()
		switch {
		case err == nil && n == 1:
			sent++
		case errors.Is(err, ErrNotSent) && n == 0:
		default:
			t.Fatalf("job %d: Settle = %d, %v", i, n, err)
		}
	}
	got := 0
	buf := make([]byte, 4096)
	srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	for got < sent {
		k, err := srv.Read(buf)
		if err != nil {
			t.Fatalf("server read after %d of %d bytes: %v", got, sent, err)
		}
		got += k
	}
	srv.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if k, _ := srv.Read(buf); k != 0 {
		t.Fatalf("server got %d bytes more than the %d Settle reported sent", k, sent)
	}
}
