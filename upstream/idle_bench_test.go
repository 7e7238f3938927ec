package upstream

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// benchH1Pool is an HTTP/1.1 pool of 64 fake connections, busy but for
// free of them.
func benchH1Pool(b *testing.B, free int) *pool {
	const conns = 64
	p := newPool(poolConfig{
		protocol: H1, addr: "fake", mru: true, onChange: func() {},
		obs:    NewMetrics(nil).forServer("bench", "fake"),
		limits: poolLimits{maxConns: conns, maxStreams: 1, connectTimeout: time.Second},
		dial: func(context.Context, *pconn) (clientConn, func(func()), error) {
			fc := &fakeConn{status: http.StatusOK, limit: 1}
			return fc, fc.watch, nil
		},
	})
	b.Cleanup(p.close)
	for range conns {
		if err := p.grow(); err != nil {
			b.Fatal(err)
		}
	}
	for range conns - free {
		if p.tryAcquire(false) == nil {
			b.Fatal("no free connection")
		}
	}
	return p
}

// BenchmarkH1PoolFull is what a queued request's wake-up costs when every
// connection is busy: look for a free one, then for room to open one.
func BenchmarkH1PoolFull(b *testing.B) {
	p := benchH1Pool(b, 0)
	for b.Loop() {
		if p.tryAcquire(false) != nil || p.canGrow() {
			b.Fatal("capacity in a full pool")
		}
	}
}

// BenchmarkH1PoolTakeRelease takes the one free connection and gives it
// back.
func BenchmarkH1PoolTakeRelease(b *testing.B) {
	p := benchH1Pool(b, 1)
	for b.Loop() {
		c := p.tryAcquire(false)
		if c == nil {
			b.Fatal("no free connection")
		}
		c.release()
	}
}
