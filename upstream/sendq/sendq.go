package sendq

import (
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
)

// MaxHead is the largest head a queue takes: it fits an empty socket send
// buffer (net.ipv4.tcp_wmem's 4 KiB minimum), so a non-blocking send of
// it to an idle connection is whole unless the connection is broken.
const MaxHead = 4 << 10

// Errors a settled job reports.
var (
	// ErrNotSent: the job was settled before the queue took it, or the
	// queue closed with it queued. Nothing was written.
	ErrNotSent = errors.New("sendq: request head not sent")
	// ErrShort: the socket's send buffer took only part of the head
	// (n bytes), which on an idle connection means the server stopped
	// reading. The socket was shut down.
	ErrShort = errors.New("sendq: request head sent in part: the server is not reading")
)

// A job's states. queued -> taken -> sent | failed is the queue's path;
// queued -> cancelled is Settle's, when it comes first.
const (
	idle uint32 = iota
	queued
	taken
	sent
	failed
	cancelled
)

// Job is one head to write. A connection keeps one and reuses it: it has
// at most one request in flight. The zero Job is ready to use.
type Job struct {
	state atomic.Uint32
	// Set by Send before it stores queued; read by the queue's goroutine
	// after its CompareAndSwap from queued (a job settled unsent may still
	// sit in the channel when its next Send comes: the state, not the
	// channel, says which Send the goroutine takes). rc is nc's socket,
	// kept from one Send to the next for the same nc (a connection keeps
	// its job).
	nc net.Conn
	rc syscall.RawConn
	p  []byte
	// The outcome, written by the queue's goroutine before it stores sent
	// or failed, read by Settle after it loads one of them.
	n   int
	err error
}

// Queue is one writer goroutine and the jobs waiting for it.
type Queue struct {
	ch   chan *Job
	stop chan struct{}
	done chan struct{}
	once sync.Once
	// written counts the heads the goroutine wrote whole (Written).
	written atomic.Uint64
}

// Written is how many heads the queue has written whole.
func (q *Queue) Written() uint64 {
	if q == nil {
		return 0
	}
	return q.written.Load()
}

// New starts a queue of at most size jobs waiting. It returns nil where
// sockets cannot be written without waiting (not Linux); Send on a nil
// queue reports false.
func New(size int) *Queue {
	if !supported {
		return nil
	}
	q := &Queue{ch: make(chan *Job, size), stop: make(chan struct{}), done: make(chan struct{})}
	go q.run()
	return q
}

// Send queues j to write p, whole, to nc's socket. It reports false,
// keeping nothing, when p is too long, there is nothing to write, nc has
// no socket (syscall.Conn) or the queue is full or closed: the caller
// writes p itself. After true, p belongs to the queue until Settle
// returns.
func (q *Queue) Send(j *Job, nc net.Conn, p []byte) bool {
	if q == nil || nc == nil || len(p) == 0 || len(p) > MaxHead {
		return false
	}
	if j.nc != nc {
		j.nc, j.rc = nc, nil
		if sc, ok := nc.(syscall.Conn); ok {
			j.rc, _ = sc.SyscallConn()
		}
	}
	if j.rc == nil {
		return false
	}
	select {
	case <-q.stop:
		return false
	default:
	}
	j.p, j.n, j.err = p, 0, nil
	j.state.Store(queued)
	select {
	case q.ch <- j:
	default:
		// Full. The goroutine may yet take j through an entry its last
		// Send left in the channel (settled unsent before the goroutine
		// came to it): then j is queued after all.
		if j.state.CompareAndSwap(queued, idle) {
			j.p = nil
			return false
		}
	}
	select {
	case <-q.stop:
		// Closed meanwhile: the goroutine may have drained the channel
		// before j came. Unless it took j (and failed it), j is the
		// caller's again.
		if j.state.CompareAndSwap(queued, idle) {
			j.p = nil
			return false
		}
	default:
	}
	return true
}

// Settle ends j's time in the queue: after it returns, the queue no longer
// touches j, its head or its socket. It reports how many bytes of the
// head were written and why not all of them: nil when they all were;
// ErrNotSent, with n 0, when the queue had not taken the job (it never
// will); ErrShort or the send's error otherwise (the socket was then shut
// down). It waits, without blocking, only while the queue is in the job's
// one send(2).
//
// ErrNotSent with the socket shut down (the queue closed with the job
// queued) and ErrNotSent without (settled first) both mean nothing left.
func (j *Job) Settle() (n int, err error) {
	for {
		switch st := j.state.Load(); st {
		case queued:
			if j.state.CompareAndSwap(queued, cancelled) {
				j.p = nil
				j.state.Store(idle)
				return 0, ErrNotSent
			}
		case taken:
			runtime.Gosched()
		case sent, failed:
			n, err = j.n, j.err
			j.p, j.err = nil, nil
			j.state.Store(idle)
			return n, err
		default:
			// idle: nothing queued (Send refused it, or settled already).
			return 0, ErrNotSent
		}
	}
}

// Close stops the queue's goroutine and waits for it. The jobs still
// queued fail as not sent (ErrNotSent), their sockets shut down; later
// Sends report false. A nil queue's Close does nothing.
func (q *Queue) Close() {
	if q == nil {
		return
	}
	q.once.Do(func() { close(q.stop) })
	<-q.done
}

// run is the queue's goroutine: the jobs in the order they came, those
// queued while it yielded after the first of a batch written together.
func (q *Queue) run() {
	defer close(q.done)
	for {
		select {
		case <-q.stop:
			q.failQueued()
			return
		default:
		}
		select {
		case j := <-q.ch:
			// Let the goroutines already runnable go first: under load
			// they are requests about to queue their heads too, and the
			// heads then go out together (what the queue is for).
			runtime.Gosched()
			q.write(j)
			q.drain()
		case <-q.stop:
			q.failQueued()
			return
		}
	}
}

// drain writes the jobs queued now, without waiting for more.
func (q *Queue) drain() {
	for {
		select {
		case j := <-q.ch:
			q.write(j)
		default:
			return
		}
	}
}

// failQueued fails the jobs queued when the queue stops as not sent, their
// sockets shut down so that their owners' reads of the answer end.
func (q *Queue) failQueued() {
	for {
		select {
		case j := <-q.ch:
			if j.state.CompareAndSwap(queued, taken) {
				j.n, j.err = 0, ErrNotSent
				shutdown(j.rc)
				j.state.Store(failed)
			}
		default:
			return
		}
	}
}

// write takes j unless its owner settled it first, and sends its head.
func (q *Queue) write(j *Job) {
	if !j.state.CompareAndSwap(queued, taken) {
		return
	}
	n, err := trySend(j.nc, j.rc, j.p)
	j.n, j.err = n, err
	if err != nil {
		shutdown(j.rc)
		j.state.Store(failed)
		return
	}
	q.written.Add(1)
	j.state.Store(sent)
}
