package upstream

import (
	"context"
	"net/http/httptrace"
	"testing"
	"time"
)

// BenchmarkTracker is an attempt's tracking as the h2c client sees it: the
// tracker started, its context watched through OnCancel (as the h2c client
// and the HTTP/1.1 client do), its body phase, its end.
func BenchmarkTracker(b *testing.B) {
	var set attempts
	s := &Server{addr: "a:1"}
	p := newPool(poolConfig{server: s})
	defer p.close()
	c := &pconn{pool: p}
	clientCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var w watcher
	b.ReportAllocs()
	for b.Loop() {
		p.inflight.Add(1)
		s.active.Add(1)
		tr := newTracker(&set, clientCtx, httptrace.ContextClientTrace(clientCtx), c, time.Minute, time.Minute, time.Time{})
		tr.ctx.OnCancel(&w)
		tr.bodyPhase()
		tr.ctx.StopOnCancel()
		tr.finish()
	}
}
