package h2c

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeConn records what the flusher writes. A write blocks while gate is
// not nil and not closed, or until the write deadline passes; like a
// socket's, a deadline set during a write applies to it.
type fakeConn struct {
	mu        sync.Mutex
	writes    [][]byte
	gate      chan struct{}
	err       error // returned by every write once set
	deadline  time.Time
	dlSets    int           // SetWriteDeadline calls
	ignoreDL  bool          // a write blocked on gate ignores the deadline
	dlChanged chan struct{} // closed and replaced by SetWriteDeadline
	closed    bool
	closedCh  chan struct{}
}

func newFakeConn() *fakeConn {
	return &fakeConn{closedCh: make(chan struct{}), dlChanged: make(chan struct{})}
}

func (f *fakeConn) Write(p []byte) (int, error) {
	for {
		f.mu.Lock()
		gate, dl, changed := f.gate, f.deadline, f.dlChanged
		if f.ignoreDL {
			dl = time.Time{}
		}
		f.mu.Unlock()
		if gate == nil {
			break
		}
		var expired <-chan time.Time
		if !dl.IsZero() {
			t := time.NewTimer(time.Until(dl))
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-gate:
		case <-changed:
			continue
		case <-expired:
			return 0, os.ErrDeadlineExceeded
		case <-f.closedCh:
			return 0, net.ErrClosed
		}
		break
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	f.writes = append(f.writes, bytes.Clone(p))
	return len(p), nil
}

func (f *fakeConn) Read(p []byte) (int, error) {
	<-f.closedCh
	return 0, net.ErrClosed
}

func (f *fakeConn) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.closedCh)
	}
	return nil
}

func (f *fakeConn) SetWriteDeadline(t time.Time) error {
	f.mu.Lock()
	f.deadline = t
	f.dlSets++
	close(f.dlChanged)
	f.dlChanged = make(chan struct{})
	f.mu.Unlock()
	return nil
}

func (f *fakeConn) SetDeadline(t time.Time) error   { return f.SetWriteDeadline(t) }
func (f *fakeConn) SetReadDeadline(time.Time) error { return nil }
func (f *fakeConn) LocalAddr() net.Addr             { return &net.TCPAddr{} }
func (f *fakeConn) RemoteAddr() net.Addr            { return &net.TCPAddr{} }
func (f *fakeConn) written() (n int, all []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.writes {
		all = append(all, w...)
	}
	return len(f.writes), all
}

// TestCoalesceOrderConcurrentWriters checks over TCP that every Write
// arrives whole and each writer's Writes arrive in order.
func TestCoalesceOrderConcurrentWriters(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	const writers, perWriter, recLen = 16, 500, 64
	got := make(chan []byte, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer s.Close()
		b, _ := io.ReadAll(s)
		got <- b
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := newCoalescedConn(raw)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rec := make([]byte, recLen)
			for i := range perWriter {
				// Each record: writer, sequence, then filler derived from both.
				binary.BigEndian.PutUint32(rec[0:], uint32(w))
				binary.BigEndian.PutUint32(rec[4:], uint32(i))
				for j := 8; j < recLen; j++ {
					rec[j] = byte(w + i + j)
				}
				if _, err := c.Write(rec); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	b := <-got
	if len(b) != writers*perWriter*recLen {
		t.Fatalf("received %d bytes, want %d", len(b), writers*perWriter*recLen)
	}
	next := make([]int, writers)
	for ; len(b) > 0; b = b[recLen:] {
		w, i := int(binary.BigEndian.Uint32(b)), int(binary.BigEndian.Uint32(b[4:]))
		if w >= writers || i != next[w] {
			t.Fatalf("record from writer %d seq %d; want seq %d", w, i, next[w])
		}
		for j := 8; j < recLen; j++ {
			if b[j] != byte(w+i+j) {
				t.Fatalf("writer %d seq %d: byte %d torn", w, i, j)
			}
		}
		next[w]++
	}
}

// TestCoalesceBatchesBehindSlowWrite: Writes made while the flusher is in
// a syscall go out together in the next one.
func TestCoalesceBatchesBehindSlowWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeConn()
		f.gate = make(chan struct{})
		c := newCoalescedConn(f)
		c.Write([]byte("a"))
		synctest.Wait() // the flusher is stuck writing "a"
		for _, s := range []string{"b", "c", "d"} {
			c.Write([]byte(s))
		}
		close(f.gate)
		c.Close()
		n, all := f.written()
		if n != 2 || string(all) != "abcd" {
			t.Errorf("got %d writes %q; want 2 writes %q", n, all, "abcd")
		}
	})
}

func TestCoalesceWriteErrorIsSticky(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeConn()
		boom := errors.New("boom")
		f.err = boom
		c := newCoalescedConn(f)
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatalf("first write: %v", err)
		}
		synctest.Wait()
		if _, err := c.Write([]byte("y")); !errors.Is(err, boom) {
			t.Errorf("write after failure: %v; want %v", err, boom)
		}
		// The reader must see the connection as broken.
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("read after write failure succeeded")
		}
		c.Close()
	})
}

func TestCoalesceCloseStopsFlusher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeConn()
		c := newCoalescedConn(f)
		c.Write([]byte("bye"))
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		busy := c.busy
		c.mu.Unlock()
		if busy {
			t.Fatal("flusher still running after Close")
		}
		if _, all := f.written(); string(all) != "bye" {
			t.Errorf("pending bytes lost on Close: %q", all)
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("write after Close: %v", err)
		}
		c.Close() // twice is harmless
	})
}

// TestCoalesceCloseStuckPeer: Close gives up on bytes a peer won't take.
func TestCoalesceCloseStuckPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeConn()
		f.gate = make(chan struct{}) // never opens
		c := newCoalescedConn(f)
		c.Write([]byte("stuck"))
		synctest.Wait()
		start := time.Now()
		c.Close()
		if d := time.Since(start); d > closeFlushTimeout {
			t.Errorf("Close took %v", d)
		}
	})
}

// TestCoalesceDeadline: a Write waiting for room gives up at the deadline
// with a timeout error, and a passed deadline fails a Write at once.
func TestCoalesceDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeConn()
		f.gate = make(chan struct{})
		c := newCoalescedConn(f)
		defer c.Close()
		c.Write(make([]byte, coalesceMax)) // the flusher takes it and blocks
		synctest.Wait()
		c.Write(make([]byte, coalesceMax)) // fills the buffer
		c.SetWriteDeadline(time.Now().Add(time.Second))
		start := time.Now()
		n, err := c.Write([]byte("x"))
		if !errors.Is(err, os.ErrDeadlineExceeded) || n != 0 {
			t.Errorf("blocked write = %d, %v; want timeout", n, err)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("error %v is not a net.Error timeout", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("timed out after %v, want 1s", d)
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("write past the deadline: %v", err)
		}
		// Clearing the deadline lets Writes through again.
		c.SetWriteDeadline(time.Time{})
		close(f.gate)
		if _, err := c.Write([]byte("x")); err != nil {
			t.Errorf("write after clearing the deadline: %v", err)
		}
	})
}

// TestCoalesceFlusherHonoursDeadline: bytes queued under a deadline fail
// the connection when the peer does not take them in time.
func TestCoalesceFlusherHonoursDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeConn()
		f.gate = make(chan struct{}) // never opens
		c := newCoalescedConn(f)
		defer c.Close()
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write([]byte("x"))
		c.SetWriteDeadline(time.Time{}) // as net/http does after each write
		time.Sleep(2 * time.Second)
		if _, err := c.Write([]byte("y")); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("write after the flusher timed out: %v", err)
		}
	})
}

// TestCoalesceTimeoutFlusher: with CoalesceTimeout and no deadline set,
// bytes the peer does not take fail the connection after the timeout.
func TestCoalesceTimeoutFlusher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeConn()
		f.gate = make(chan struct{}) // never opens
		c := CoalesceTimeout(f, time.Second)
		defer c.Close()
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		if _, err := c.Write([]byte("y")); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("write after the flusher timed out: %v", err)
		}
	})
}

// TestCoalesceTimeoutWaitForRoom: with CoalesceTimeout and no deadline
// set, a Write waiting for room gives up after the timeout.
func TestCoalesceTimeoutWaitForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeConn()
		f.gate = make(chan struct{}) // never opens
		f.ignoreDL = true            // the flusher stays stuck
		c := CoalesceTimeout(f, time.Second)
		defer func() {
			close(f.gate)
			c.Close()
		}()
		c.Write(make([]byte, coalesceMax)) // the flusher takes it and blocks
		synctest.Wait()
		c.Write(make([]byte, coalesceMax)) // fills the buffer
		start := time.Now()
		n, err := c.Write([]byte("x"))
		var ne net.Error
		if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("blocked write = %d, %v; want a timeout", n, err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("timed out after %v, want 1s", d)
		}
	})
}

// TestCoalesceTimeoutMovesDeadlineRarely: the socket's deadline is moved
// only when less than 7/8 of the timeout is left, not on every flush.
func TestCoalesceTimeoutMovesDeadlineRarely(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeConn()
		c := CoalesceTimeout(f, 8*time.Second)
		defer c.Close()
		t0 := time.Now()
		sets := func() (int, time.Time) {
			synctest.Wait() // the flusher is done
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.dlSets, f.deadline
		}
		c.Write([]byte("a"))
		if n, dl := sets(); n != 1 || !dl.Equal(t0.Add(8*time.Second)) {
			t.Fatalf("after the first flush: %d deadlines set, last %v; want 1, t0+8s", n, dl.Sub(t0))
		}
		time.Sleep(500 * time.Millisecond)
		c.Write([]byte("b"))
		if n, _ := sets(); n != 1 {
			t.Errorf("7.5s left: %d deadlines set, want it kept", n)
		}
		time.Sleep(time.Second)
		c.Write([]byte("c"))
		if n, dl := sets(); n != 2 || !dl.Equal(t0.Add(9500*time.Millisecond)) {
			t.Errorf("6.5s left: %d deadlines set, last t0+%v; want 2, t0+9.5s", n, dl.Sub(t0))
		}
		if _, all := f.written(); string(all) != "abc" {
			t.Errorf("written %q", all)
		}
	})
}
