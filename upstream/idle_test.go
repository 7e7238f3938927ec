package upstream

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// stackIDs lists the idle stack top to bottom, checking the links both
// ways and the count.
func stackIDs(t *testing.T, l *idleList) []uint64 {
	t.Helper()
	var down, up []uint64
	for c := l.top; c != nil; c = c.idleBelow {
		down = append(down, c.id)
	}
	for c := l.bottom; c != nil; c = c.idleAbove {
		up = append(up, c.id)
	}
	slices.Reverse(up)
	if !slices.Equal(down, up) || len(down) != l.n {
		t.Fatalf("idle stack inconsistent: down %v, up reversed %v, n %d", down, up, l.n)
	}
	return down
}

func TestIdleList(t *testing.T) {
	tests := []struct {
		name string
		push []uint64 // pushed in this order
		drop []uint64 // then removed
		want []uint64 // top to bottom
	}{
		{"empty", nil, nil, nil},
		{"most recent on top", []uint64{1, 2, 3}, nil, []uint64{3, 2, 1}},
		{"remove top", []uint64{1, 2, 3}, []uint64{3}, []uint64{2, 1}},
		{"remove bottom", []uint64{1, 2, 3}, []uint64{1}, []uint64{3, 2}},
		{"remove middle", []uint64{1, 2, 3}, []uint64{2}, []uint64{3, 1}},
		{"remove all", []uint64{1, 2}, []uint64{1, 2}, nil},
		{"re-push moves to top", []uint64{1, 2, 3, 1}, nil, []uint64{1, 3, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l idleList
			conns := map[uint64]*pconn{}
			on := map[uint64]bool{}
			for _, id := range tt.push {
				c := conns[id]
				if c == nil {
					c = &pconn{id: id}
					conns[id] = c
				}
				if on[id] {
					l.remove(c)
				}
				l.push(c)
				on[id] = true
			}
			for _, id := range tt.drop {
				l.remove(conns[id])
				if c := conns[id]; c.idleAbove != nil || c.idleBelow != nil {
					t.Errorf("removed %d keeps its links", id)
				}
			}
			if got := stackIDs(t, &l); !slices.Equal(got, tt.want) {
				t.Errorf("stack %v, want %v", got, tt.want)
			}
		})
	}
}

// countingConn is a fakeConn that counts the pool's calls to Err and
// InFlight, and runs the state hook when closed, as net/http's does.
type countingConn struct {
	*fakeConn
	errs, inflights atomic.Int64
}

func (c *countingConn) Err() error    { c.errs.Add(1); return c.fakeConn.Err() }
func (c *countingConn) InFlight() int { c.inflights.Add(1); return c.fakeConn.InFlight() }
func (c *countingConn) calls() int64  { return c.errs.Load() + c.inflights.Load() }
func (c *countingConn) resetCalls()   { c.errs.Store(0); c.inflights.Store(0) }
func (c *countingConn) hookNow() {
	c.fakeConn.mu.Lock()
	h := c.fakeConn.hook
	c.fakeConn.mu.Unlock()
	if h != nil {
		h()
	}
}
func (c *countingConn) Close() error { c.fakeConn.Close(); c.hookNow(); return nil }
func (c *countingConn) finishRequest() {
	c.fakeConn.mu.Lock()
	c.fakeConn.inflight--
	c.fakeConn.mu.Unlock()
}

// newH1TestPool is an HTTP/1.1 pool of fake connections that counts its
// wake-ups and hands out its dialled connections.
func newH1TestPool(t *testing.T, maxConns int, idleTimeout time.Duration) (*pool, *atomic.Int64, chan *countingConn) {
	t.Helper()
	wakes := new(atomic.Int64)
	dialled := make(chan *countingConn, 1024)
	p := newPool(poolConfig{
		protocol: H1, addr: "fake", mru: true, onChange: func() { wakes.Add(1) },
		obs:    NewMetrics(nil).forServer("test", "fake"),
		limits: poolLimits{maxConns: maxConns, maxStreams: 1, connectTimeout: time.Second, idleTimeout: idleTimeout},
		dial: func(context.Context, *pconn) (clientConn, func(func()), error) {
			cc := &countingConn{fakeConn: &fakeConn{status: http.StatusOK, limit: 1}}
			select {
			case dialled <- cc:
			default:
			}
			return cc, cc.watch, nil
		},
	})
	t.Cleanup(p.close)
	return p, wakes, dialled
}

// checkBooks checks the HTTP/1.1 pool's counts against its connections'
// states and the idle stack.
func checkBooks(t *testing.T, p *pool) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	active, retired, idle := 0, 0, 0
	for _, c := range p.conns {
		switch c.h1 {
		case h1Idle:
			idle++
			active++
		case h1Held, h1Settling:
			active++
		case h1Retired:
			retired++
		}
	}
	if active != p.h1Active || retired != p.h1Retired || idle != p.idle.n {
		t.Errorf("books: active %d retired %d idle %d; counted %d %d %d", active, retired, idle, p.h1Active, p.h1Retired, p.idle.n)
	}
	if n := len(stackIDs(t, &p.idle)); n != idle {
		t.Errorf("idle stack holds %d, %d connections idle", n, idle)
	}
}

// TestH1AcquireDoesNotScan: with every connection busy, looking for a free
// one (tryAcquire) and for room to open another (canGrow) asks none of
// them anything, and a state change on a busy connection wakes nobody;
// a connection done with its request goes on top of the idle stack and
// wakes one waiter, and the next request takes it (most recently used).
func TestH1AcquireDoesNotScan(t *testing.T) {
	const conns = 64
	p, wakes, dialled := newH1TestPool(t, conns, 0)
	all := make([]*countingConn, 0, conns)
	held := make([]*pconn, 0, conns)
	for range conns {
		if err := p.grow(); err != nil {
			t.Fatal(err)
		}
		all = append(all, <-dialled)
		c := p.tryAcquire(false)
		if c == nil {
			t.Fatal("no free connection after a dial")
		}
		held = append(held, c)
	}
	checkBooks(t, p)
	for _, cc := range all {
		cc.resetCalls()
	}
	before := wakes.Load()
	for range 100 {
		if c := p.tryAcquire(false); c != nil {
			t.Fatal("acquired a slot on a full pool")
		}
		if p.canGrow() {
			t.Fatal("pool may grow past its cap")
		}
	}
	all[0].hookNow() // a state change on a held connection
	var calls int64
	for _, cc := range all {
		calls += cc.calls()
	}
	if calls > 2 {
		t.Errorf("100 failed acquisitions on %d busy connections made %d Err/InFlight calls, want at most the hooked connection's 2", conns, calls)
	}
	if w := wakes.Load() - before; w != 0 {
		t.Errorf("%d wake-ups with no connection free", w)
	}

	// Two requests finish, 7 then 3: 3 is on top.
	for _, i := range []int{7, 3} {
		all[i].finishRequest()
		held[i].done()
	}
	if w := wakes.Load() - before; w != 2 {
		t.Errorf("%d wake-ups for 2 connections gone idle, want 2", w)
	}
	checkBooks(t, p)
	if c := p.tryAcquire(false); c != held[3] {
		t.Errorf("acquired connection %v, want the most recently used %d", c, held[3].id)
	}
	if c := p.tryAcquire(false); c != held[7] {
		t.Errorf("acquired connection %v, want %d", c, held[7].id)
	}
}

// TestH1Books walks an HTTP/1.1 connection through its states and checks
// the counts the caps read, the idle stack and the wake-ups.
func TestH1Books(t *testing.T) {
	p, wakes, dialled := newH1TestPool(t, 2, 0)
	if err := p.grow(); err != nil {
		t.Fatal(err)
	}
	cc := <-dialled
	c := p.tryAcquire(false)
	steps := []struct {
		name            string
		do              func()
		state           h1State
		active, retired int
		idle            int
		wake, canGrow   bool
	}{
		{"held", func() {}, h1Held, 1, 0, 0, false, true},
		{"done but not yet available", func() { c.done() }, h1Settling, 1, 0, 0, false, true},
		{"available: the hook puts it back", func() { cc.finishRequest(); cc.hookNow() }, h1Idle, 1, 0, 1, true, true},
		{"taken again", func() {
			if p.tryAcquire(false) != c {
				t.Fatal("not the idle connection")
			}
		}, h1Held, 1, 0, 0, false, true},
		// The replacement is dialled at once, and is idle.
		{"keep-alive spent: retired", func() {
			c.keepAliveSpent()
			<-dialled
			gatewaytest.WaitFor(t, 5*time.Second, "the replacement", func() bool {
				p.mu.Lock()
				defer p.mu.Unlock()
				return p.idle.n == 1
			})
		}, h1Retired, 1, 1, 1, true, true},
		{"done: closed", func() { c.done() }, h1Out, 1, 0, 1, true, true},
	}
	for _, s := range steps {
		before := wakes.Load()
		s.do()
		p.mu.Lock()
		got := []int{int(c.h1), p.h1Active, p.h1Retired, p.idle.n}
		p.mu.Unlock()
		if want := []int{int(s.state), s.active, s.retired, s.idle}; !slices.Equal(got, want) {
			t.Errorf("%s: state, active, retired, idle = %v, want %v", s.name, got, want)
		}
		if w := wakes.Load() > before; w != s.wake {
			t.Errorf("%s: woke %v, want %v", s.name, w, s.wake)
		}
		if g := p.canGrow(); g != s.canGrow {
			t.Errorf("%s: canGrow %v, want %v", s.name, g, s.canGrow)
		}
		checkBooks(t, p)
	}
	if cc.Err() == nil {
		t.Error("the retired connection is open after its request")
	}
}

// TestH1IdleRace runs requests, closes by the server, keep-alive ends and
// the reaper against one HTTP/1.1 pool at once (go test -race), then
// checks that no connection was handed to two requests at a time and that
// the books add up.
func TestH1IdleRace(t *testing.T) {
	checkNoLeak(t)
	p, _, _ := newH1TestPool(t, 4, 5*time.Millisecond)
	var inUse sync.Map
	var wg sync.WaitGroup
	deadline := time.Now().Add(300 * time.Millisecond)
	for g := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				c := p.tryAcquire(false)
				if c == nil {
					if err := p.grow(); err != nil && !errors.Is(err, ErrNoCapacity) {
						t.Error(err)
						return
					}
					continue
				}
				if _, dup := inUse.LoadOrStore(c, true); dup {
					t.Errorf("connection %d handed out twice", c.id)
				}
				cc := c.cc.(*countingConn)
				switch (g + i) % 7 {
				case 0:
					cc.Close() // the server closed it under the request
				case 1:
					c.keepAliveSpent()
				case 2:
					inUse.Delete(c)
					c.release()
					continue
				}
				inUse.Delete(c)
				cc.finishRequest()
				if i%3 == 0 {
					c.done()
					cc.hookNow() // net/http's hook after the response
				} else {
					cc.hookNow()
					c.done()
				}
			}
		})
	}
	wg.Wait()
	gatewaytest.WaitFor(t, 5*time.Second, "replacement dials", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.dialing == 0
	})
	checkBooks(t, p)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		if c.h1 == h1Held || c.h1 == h1Retired {
			t.Errorf("connection %d still %d with every request done", c.id, c.h1)
		}
	}
	if p.h1Active > 4 {
		t.Errorf("%d connections counted against a cap of 4", p.h1Active)
	}
}
