package upstream

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// waiter is one request parked in a backend's queue. Waiters are pooled
// (queue.get, queue.put): a queued request allocates nothing.
type waiter struct {
	// ch gets one token when the waiter leaves the queue by another's
	// hand (wake, expire or closeAll), with its outcome in c and err. It
	// has room for that token, so sending never blocks.
	ch chan struct{}
	// q is the waiter's queue, for its context watcher (waitWatch).
	q *queue

	// What the slot is for, read by the queue's take function.
	st    *backendState
	avoid *Server
	// unchecked: an HTTP/1.1 slot may skip its connection's liveness
	// peek (see Backend.acquire).
	unchecked bool
	// early, when not nil, is the request the slot is for, which the
	// queue's send function may write on the slot's connection before the
	// waiter wakes (a request without a body; info is its RequestInfo).
	early *http.Request
	info  *RequestInfo

	// deadline is when the waiter gives up with timeoutErr
	// (ErrQueueTimeout or ErrTotalTimeout).
	deadline   time.Time
	timeoutErr error

	// Guarded by queue.mu: the links, whether the waiter is in the
	// queue, and the outcome, set before the token is sent. c is a slot
	// handed over; err ends the wait; neither means "capacity may be
	// there but the queue could not take it for you: try yourself"
	// (a connection may be opened, or no server is in rotation).
	// gen counts the waiter's times in the queue. trying: it is back at
	// the head while it tries for itself (requeue), so it may get a slot
	// from the try as well as from the queue; the queue then must not
	// write its request (send), or the request would go out twice.
	prev, next *waiter
	queued     bool
	trying     bool
	gen        uint64
	c          *pconn
	err        error
}

// get takes a waiter from the queue's pool. The pool is the queue's own,
// not a global one, so that a waiter's channel stays with the backend
// (and, in tests, in the backend's synctest bubble).
func (q *queue) get() *waiter {
	if w, ok := q.waiters.Get().(*waiter); ok {
		return w
	}
	return &waiter{ch: make(chan struct{}, 1), q: q}
}

// errWaitGone is the outcome waitWatch gives a waiter whose client left.
var errWaitGone = errors.New("upstream: client left the queue")

// waitWatch is a waiter as the watcher of its client's context, when
// that context tells of its end by a callback (Backend.await).
type waitWatch waiter

// ContextEnded ends the wait of a waiter still queued with errWaitGone,
// under the queue's lock, so the token is sent once: a waiter already out
// of the queue has its token (a slot, present or presended, a timeout),
// which await handles as before; the client's absence is then seen by
// the caller.
func (ww *waitWatch) ContextEnded() {
	w := (*waiter)(ww)
	q := w.q
	q.mu.Lock()
	if w.queued {
		q.signalLocked(w, nil, errWaitGone)
	}
	q.mu.Unlock()
}

// put recycles w; its token, if any, has been received. queued and gen
// are left alone: a wake that took w's wants before w left the queue
// reads them, under mu, to see that it left (queued is false already,
// and only linkLocked and unlinkLocked, under mu, write them).
func (q *queue) put(w *waiter) {
	w.st, w.avoid, w.unchecked, w.early, w.info = nil, nil, false, nil, nil
	w.deadline, w.timeoutErr = time.Time{}, nil
	w.prev, w.next, w.c, w.err = nil, nil, nil, nil
	q.waiters.Put(w)
}

// takeFunc tries to reserve a slot for a waiter of st avoiding avoid
// (unchecked: see waiter.unchecked), without blocking and without
// dialling. It returns the slot, or nil with look set when the waiter
// should try for itself (see waiter.err).
type takeFunc func(st *backendState, avoid *Server, unchecked bool) (c *pconn, look bool)

// queue is a bounded FIFO of requests waiting for any connection slot of a
// backend. A freed slot is handed straight to the head waiter (wake): the
// waiter wakes up with its slot, and nobody else wakes. A waiter with an
// early request (a request without a body, see send) has it written on
// the slot's connection by the goroutine that hands the slot over, before
// the waiter runs: a server that has just answered on that connection
// finds the next request as it looks for one. Queue deadlines are
// enforced by one timer for the whole queue, armed for the earliest.
type queue struct {
	max atomic.Int64 // changes on reload

	// take is the backend's reservation for a waiter (Backend.takeFor),
	// set once before use. It is called without mu held.
	take takeFunc
	// send, when set, writes a waiter's early request on the slot handed
	// to it (Backend.presend), without mu held, before the waiter wakes.
	send func(c *pconn, req *http.Request, info *RequestInfo)

	mu         sync.Mutex // guards the fields below and the waiters' queue fields
	head, tail *waiter
	closed     bool // closeAll ran: no more waiters
	// waking is set while one goroutine runs wake's loop; again asks it
	// for one more round (capacity changed meanwhile). Only one hands out
	// slots at a time, so a burst of completions folds into one loop.
	waking, again bool
	// timer fires expire at timerAt, the earliest deadline when it was
	// armed (zero: not armed). Deadlines nearly always grow along the
	// queue, so enqueue rarely moves it.
	timer   *time.Timer
	timerAt time.Time

	waiters sync.Pool // of *waiter

	// n counts queued waiters; read without mu so the hot path can see an
	// empty queue without locking.
	n atomic.Int64
}

// enqueue adds w at the tail. It fails with ErrQueueFull when the queue is
// full and ErrClosed after closeAll; head reports that w is first in line,
// in which case the caller runs wake: a slot may have freed just before.
func (q *queue) enqueue(w *waiter) (head bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.closed:
		return false, ErrClosed
	case q.n.Load() >= q.max.Load():
		return false, ErrQueueFull
	}
	q.linkLocked(w, false)
	if q.timerAt.IsZero() || w.deadline.Before(q.timerAt) {
		q.armLocked(w.deadline)
	}
	return q.head == w, nil
}

// requeue puts a woken waiter back at the head: it keeps its place in line.
// It reports false after closeAll.
func (q *queue) requeue(w *waiter) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	if !w.queued {
		q.linkLocked(w, true)
		if q.timerAt.IsZero() || w.deadline.Before(q.timerAt) {
			q.armLocked(w.deadline)
		}
	}
	return true
}

// linkLocked puts w at the head (front) or the tail of the queue.
func (q *queue) linkLocked(w *waiter, front bool) {
	w.queued, w.trying = true, front
	w.gen++
	w.c, w.err = nil, nil
	w.prev, w.next = nil, nil
	switch {
	case q.head == nil:
		q.head, q.tail = w, w
	case front:
		w.next, q.head.prev = q.head, w
		q.head = w
	default:
		w.prev, q.tail.next = q.tail, w
		q.tail = w
	}
	q.n.Add(1)
}

func (q *queue) unlinkLocked(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.prev, w.next = nil, nil
	w.queued = false
	q.n.Add(-1)
}

// signalLocked takes w out of the queue with its outcome.
func (q *queue) signalLocked(w *waiter, c *pconn, err error) {
	q.unlinkLocked(w)
	w.c, w.err = c, err
	w.ch <- struct{}{}
}

// remove takes w out of the queue. It reports false if w had already left
// it by another's hand: its token is then in w.ch (see leave).
func (q *queue) remove(w *waiter) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if w.queued {
		q.unlinkLocked(w)
		return true
	}
	return false
}

// wake hands free slots to waiters, head first, until a waiter finds none.
// Every place where capacity may have appeared calls it (a slot given back,
// a connection opened, a server back in rotation); it is cheap when
// nobody waits. A call while another goroutine runs the loop makes that
// one go round again instead.
func (q *queue) wake() {
	if q.n.Load() == 0 {
		return
	}
	q.mu.Lock()
	if q.waking {
		q.again = true
		q.mu.Unlock()
		return
	}
	q.waking = true
	for q.head != nil {
		q.again = false
		// What w wants is read under mu: once mu is released w may
		// leave, and its struct be recycled for another request (gen).
		w := q.head
		st, avoid, unchecked, gen := w.st, w.avoid, w.unchecked, w.gen
		q.mu.Unlock()
		c, look := q.take(st, avoid, unchecked)
		q.mu.Lock()
		here := w.queued && w.gen == gen
		switch {
		case c == nil && look:
			if !here {
				continue
			}
			// One waiter at a time tries for itself (it may dial); it
			// wakes the queue again once it has a slot or an error.
			q.signalLocked(w, nil, nil)
		case c == nil:
			if q.again {
				continue
			}
		case here && w.early != nil && q.send != nil && !w.trying:
			// The waiter's request goes out now, from the goroutine
			// that freed the slot, rather than once the waiter runs.
			// Out of the queue, w can no longer time out or be removed;
			// its token follows the write.
			q.unlinkLocked(w)
			w.c = c
			req, info := w.early, w.info
			q.mu.Unlock()
			q.send(c, req, info)
			w.ch <- struct{}{}
			q.mu.Lock()
			continue
		case here:
			q.signalLocked(w, c, nil)
			continue
		default:
			// w left (timed out, or its client went) while the slot was
			// taken for it: give the slot back, which wakes the queue
			// again, folded into this loop.
			q.again = true
			q.mu.Unlock()
			c.release()
			q.mu.Lock()
			continue
		}
		break
	}
	q.waking = false
	q.mu.Unlock()
}

// armLocked sets the timer to fire at t.
func (q *queue) armLocked(t time.Time) {
	q.timerAt = t
	if q.timer == nil {
		q.timer = time.AfterFunc(time.Until(t), q.expire)
		return
	}
	q.timer.Reset(time.Until(t))
}

// expire ends the wait of every waiter whose deadline has passed, and arms
// the timer for the earliest deadline left. The walk is over the whole
// queue (a retried request may carry an earlier total deadline than those
// ahead of it), but the timer fires about once per queue timeout when the
// waiters it was armed for got their slots first.
func (q *queue) expire() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.timerAt = time.Time{}
	now := time.Now()
	var next time.Time
	for w := q.head; w != nil; {
		nx := w.next
		if !w.deadline.After(now) {
			q.signalLocked(w, nil, w.timeoutErr)
		} else if next.IsZero() || w.deadline.Before(next) {
			next = w.deadline
		}
		w = nx
	}
	if !next.IsZero() && !q.closed {
		q.armLocked(next)
	}
}

// closeAll ends every wait with ErrClosed and refuses new waiters, for
// shutdown.
func (q *queue) closeAll() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	for q.head != nil {
		q.signalLocked(q.head, nil, ErrClosed)
	}
	if q.timer != nil {
		q.timer.Stop()
		q.timerAt = time.Time{}
	}
}

func (q *queue) len() int { return int(q.n.Load()) }
