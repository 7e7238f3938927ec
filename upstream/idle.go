package upstream

// The HTTP/1.1 pool's books (pools with cfg.mru): where each connection
// stands, the idle connections as a stack, most recently used on top, and
// the counts the caps read. Acquisition pops the top in O(1), the reaper
// takes from the bottom, and nothing scans the connections on the request
// path. A connection enters the stack when the pool opens it or when its
// request is done (pconn.done, pconn.release), and leaves it when it is
// taken, closed, retired or reaped; the state hook only reports closes and
// the end of a settling interval (h1Settling): a connection whose request
// is done by the pool's account while its client still counts it in use.
// h1compat/client ends an exchange before the pool's done runs, except
// when a response body is closed while a Read of it is in progress on
// another goroutine (it then closes the connection, which the hook
// reports); a clientConn that makes a finished connection available later
// (net/http's ClientConn, the tests' fakes) settles for longer. All of it
// is guarded by pool.mu, which the HTTP/1.1 state hook takes: no method of
// an HTTP/1.1 connection that may run the hook (Reserve, Release, Close,
// RoundTrip) is called with pool.mu held.

import "time"

// h1State is where an HTTP/1.1 connection stands in its pool's books.
type h1State uint8

const (
	// h1Out: not counted: not yet added, being closed, or gone.
	h1Out h1State = iota
	// h1Idle: on the idle stack, free for the next request.
	h1Idle
	// h1Held: taken by a request (or a health check) until done or release.
	h1Held
	// h1Settling: done, but not yet available by its client's account (or
	// closing); its state hook moves it on.
	h1Settling
	// h1Retired: its keep-alive ended under the request it still carries;
	// closed when that is done.
	h1Retired
)

// idleList is a stack of idle connections linked through the connections
// themselves: top is the most recently used, bottom the least.
type idleList struct {
	top, bottom *pconn
	n           int
}

// push puts c on top.
func (l *idleList) push(c *pconn) {
	c.idleBelow, c.idleAbove = l.top, nil
	if l.top != nil {
		l.top.idleAbove = c
	} else {
		l.bottom = c
	}
	l.top = c
	l.n++
}

// remove takes c, which is on the list, off it.
func (l *idleList) remove(c *pconn) {
	if c.idleAbove != nil {
		c.idleAbove.idleBelow = c.idleBelow
	} else {
		l.top = c.idleBelow
	}
	if c.idleBelow != nil {
		c.idleBelow.idleAbove = c.idleAbove
	} else {
		l.bottom = c.idleAbove
	}
	c.idleAbove, c.idleBelow = nil, nil
	l.n--
}

// setH1Locked moves c to state st, keeping the idle stack and the counts
// in step. Entering h1Idle puts c on top and stamps lastIdle.
func (p *pool) setH1Locked(c *pconn, st h1State) {
	switch c.h1 {
	case h1Idle:
		p.idle.remove(c)
		p.h1Active--
	case h1Held, h1Settling:
		p.h1Active--
	case h1Retired:
		p.h1Retired--
	}
	c.h1 = st
	switch st {
	case h1Idle:
		c.lastIdle.Store(time.Now().UnixNano())
		p.idle.push(c)
		p.h1Active++
	case h1Held, h1Settling:
		p.h1Active++
	case h1Retired:
		p.h1Retired++
	}
}

// canGrowH1Locked is canGrowLocked from the counts: connections retired
// under their last request do not count against maxConns, all together
// stay below twice the cap, and a retired connection whose request is
// done is closing and counts in neither.
func (p *pool) canGrowH1Locked(maxConns int) bool {
	return p.h1Active+p.dialing < maxConns && p.h1Active+p.h1Retired+p.dialing < 2*maxConns
}

// tryAcquireIdle takes the most recently used idle connection, reserved
// without its liveness peek when unchecked.
func (p *pool) tryAcquireIdle(unchecked bool) *pconn {
	for {
		p.mu.Lock()
		c := p.idle.top
		if c == nil || p.closed || p.draining.Load() {
			p.mu.Unlock()
			return nil
		}
		p.setH1Locked(c, h1Held)
		p.mu.Unlock()
		if reserve(c.cc, unchecked) == nil {
			p.inflight.Add(1)
			return c
		}
		// Closed under us (its state hook drops it), or not yet available
		// again by its client's account: its state hook brings it back.
		p.mu.Lock()
		if c.h1 == h1Held {
			if c.cc.Err() != nil {
				p.forgetLocked(c)
			} else {
				p.setH1Locked(c, h1Settling)
			}
		}
		p.mu.Unlock()
	}
}

// h1Done puts c back after its request (or health check): on the idle
// stack, or closed if it is retired or the pool drains. It wakes the queue
// only when a connection became free or a slot to open one did.
func (p *pool) h1Done(c *pconn) {
	var closeIt, wake bool
	p.mu.Lock()
	if c.h1 == h1Held || c.h1 == h1Retired {
		switch {
		case c.cc.Err() != nil:
			wake = p.forgetLocked(c)
		case c.goingAway.Load() || p.draining.Load():
			p.setH1Locked(c, h1Out)
			closeIt = true
		case c.cc.InFlight() == 0:
			p.setH1Locked(c, h1Idle)
			wake = true
		default:
			p.setH1Locked(c, h1Settling)
		}
	}
	p.mu.Unlock()
	p.settled(c, closeIt, wake)
}

// h1StateChanged is the HTTP/1.1 state hook: a closed connection leaves
// the books, and a settling one that its client made available again goes
// on the idle stack. Other changes (a request starting or finishing on a
// connection a request holds) need no wake-up.
func (p *pool) h1StateChanged(c *pconn) {
	var closeIt, wake bool
	p.mu.Lock()
	switch {
	case c.cc.Err() != nil:
		wake = p.forgetLocked(c)
	case c.h1 == h1Settling && c.cc.InFlight() == 0:
		if p.draining.Load() {
			p.setH1Locked(c, h1Out)
			closeIt = true
		} else {
			p.setH1Locked(c, h1Idle)
			wake = true
		}
	}
	p.mu.Unlock()
	p.settled(c, closeIt, wake)
}

// h1Retire takes a retired connection out of the books' active count: one
// still carrying its request is closed by h1Done, one without is closed
// now.
func (p *pool) h1Retire(c *pconn) {
	closeIt := false
	p.mu.Lock()
	switch c.h1 {
	case h1Held:
		p.setH1Locked(c, h1Retired)
	case h1Idle, h1Settling:
		p.setH1Locked(c, h1Out)
		closeIt = true
	}
	p.mu.Unlock()
	if closeIt {
		c.cc.Close()
		p.forget(c)
	}
}

// settled acts, outside p.mu, on what a state change decided: close c
// (which frees its place) and wake the queue if a place or a connection
// became free.
func (p *pool) settled(c *pconn, closeIt, wake bool) {
	if closeIt {
		c.cc.Close()
		wake = p.forget(c)
	}
	if wake {
		p.cfg.onChange()
	}
}

// forget drops c, closed or closing, from the pool, reporting whether it
// was still there.
func (p *pool) forget(c *pconn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.forgetLocked(c)
}

func (p *pool) forgetLocked(c *pconn) bool {
	for i, o := range p.conns {
		if o == c {
			p.removeLocked(i)
			return true
		}
	}
	p.setH1Locked(c, h1Out)
	return false
}

// takeIdleLocked takes off the stack, for closing, the idle connections
// last used at or before cutoff (UnixNano), least recently used first,
// and, with all set, every settling connection its client has made
// available.
func (p *pool) takeIdleLocked(cutoff int64, all bool) []*pconn {
	var out []*pconn
	for c := p.idle.bottom; c != nil && c.lastIdle.Load() <= cutoff; c = p.idle.bottom {
		p.setH1Locked(c, h1Out)
		out = append(out, c)
	}
	if all {
		for _, c := range p.conns {
			if c.h1 == h1Settling && c.cc.InFlight() == 0 {
				p.setH1Locked(c, h1Out)
				out = append(out, c)
			}
		}
	}
	return out
}

// uncheckedReserver is an HTTP/1.1 connection that can be reserved
// without its liveness peek (h1compat/client.Conn).
type uncheckedReserver interface{ ReserveUnchecked() error }

// reserve reserves cc, without the liveness peek when unchecked and cc
// can.
func reserve(cc clientConn, unchecked bool) error {
	if u, ok := cc.(uncheckedReserver); ok && unchecked {
		return u.ReserveUnchecked()
	}
	return cc.Reserve()
}

// idleChecker is an HTTP/1.1 connection that can tell, without blocking,
// that the server closed it while it idled (h1compat/client.Conn), and
// then closes itself, which its state hook reports.
type idleChecker interface{ CheckIdle() error }

// checkIdle has the idle connections check whether the server closed
// them, so that such a connection leaves the books and its socket closes
// within a reaper tick rather than when a request next finds it. No
// goroutine waits on an idle connection to notice it sooner. Called
// without p.mu: the checks run the state hook, which takes it.
func (p *pool) checkIdle() {
	p.mu.Lock()
	var idle []idleChecker
	for c := p.idle.top; c != nil; c = c.idleBelow {
		if ic, ok := c.cc.(idleChecker); ok {
			idle = append(idle, ic)
		}
	}
	p.mu.Unlock()
	for _, ic := range idle {
		ic.CheckIdle()
	}
}

// settleLocked puts on the idle stack the settling connections their
// client has made available without a state hook call reaching the pool
// (the hook does not report a change that came and went while it ran). The
// reaper calls it on every tick.
func (p *pool) settleLocked() bool {
	woke := false
	for _, c := range p.conns {
		if c.h1 == h1Settling && c.cc.Err() == nil && c.cc.InFlight() == 0 {
			p.setH1Locked(c, h1Idle)
			woke = true
		}
	}
	return woke
}
