package gateway

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// connTracker keeps the client connection metrics. A plaintext connection is
// counted as http1 when accepted and moved to h2c when its first request
// turns out to be HTTP/2 (prior knowledge), since only then is it known.
type connTracker struct {
	m     *Metrics
	conns sync.Map // net.Conn → *clientConn, for ConnState
	once  sync.Once
	g     [2]prometheus.Gauge
	acc   [2]prometheus.Counter
}

type clientConn struct {
	proto      atomic.Int32 // index into g and acc
	classified atomic.Bool
}

type connKey struct{}

func (t *connTracker) init() {
	t.once.Do(func() {
		for i, p := range []string{protoHTTP1, protoH2C} {
			t.g[i] = t.m.clientConns.WithLabelValues(p)
			t.acc[i] = t.m.clientAccepted.WithLabelValues(p)
		}
	})
}

// connContext is http.Server.ConnContext.
func (t *connTracker) connContext(ctx context.Context, c net.Conn) context.Context {
	t.init()
	cc := &clientConn{}
	t.conns.Store(c, cc)
	t.g[0].Inc()
	return context.WithValue(ctx, connKey{}, cc)
}

// connState is http.Server.ConnState.
func (t *connTracker) connState(c net.Conn, s http.ConnState) {
	if s != http.StateClosed && s != http.StateHijacked {
		return
	}
	v, ok := t.conns.LoadAndDelete(c)
	if !ok {
		return
	}
	cc := v.(*clientConn)
	p := cc.proto.Load()
	t.g[p].Dec()
	if cc.classified.CompareAndSwap(false, true) {
		t.acc[p].Inc()
	}
}

// classify records the connection's protocol on its first request.
func (t *connTracker) classify(r *http.Request) {
	cc, ok := r.Context().Value(connKey{}).(*clientConn)
	if !ok || cc.classified.Load() || !cc.classified.CompareAndSwap(false, true) {
		return
	}
	p := int32(0)
	if r.ProtoMajor == 2 {
		p = 1
		cc.proto.Store(p)
		t.g[0].Dec()
		t.g[1].Inc()
	}
	t.acc[p].Inc()
}
