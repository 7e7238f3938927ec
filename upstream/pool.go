package upstream

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/sluice-gw/sluice/h2c/client"
)

// clientConn is one upstream connection as the pool uses it: Sluice's h2c
// client (h2c/client.Conn) or its HTTP/1.1 one (h1compat/client.Conn).
type clientConn interface {
	http.RoundTripper
	// Reserve takes a slot for one later RoundTrip; each success is
	// followed by exactly one RoundTrip or Release.
	Reserve() error
	Release()
	Available() int
	InFlight() int
	Err() error
	Close() error
}

// dialFunc opens one new upstream connection for c. The h2c/client and
// h1compat/client packages provide the real ones; an h2c dial reports the
// server's GOAWAY through c.goneAway. watch registers f to run on each of
// the connection's state changes (each connection type's SetStateHook,
// whose signatures differ); the pool calls it once the connection is in.
type dialFunc func(ctx context.Context, c *pconn) (cc clientConn, watch func(f func()), err error)

// poolConfig is what a pool needs to know about its server and protocol.
type poolConfig struct {
	// server is the server the pool belongs to, which requests reach
	// through the connection they acquired (pconn.server); nil in tests
	// of the pool alone.
	server   *Server
	protocol string // "h2c" or "h1": metric label and log text
	addr     string
	dial     dialFunc
	// limits may change on a config reload without touching connections.
	limits poolLimits
	// mru picks the most recently used idle connection first (HTTP/1.1, so
	// that cold connections age out); otherwise the least loaded one (h2c).
	mru bool
	// onChange is called whenever capacity may have appeared or a connection
	// went away. It must not block and is called without p.mu held.
	onChange func()
	obs      poolObserver
	// log receives the servers' GOAWAYs (goaway.go); nil in tests of
	// the pool alone.
	log *slog.Logger
}

// poolLimits are the pool's tunables.
type poolLimits struct {
	// maxConns caps open plus dialing connections.
	maxConns int
	// maxStreams caps reserved plus in-flight requests per connection, on
	// top of whatever limit the server itself advertises.
	maxStreams int
	// connectTimeout bounds one dial; the dial is not tied to the request
	// that triggered it because the connection outlives that request.
	connectTimeout time.Duration
	// idleTimeout closes a connection that has carried no request for this
	// long. Zero keeps idle connections until the server closes them.
	idleTimeout time.Duration
}

// poolObserver receives connection lifecycle events for metrics.
type poolObserver interface {
	connOpened(protocol string)
	// connClosed reports a connection's end with the requests it was given
	// and how long it lived.
	connClosed(protocol string, requests uint64, lifetime time.Duration)
	// goAway reports a connection's first GOAWAY, with its error code.
	goAway(code http2.ErrCode)
	// keepAliveClosed reports an HTTP/1.1 connection the server ended by
	// its keep-alive limit (Connection: close, or Keep-Alive max <= 1).
	keepAliveClosed()
	// windowLeak reports an h2c connection retired because the server
	// kept the send window of ended streams (pconn.windowLeaked).
	windowLeak()
}

// pconn is one pooled connection.
type pconn struct {
	cc clientConn
	// lastIdle is when the connection last had no request in flight, in
	// UnixNano; written by the state hook, read under pool.mu.
	lastIdle atomic.Int64
	// gone is set once, when the pool has accounted for the connection's end.
	gone atomic.Bool
	// goingAway is set when the server sent GOAWAY, or ended an HTTP/1.1
	// connection's keep-alive: the connection takes no new requests,
	// finishes the ones it has, and no longer counts against maxConns, so
	// its replacement can open while it drains.
	goingAway atomic.Bool
	// leaked is set when the server kept the connection's send window
	// (windowLeaked): retired by Sluice, not the server, it is closed
	// here once its last request is done.
	leaked atomic.Bool
	// handedOn is set when the end of an answer on this HTTP/1.1
	// connection handed it to a queued request and wrote that request's
	// head (Backend.presend); the finished request's body.Close clears
	// it and yields (see yieldAfterHandOver).
	handedOn atomic.Bool
	pool     *pool
	// id names the connection in access logs, unique in the process.
	id uint64
	// dialStart is when the dial began. Unlike opened it is written
	// before the connection's reader goroutine starts, which reads it
	// when GOAWAY arrives (even during the dial).
	dialStart time.Time
	// opened is when the dial completed; reqs counts the client requests
	// sent on it (health checks not included). Both feed the reuse
	// histograms when it ends.
	opened time.Time
	reqs   atomic.Uint64
	// goAwayAt is when the server's first GOAWAY arrived (UnixNano, 0:
	// none), for the stats page (stats.go); set once, it also makes the
	// GOAWAY counted and logged once per connection.
	goAwayAt atomic.Int64

	// HTTP/1.1 pools only (idle.go), guarded by pool.mu: where the
	// connection stands, and its neighbours on the idle stack.
	h1                   h1State
	idleAbove, idleBelow *pconn
}

// server is the server the connection goes to.
func (c *pconn) server() *Server { return c.pool.cfg.server }

// release gives back a slot tryAcquire reserved on c that no request used.
func (c *pconn) release() {
	c.cc.Release()
	c.done()
}

// done gives back the slot of a request that ran on c, once the request
// is over. An HTTP/1.1 connection goes back on its pool's idle stack; a
// retired one has carried its last request and is closed here: net/http
// counts a response that ended keep-alive as in flight until its reader
// goroutine closes the connection, which under load can come after the
// next connection's keep-alive ends too, and the 2x cap would then refuse
// that one's replacement dial.
func (c *pconn) done() {
	if c.pool.cfg.mru {
		c.pool.h1Done(c)
	}
	c.pool.done()
}

// markGone accounts for the connection's end, once.
func (c *pconn) markGone() {
	if c.gone.CompareAndSwap(false, true) {
		p := c.pool
		p.cfg.obs.connClosed(p.cfg.protocol, c.reqs.Load(), time.Since(c.opened))
	}
}

var connIDs atomic.Uint64

// goneAway runs on the connection's reader goroutine for each GOAWAY the
// server sends. Only the first is counted and logged: a graceful shutdown
// sends two, and one retirement is one event for operators.
func (c *pconn) goneAway(g client.GoAway) {
	now := time.Now()
	first := c.goAwayAt.CompareAndSwap(0, now.UnixNano())
	if s := c.server(); s != nil {
		s.goAwayAt.Store(now.UnixNano())
	}
	c.retire()
	if first {
		c.pool.cfg.obs.goAway(g.ErrCode)
		c.logGoAway(c.pool.cfg.log, g, now)
	}
}

// windowLeaked runs when the server has kept most of an h2c connection's
// send window for streams it ended (h2c/client's OnWindowLeak): request
// bodies sent on it would wait for credit that never comes, so it is
// retired like one after GOAWAY, and closed when it carries nothing.
func (c *pconn) windowLeaked(l client.WindowLeak) {
	c.leaked.Store(true)
	if c.retire() {
		p := c.pool
		p.cfg.obs.windowLeak()
		if log := p.cfg.log; log != nil {
			log.LogAttrs(context.Background(), slog.LevelWarn, "upstream server keeps the send window of ended streams; connection retired",
				slog.String("server", p.cfg.addr),
				slog.Int64("kept_bytes", l.Leaked),
				slog.Int64("window_granted", int64(l.Granted)),
				slog.Int64("window_left", int64(l.Window)),
				slog.Uint64("upstream_conn", c.id),
				slog.Uint64("requests", c.reqs.Load()),
				slog.String("hint", "Tomcat does this for request bodies a servlet never reads; see deploy/tomcat/README.md"),
			)
		}
	}
	if c.cc.InFlight() == 0 {
		c.cc.Close()
	}
}

// keepAliveSpent runs when an HTTP/1.1 response says the server ends the
// connection's keep-alive after it (or after one more request): the
// connection is retired and its replacement dialled before a queued
// request needs it.
func (c *pconn) keepAliveSpent() {
	if c.retire() {
		c.pool.cfg.obs.keepAliveClosed()
	}
}

// retire takes the connection out of rotation and, within maxConns, starts
// dialling its replacement. It reports false if it was already retired.
func (c *pconn) retire() bool {
	if !c.goingAway.CompareAndSwap(false, true) {
		return false
	}
	p := c.pool
	if p.cfg.mru {
		p.h1Retire(c)
	}
	// Open the replacement now rather than when a request finds nothing
	// free, so clients never wait for it. Its place is taken here, before
	// the dial starts: the place the retired connection gave up is not
	// offered to the queue, whose waiters would otherwise be woken to
	// dial it themselves, on a request's path (a failed dial wakes them).
	p.mu.Lock()
	ok := p.canGrowLocked()
	if ok {
		p.dialing++
		p.wg.Add(1)
	}
	p.mu.Unlock()
	if ok {
		go func() {
			defer p.wg.Done()
			p.dial()
		}()
	}
	return true
}

// pool holds at most maxConns connections to one server, all of one protocol.
// Requests reserve a concurrency slot with tryAcquire; the slot is consumed by
// exactly one clientConn.RoundTrip or given back with Release.
type pool struct {
	cfg poolConfig

	ctx    context.Context // cancelled by close; parent of dials
	cancel context.CancelFunc
	wg     sync.WaitGroup // reaper and replacement dials

	mu sync.Mutex // guards the fields below; never held while calling cfg.onChange
	// conns are the connections not yet known to be dead.
	conns   []*pconn
	dialing int
	closed  bool
	// HTTP/1.1 pools only (idle.go): the idle stack, the connections
	// counted against maxConns (idle, held or settling) and those retired
	// under their last request.
	idle      idleList
	h1Active  int
	h1Retired int

	// draining pools take no new requests and close connections as they
	// idle. Atomic because the state hook reads it and must not take mu.
	draining atomic.Bool

	inflight atomic.Int64 // requests holding a slot from this pool

	lim atomic.Pointer[poolLimits]
}

func (p *pool) limits() *poolLimits { return p.lim.Load() }

// setLimits applies new tunables; existing connections stay.
func (p *pool) setLimits(l poolLimits) { p.lim.Store(&l) }

func newPool(cfg poolConfig) *pool {
	ctx, cancel := context.WithCancel(context.Background())
	p := &pool{cfg: cfg, ctx: ctx, cancel: cancel}
	p.setLimits(cfg.limits)
	if cfg.mru {
		p.wg.Add(1)
		go p.reap()
	}
	return p
}

// tryAcquire reserves a slot on an open connection without blocking. It
// returns nil when every connection is at its limit (or there are none).
// An HTTP/1.1 pool pops its idle stack, without the connection's liveness
// peek when unchecked (see Backend.acquire); an h2c pool picks the least
// loaded connection.
func (p *pool) tryAcquire(unchecked bool) *pconn {
	if p.cfg.mru {
		return p.tryAcquireIdle(unchecked)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.draining.Load() {
		return nil
	}
	var best *pconn
	bestLoad := 0
	maxStreams := p.limits().maxStreams
	for i := 0; i < len(p.conns); i++ {
		c := p.conns[i]
		load, avail, err := connSlots(c.cc)
		if err != nil {
			p.removeLocked(i)
			i--
			continue
		}
		if c.goingAway.Load() || load >= maxStreams || avail == 0 {
			continue
		}
		if best == nil || load < bestLoad {
			best, bestLoad = c, load
		}
	}
	if best == nil || best.cc.Reserve() != nil {
		return nil
	}
	p.inflight.Add(1)
	return best
}

// slotReporter is a connection that reports InFlight, Available and Err
// in one call (h2c/client.Conn.Slots: one lock round trip, not three).
type slotReporter interface {
	Slots() (inFlight, available int, err error)
}

// connSlots is cc's in-flight requests, free slots and error.
func connSlots(cc clientConn) (inFlight, available int, err error) {
	if r, ok := cc.(slotReporter); ok {
		return r.Slots()
	}
	if err := cc.Err(); err != nil {
		return 0, 0, err
	}
	return cc.InFlight(), cc.Available(), nil
}

// done gives back what tryAcquire took, once the request is over.
func (p *pool) done() { p.inflight.Add(-1) }

// removeLocked forgets conns[i]; the connection is already dead or closing.
func (p *pool) removeLocked(i int) {
	c := p.conns[i]
	last := len(p.conns) - 1
	p.conns[i] = p.conns[last]
	p.conns[last] = nil
	p.conns = p.conns[:last]
	if p.cfg.mru {
		p.setH1Locked(c, h1Out)
	}
	c.markGone()
}

// canGrow reports whether another connection may be opened.
func (p *pool) canGrow() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.canGrowLocked()
}

// canGrowLocked: connections draining after GOAWAY or a keep-alive close do
// not count against the cap, but all connections together stay below twice
// the cap. A retired HTTP/1.1 connection with nothing in flight is closing
// (net/http may not report its end yet) and counts in neither.
func (p *pool) canGrowLocked() bool {
	if p.closed || p.draining.Load() {
		return false
	}
	maxConns := p.limits().maxConns
	if p.cfg.mru {
		return p.canGrowH1Locked(maxConns)
	}
	total := p.liveLocked()
	active := 0
	for _, c := range p.conns {
		switch {
		case !c.goingAway.Load():
			active++
		}
	}
	return active+p.dialing < maxConns && total+p.dialing < 2*maxConns
}

// liveLocked counts connections not yet closed, dropping dead ones.
func (p *pool) liveLocked() int {
	for i := 0; i < len(p.conns); i++ {
		if p.conns[i].cc.Err() != nil {
			p.removeLocked(i)
			i--
		}
	}
	return len(p.conns)
}

// errPoolFull means another dial would exceed maxConns.
var errPoolFull = fmt.Errorf("%w: connection limit reached", ErrNoCapacity)

// grow dials one more connection if the cap allows, and adds it to the pool.
// Concurrent callers each dial at most one connection, and never past the cap.
func (p *pool) grow() error {
	p.mu.Lock()
	if !p.canGrowLocked() {
		p.mu.Unlock()
		return errPoolFull
	}
	p.dialing++
	p.mu.Unlock()
	return p.dial()
}

// dial opens the connection whose place in p.dialing the caller took, and
// adds it to the pool.
func (p *pool) dial() error {
	c := &pconn{pool: p, id: connIDs.Add(1), dialStart: time.Now()}
	ctx, cancel := context.WithTimeout(p.ctx, p.limits().connectTimeout)
	cc, watch, err := p.cfg.dial(ctx, c)
	cancel()

	p.mu.Lock()
	p.dialing--
	if err == nil && (p.closed || p.draining.Load()) {
		p.mu.Unlock()
		cc.Close()
		return fmt.Errorf("%w: pool closed", ErrNoCapacity)
	}
	if err != nil {
		p.mu.Unlock()
		// A failed dial frees a dialing slot that a queued request may use.
		p.cfg.onChange()
		return &DialError{Addr: p.cfg.addr, Err: err}
	}
	c.cc = cc
	c.opened = time.Now()
	c.lastIdle.Store(c.opened.UnixNano())
	p.conns = append(p.conns, c)
	if p.cfg.mru {
		p.setH1Locked(c, h1Idle)
	}
	p.mu.Unlock()

	p.cfg.obs.connOpened(p.cfg.protocol)
	watch(func() { p.stateChanged(c) })
	p.cfg.onChange()
	return nil
}

// stateChanged runs from the connection's state hook, possibly synchronously
// inside RoundTrip, Reserve or Body.Close: in an h2c pool it must not take
// p.mu (an HTTP/1.1 pool's hook does: see idle.go).
func (p *pool) stateChanged(c *pconn) {
	if p.cfg.mru {
		p.h1StateChanged(c)
		return
	}
	if c.cc.Err() != nil {
		// Account now so the gauge drops when the connection does; the
		// slice entry is swept on the next acquire.
		c.markGone()
		p.cfg.onChange()
		return
	}
	if c.cc.InFlight() == 0 {
		c.lastIdle.Store(time.Now().UnixNano())
		// (A connection the server retired with GOAWAY closes itself;
		// one Sluice retired does not.)
		if p.draining.Load() || c.leaked.Load() {
			c.cc.Close()
			return
		}
	}
	p.cfg.onChange()
}

// drain stops new requests, closes idle connections now and the busy ones as
// soon as they finish. Used when a server switches protocol.
func (p *pool) drain() {
	p.draining.Store(true)
	if p.cfg.mru {
		p.mu.Lock()
		idle := p.takeIdleLocked(time.Now().UnixNano(), true)
		p.mu.Unlock()
		p.closeIdle(idle)
		return
	}
	p.mu.Lock()
	idle := p.idleLocked(0)
	p.mu.Unlock()
	for _, cc := range idle {
		cc.Close()
	}
}

// closeIdle closes connections taken off an HTTP/1.1 pool's idle stack.
func (p *pool) closeIdle(idle []*pconn) {
	for _, c := range idle {
		c.cc.Close()
		p.forget(c)
	}
}

// idleLocked returns connections idle for at least d.
func (p *pool) idleLocked(d time.Duration) []clientConn {
	var out []clientConn
	cutoff := time.Now().Add(-d).UnixNano()
	for _, c := range p.conns {
		if c.cc.InFlight() == 0 && c.lastIdle.Load() <= cutoff {
			out = append(out, c.cc)
		}
	}
	return out
}

// reap closes connections idle past idleTimeout, least recently used
// first, from the bottom of the idle stack (HTTP/1.1 pools). Taken off the
// stack under p.mu, they cannot be taken by a request while they close.
func (p *pool) reap() {
	defer p.wg.Done()
	// At least once a second, so that a settling connection whose state
	// hook call net/http coalesced away is back in use within a second.
	tick := time.NewTicker(min(max(p.limits().idleTimeout/4, 100*time.Millisecond), time.Second))
	defer tick.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
		d := p.limits().idleTimeout
		p.mu.Lock()
		woke := p.settleLocked()
		var idle []*pconn
		if d > 0 {
			idle = p.takeIdleLocked(time.Now().Add(-d).UnixNano(), false)
		}
		p.mu.Unlock()
		if woke {
			p.cfg.onChange()
		}
		p.closeIdle(idle)
		p.checkIdle()
	}
}

// stats is a snapshot for metrics and readiness.
type poolStats struct {
	conns    int
	inflight int
}

func (p *pool) stats() poolStats {
	p.mu.Lock()
	n := p.liveLocked()
	p.mu.Unlock()
	return poolStats{conns: n, inflight: int(p.inflight.Load())}
}

// maxStreams reports, per usable connection, how many concurrent streams
// it allows: what the server advertised (Available + InFlight) capped by
// the config.
func (p *pool) maxStreams() []int {
	limit := p.limits().maxStreams
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int, 0, len(p.conns))
	for _, c := range p.conns {
		if c.cc.Err() != nil {
			continue
		}
		n := c.cc.Available() + c.cc.InFlight()
		if c.goingAway.Load() || n == 0 {
			n = c.cc.InFlight()
		}
		out = append(out, min(n, limit))
	}
	return out
}

// close shuts every connection and stops the reaper.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = nil
	if p.cfg.mru {
		for _, c := range conns {
			p.setH1Locked(c, h1Out)
		}
	}
	p.mu.Unlock()
	p.cancel()
	for _, c := range conns {
		c.cc.Close()
		c.markGone()
	}
	p.wg.Wait()
}
