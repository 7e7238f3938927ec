package upstream

import (
	"sync"
	"sync/atomic"
)

// waiter is one request parked in a backend's queue.
type waiter struct {
	// ch gets one token when the waiter is popped: capacity may be free.
	ch         chan struct{}
	prev, next *waiter
	queued     bool // guarded by queue.mu
}

// queue is a bounded FIFO of requests waiting for any connection slot of a
// backend. Waking pops the head, so each freed slot wakes one request.
type queue struct {
	max atomic.Int64 // changes on reload

	mu         sync.Mutex // guards head, tail, waiter.queued and links
	head, tail *waiter

	// n counts queued waiters; read without mu so the hot path can see an
	// empty queue without locking.
	n atomic.Int64
}

// enqueue adds w at the tail, or reports false if the queue is full.
func (q *queue) enqueue(w *waiter) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n.Load() >= q.max.Load() {
		return false
	}
	q.linkLocked(w, false)
	return true
}

// requeue puts a woken waiter back at the head: it keeps its place in line.
func (q *queue) requeue(w *waiter) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !w.queued {
		q.linkLocked(w, true)
	}
}

// linkLocked puts w at the head (front) or the tail of the queue.
func (q *queue) linkLocked(w *waiter, front bool) {
	w.queued = true
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

// remove takes w out of the queue. It reports whether w had already been
// popped by wake, in which case w owns a wake-up it must use or pass on.
func (q *queue) remove(w *waiter) (woken bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if w.queued {
		q.unlinkLocked(w)
		return false
	}
	return true
}

// wake pops the head waiter and signals it. Cheap when nobody waits.
func (q *queue) wake() {
	if q.n.Load() == 0 {
		return
	}
	q.mu.Lock()
	w := q.head
	if w != nil {
		q.unlinkLocked(w)
	}
	q.mu.Unlock()
	if w != nil {
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
}

// wakeAll signals every waiter, for shutdown.
func (q *queue) wakeAll() {
	q.mu.Lock()
	var ws []*waiter
	for w := q.head; w != nil; w = q.head {
		q.unlinkLocked(w)
		ws = append(ws, w)
	}
	q.mu.Unlock()
	for _, w := range ws {
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
}

func (q *queue) len() int { return int(q.n.Load()) }
