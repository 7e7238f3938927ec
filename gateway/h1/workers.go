package h1

import (
	"sync"
	"sync/atomic"
	"time"
)

// maxIdleWorkers bounds the workers kept parked between requests: under a
// steady load about as many park as are taken, and this caps what a burst
// of requests leaves behind, each with its stack (halved at each GC while
// parked). It is above the thousands of requests a few thousand
// keep-alive clients keep in flight: with 2,000 of them, a cap of 1,024
// started a new goroutine (whose stack grows again, by copying) for most
// requests beyond the thousandth (BENCHMARKS.md, seventeenth session).
const maxIdleWorkers = 4096

// Admission. Under load most requests wait for a backend connection
// slot: with thousands of keep-alive clients and a few hundred slots,
// each waits in its backend's queue on a worker, with its stack, its
// parsed head and its proxy state, which it touches again cold when its
// turn comes; and the slot freed by one request is handed to the next
// through the queue, waking a goroutine for it. So no more requests run at
// once than the backends have slots (Server.AdmitLimit): the rest wait
// in pending, in arrival order, as the connection they came on (its read
// buffer and its watcher, which still watches for the client leaving).
// A worker whose request ends serves the first of them next, on the same
// stack, and that request finds the slot just freed (BENCHMARKS.md,
// eighteenth session).
//
// A request gives its place up early when it hijacks its connection (a
// tunnel). A place held longer than stealAfter (a long response, or a
// request waiting in a congested backend's queue) goes to the first
// waiting request, the older one running on without it. And a request
// that has waited maxWait goes in without a place: behind a congested
// backend's requests (the requests waiting may be for another backend),
// or under overload, where it then meets its backend's queue, whose
// bounds (queue.max_pending, queue.timeout) shed the load as before. So
// no request waits here longer than maxWait.
const (
	// minAdmitted is the least limit, whatever the backends report.
	minAdmitted = 16
	stealAfter  = time.Second
	maxWait     = 200 * time.Millisecond
	// limitEvery is how often the limit is asked again (servers come
	// and go with discovery and reloads); limitFull, how often while
	// every place is taken (at startup servers are found one by one,
	// and a limit asked before them would hold the first requests back).
	limitEvery = time.Second
	limitFull  = 10 * time.Millisecond
)

// workers are the goroutines that serve requests (conn.run). A request
// (the handler, the proxy, the upstream client) grows its goroutine's
// stack past what a new goroutine starts with (2 KiB, or the average the
// runtime saw at its last GC), and growing it means copying it, frame by
// frame: 6% of Sluice's CPU under load (BENCHMARKS.md, issue 12), when
// each request ran on the fresh goroutine of its connection's idle wait. A worker keeps
// its grown stack from one request to the next, of any connection; the
// idle connections wait on small goroutines of their own (conn.await),
// which hand each next request to a worker. The runtime halves a parked
// worker's stack at a GC when it uses little of it, so parked ones do not
// keep large stacks for long once the load is gone.
type workers struct {
	mu     sync.Mutex
	parked []chan *conn // guarded by mu; the most recently parked last, reused first (its stack is the likeliest grown)
	closed bool         // guarded by mu; the server is shutting down: no worker parks
	// started counts the worker goroutines started (for tests).
	started atomic.Int64

	// Admission, guarded by mu: the requests holding a place (their
	// connections, linked through conn.admit, oldest first) and their
	// count; the connections waiting for one, first come first; the
	// timer that hands a place held too long to the first of them; and
	// the limit, as last asked of limit (nil: no limit), and when.
	limit          func() int
	max            int
	maxAt          time.Time
	steal          time.Duration // stealAfter, or a test's
	wait           time.Duration // maxWait, or a test's
	held           int
	oldest, newest *conn
	first, last    *conn
	timer          *time.Timer
	timerOn        bool
	// waiting counts the connections in pending (Server.Waiting), read
	// without mu.
	waiting atomic.Int64
}

// admission is a connection's state in its server's admission, guarded
// by workers.mu.
type admission struct {
	holds      bool      // its request holds a place
	since      time.Time // when it took it
	prev, next *conn     // the holders' list
	pnext      *conn     // pending's list
	queued     time.Time // when it came to pending
	waits      bool      // it waited in pending; its state was made active then (queueLocked)
}

// limitLocked is the admission's limit (0: none), asked again of limit
// when the last answer is every or more old.
func (p *workers) limitLocked(now time.Time, every time.Duration) int {
	if p.limit == nil {
		return 0
	}
	if p.maxAt.IsZero() || now.Sub(p.maxAt) >= every {
		p.max, p.maxAt = max(p.limit(), minAdmitted), now
	}
	return p.max
}

// stealAge is stealAfter, or a test's.
func (p *workers) stealAge() time.Duration {
	if p.steal > 0 {
		return p.steal
	}
	return stealAfter
}

// waitMax is maxWait, or a test's.
func (p *workers) waitMax() time.Duration {
	if p.wait > 0 {
		return p.wait
	}
	return maxWait
}

// run has a worker serve cc's requests at once, outside the admission:
// the worker reads the head itself (its bytes are not all there), and a
// client sending it slowly (a slowloris) must hold no place meanwhile.
func (p *workers) run(cc *conn) {
	p.mu.Lock()
	p.dispatchLocked(cc)
}

// admit has a worker serve cc's request, read whole by its watcher, once
// it has a place in the admission: at once, or after the requests waiting
// before it.
func (p *workers) admit(cc *conn) {
	p.mu.Lock()
	if p.limit == nil {
		p.limit = cc.s.AdmitLimit
	}
	now := time.Now()
	if p.first == nil && p.admitLocked(cc, now) {
		p.dispatchLocked(cc)
		return
	}
	p.queueLocked(cc, now)
	ready := p.admitWaitingLocked(now, nil)
	p.mu.Unlock()
	p.dispatchAll(ready)
}

// admitLocked gives cc a place: a free one, or the oldest holder's when
// it has held it stealAfter or longer.
func (p *workers) admitLocked(cc *conn, now time.Time) bool {
	lim := p.limitLocked(now, limitEvery)
	if lim > 0 && p.held >= lim {
		lim = p.limitLocked(now, limitFull)
	}
	if lim == 0 {
		return true
	}
	if p.held >= lim {
		o := p.oldest
		if o == nil || now.Sub(o.admit.since) < p.stealAge() {
			return false
		}
		p.unlinkHolderLocked(o)
	}
	p.held++
	a := &cc.admit
	a.holds, a.since, a.prev, a.next = true, now, p.newest, nil
	if p.newest != nil {
		p.newest.admit.next = cc
	} else {
		p.oldest = cc
	}
	p.newest = cc
	return true
}

func (p *workers) unlinkHolderLocked(cc *conn) {
	a := &cc.admit
	if a.prev != nil {
		a.prev.admit.next = a.next
	} else {
		p.oldest = a.next
	}
	if a.next != nil {
		a.next.admit.prev = a.prev
	} else {
		p.newest = a.prev
	}
	a.holds, a.prev, a.next = false, nil, nil
	p.held--
}

// queueLocked puts cc at the end of pending. Its state becomes active
// now, so that a shutdown lets its request be served rather than closing
// the connection as idle (conn.run then skips moveTo).
func (p *workers) queueLocked(cc *conn, now time.Time) {
	cc.s.markWaiting(cc)
	cc.admit.waits = true
	cc.admit.queued = now
	cc.admit.pnext = nil
	if p.last != nil {
		p.last.admit.pnext = cc
	} else {
		p.first = cc
	}
	p.last = cc
	p.waiting.Add(1)
}

// admitWaitingLocked lets in the requests at the head of pending while
// there are places to give, and those that have waited maxWait without
// one, appending them to ready; if some are left waiting, the timer is
// armed for when the next may go in.
func (p *workers) admitWaitingLocked(now time.Time, ready []*conn) []*conn {
	wait := p.waitMax()
	for p.first != nil {
		cc := p.first
		if now.Sub(cc.admit.queued) < wait && !p.admitLocked(cc, now) {
			break
		}
		p.first = cc.admit.pnext
		if p.first == nil {
			p.last = nil
		}
		cc.admit.pnext = nil
		p.waiting.Add(-1)
		ready = append(ready, cc)
	}
	if p.first != nil && !p.timerOn {
		d := wait - now.Sub(p.first.admit.queued)
		if p.oldest != nil {
			d = min(d, p.stealAge()-now.Sub(p.oldest.admit.since))
		}
		p.timerOn = true
		if p.timer == nil {
			p.timer = time.AfterFunc(d, p.expire)
		} else {
			p.timer.Reset(d)
		}
	}
	return ready
}

// expire is the timer's: places held too long go to the requests waiting.
func (p *workers) expire() {
	p.mu.Lock()
	p.timerOn = false
	ready := p.admitWaitingLocked(time.Now(), nil)
	p.mu.Unlock()
	p.dispatchAll(ready)
}

// release gives up the place cc's request holds, if any, and lets the
// next waiting request in, on a worker of its own.
func (p *workers) release(cc *conn) {
	p.mu.Lock()
	if !cc.admit.holds {
		p.mu.Unlock()
		return
	}
	ready := p.leaveLocked(cc)
	p.mu.Unlock()
	p.dispatchAll(ready)
}

// leaveLocked gives up the place cc's request holds, if any, and returns
// the waiting requests that lets in.
func (p *workers) leaveLocked(cc *conn) []*conn {
	if cc.admit.holds {
		p.unlinkHolderLocked(cc)
	}
	return p.admitWaitingLocked(time.Now(), nil)
}

// leave gives up cc's place as its worker's run of it ends, or hands it
// to its watcher: a request let in by it is returned for this worker to
// serve next (any others go to workers of their own).
func (p *workers) leave(cc *conn) *conn {
	p.mu.Lock()
	if !cc.admit.holds && p.first == nil {
		p.mu.Unlock()
		return nil
	}
	ready := p.leaveLocked(cc)
	p.mu.Unlock()
	if len(ready) == 0 {
		return nil
	}
	p.dispatchAll(ready[1:])
	return ready[0]
}

// dispatch has a worker serve cc, which holds its place.
func (p *workers) dispatch(cc *conn) {
	p.mu.Lock()
	p.dispatchLocked(cc)
}

func (p *workers) dispatchAll(ccs []*conn) {
	for _, cc := range ccs {
		p.mu.Lock()
		p.dispatchLocked(cc)
	}
}

// dispatchLocked has a worker serve cc: a parked one, or a new one. Called
// with mu held; returns without it.
func (p *workers) dispatchLocked(cc *conn) {
	if n := len(p.parked); n > 0 {
		ch := p.parked[n-1]
		p.parked[n-1] = nil
		p.parked = p.parked[:n-1]
		p.mu.Unlock()
		ch <- cc // buffered, and empty while parked: never blocks
		return
	}
	p.mu.Unlock()
	p.started.Add(1)
	go p.work(cc)
}

// work is a worker: it serves a connection until the connection goes idle
// or ends, then the next request let in, if any, else parks until run
// gives it another, or close stops it.
func (p *workers) work(cc *conn) {
	var ch chan *conn
	for cc != nil {
		if next := cc.run(); next != nil {
			cc = next
			continue
		}
		if ch == nil {
			ch = make(chan *conn, 1)
		}
		if !p.park(ch) {
			return
		}
		cc = <-ch
	}
}

// park files ch as a parked worker's; false means the worker must end
// instead: the server is closing or enough are parked.
func (p *workers) park(ch chan *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.parked) >= maxIdleWorkers {
		return false
	}
	p.parked = append(p.parked, ch)
	return true
}

// close ends the parked workers and those that park from now on. Requests
// waiting for a place are still served: the workers serving the holders
// let them in as they finish.
func (p *workers) close() {
	p.mu.Lock()
	p.closed = true
	parked := p.parked
	p.parked = nil
	p.mu.Unlock()
	for _, ch := range parked {
		ch <- nil
	}
}
