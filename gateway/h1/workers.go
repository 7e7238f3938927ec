package h1

import (
	"sync"
	"sync/atomic"
)

// maxIdleWorkers bounds the workers kept parked between requests: under a
// steady load about as many park as are taken, and this caps what a burst
// of requests leaves behind, each with its stack (halved at each GC while
// parked). It is above the thousands of requests a few thousand
// keep-alive clients keep in flight: with 2,000 of them, a cap of 1,024
// started a new goroutine (whose stack grows again, by copying) for most
// requests beyond the thousandth (BENCHMARKS.md, seventeenth session).
const maxIdleWorkers = 4096

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
}

// run has a worker serve cc's requests: a parked one, or a new one.
func (p *workers) run(cc *conn) {
	p.mu.Lock()
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
// or ends, then parks until run gives it another, or close stops it.
func (p *workers) work(cc *conn) {
	var ch chan *conn
	for cc != nil {
		cc.run()
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

// close ends the parked workers and those that park from now on.
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
