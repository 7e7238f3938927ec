package upstream

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// slotsConn is a fakeConn that reports its slots in one call, as
// h2c/client.Conn.Slots does, and counts the pool's calls.
type slotsConn struct {
	*fakeConn
	slots, single atomic.Int64
}

func (c *slotsConn) Slots() (int, int, error) {
	c.slots.Add(1)
	return c.fakeConn.InFlight(), c.fakeConn.Available(), c.fakeConn.Err()
}
func (c *slotsConn) Err() error     { c.single.Add(1); return c.fakeConn.Err() }
func (c *slotsConn) InFlight() int  { c.single.Add(1); return c.fakeConn.InFlight() }
func (c *slotsConn) Available() int { c.single.Add(1); return c.fakeConn.Available() }

// TestAcquireReadsSlotsOnce: choosing an h2c connection asks each one
// for its slots in one call (one lock round trip) where it offers
// Slots, and still skips full connections and drops failed ones.
func TestAcquireReadsSlotsOnce(t *testing.T) {
	cc := &slotsConn{fakeConn: &fakeConn{status: http.StatusOK, limit: 2}}
	p := newPool(poolConfig{
		protocol: H2C, addr: "fake", onChange: func() {},
		obs:    NewMetrics(nil).forServer("test", "fake"),
		limits: poolLimits{maxConns: 1, maxStreams: 2, connectTimeout: time.Second},
		dial: func(context.Context, *pconn) (clientConn, func(func()), error) {
			return cc, cc.watch, nil
		},
	})
	t.Cleanup(p.close)
	if err := p.grow(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if p.tryAcquire(false) == nil {
			t.Fatalf("acquisition %d failed with a free slot", i)
		}
	}
	if p.tryAcquire(false) != nil {
		t.Fatal("acquired a slot on a full connection")
	}
	if got, single := cc.slots.Load(), cc.single.Load(); got != 3 || single != 0 {
		t.Errorf("Slots called %d times and Err/InFlight/Available %d, want 3 and 0", got, single)
	}
	cc.fakeConn.Close()
	if p.tryAcquire(false) != nil {
		t.Fatal("acquired a slot on a closed connection")
	}
	p.mu.Lock()
	n := len(p.conns)
	p.mu.Unlock()
	if n != 0 {
		t.Errorf("%d connections kept after the connection failed, want 0", n)
	}
}
