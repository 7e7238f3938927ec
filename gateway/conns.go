package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"

	"github.com/sluice-gw/sluice/gateway/h1"
)

// Client protocols, the fixed label set of the client connection metrics.
const (
	protoHTTP1 = iota // HTTP/1.x, cleartext or TLS
	protoH2C          // HTTP/2 prior knowledge, cleartext
	protoH2           // HTTP/2 over TLS
	protoH3           // HTTP/3 over QUIC
	numProtos
)

var protoNames = [numProtos]string{"http1", "h2c", "h2", "h3"}

// Rejection reasons, the fixed label set of sluice_client_rejected_total.
// A request the HTTP/1.1 parser refuses is counted under its h1.Class
// (rejectReason); the head limits use the same names on every protocol.
const (
	reasonLimit          = "limit"
	reasonTimeout        = "timeout"
	reasonBadRequest     = "bad_request" // any other refused request
	reasonHeaderTooLarge = h1.ClassHeaderTooLarge
	reasonTooManyHeaders = h1.ClassTooManyHeaders
	reasonBodyTooLarge   = "body_too_large"
	reasonTLSHandshake   = "tls_handshake"
	reasonProxyProtocol  = "proxy_protocol"
	reasonProxyUntrusted = "proxy_untrusted"
	reasonRapidReset     = "rapid_reset"
)

// reject counts a refused connection or request.
func (t *connTracker) reject(reason string) { t.m.rejected.WithLabelValues(reason).Inc() }

// rejectReason is the reason a request refused with err is counted under:
// the parser's class of refusal, or bad_request for any other error.
func rejectReason(err error) string {
	if e, ok := errors.AsType[*h1.Error](err); ok {
		return e.Class
	}
	return reasonBadRequest
}

// connTracker keeps the client connection metrics. A TCP connection is
// counted as http1 when accepted and moved to h2c or h2 when its first
// request turns out to be HTTP/2, since only then is it known.
type connTracker struct {
	m             *Metrics
	headerTimeout time.Duration // the servers' ReadHeaderTimeout
	h3            atomic.Int64  // open QUIC connections
	conns         sync.Map      // net.Conn → *clientConn, for ConnState; but a frontConn carries its own (track)
	once          sync.Once
	g             [numProtos]prometheus.Gauge
	acc           [numProtos]prometheus.Counter
	reqs          [numProtos]prometheus.Counter // sluice_client_requests_total
}

type clientConn struct {
	proto      atomic.Int32 // index into g and acc
	classified atomic.Bool
	accepted   time.Time
	tracked    atomic.Bool // in a frontConn: counted open, not yet closed (track)
}

// track makes c's clientConn: for a frontConn (every connection HTTP/1.1
// serves) the one it carries, which costs no map entry; for any other, one
// kept in t.conns.
func (t *connTracker) track(c net.Conn, accepted time.Time) *clientConn {
	if fc, ok := c.(*frontConn); ok {
		fc.client.accepted = accepted
		fc.client.tracked.Store(true)
		return &fc.client
	}
	cc := &clientConn{accepted: accepted}
	t.conns.Store(c, cc)
	return cc
}

// untrack finds and drops c's clientConn: once only, when c closes or is
// handed over.
func (t *connTracker) untrack(c net.Conn) (*clientConn, bool) {
	if fc, ok := c.(*frontConn); ok {
		return &fc.client, fc.client.tracked.CompareAndSwap(true, false)
	}
	v, ok := t.conns.LoadAndDelete(c)
	if !ok {
		return nil, false
	}
	return v.(*clientConn), true
}

type connKey struct{}

func (t *connTracker) init() {
	t.once.Do(func() {
		for i, p := range protoNames {
			t.g[i] = t.m.clientConns.WithLabelValues(p)
			t.acc[i] = t.m.clientAccepted.WithLabelValues(p)
			t.reqs[i] = t.m.clientRequests.WithLabelValues(p)
		}
	})
}

// connContext is http.Server.ConnContext.
func (t *connTracker) connContext(ctx context.Context, c net.Conn) context.Context {
	t.init()
	cc := t.track(c, time.Now())
	t.g[protoHTTP1].Inc()
	return context.WithValue(ctx, connKey{}, cc)
}

// quicConn is http3.Server.ConnContext: QUIC connections are HTTP/3 from
// the start, and end when their context does.
func (t *connTracker) quicConn(ctx context.Context, c *quic.Conn) context.Context {
	t.init()
	t.g[protoH3].Inc()
	t.acc[protoH3].Inc()
	t.h3.Add(1)
	context.AfterFunc(c.Context(), func() { t.g[protoH3].Dec(); t.h3.Add(-1) })
	return ctx
}

// forget stops tracking c without counting it as accepted: c is handed
// from one server to another, whose ConnContext tracks it again.
func (t *connTracker) forget(c net.Conn) {
	if _, ok := t.untrack(c); ok {
		t.g[protoHTTP1].Dec()
	}
}

// connState is http.Server.ConnState.
func (t *connTracker) connState(c net.Conn, s http.ConnState) {
	if s != http.StateClosed && s != http.StateHijacked {
		return
	}
	cc, ok := t.untrack(c)
	if !ok {
		return
	}
	p := cc.proto.Load()
	t.g[p].Dec()
	if cc.classified.CompareAndSwap(false, true) {
		t.acc[p].Inc()
		// Closed without a single request after at least the header
		// timeout: the server cut a client too slow to send its headers.
		if t.headerTimeout > 0 && time.Since(cc.accepted) >= t.headerTimeout {
			t.reject(reasonTimeout)
		}
	}
}

// requestProto is the client protocol of r.
func requestProto(r *http.Request) int {
	switch r.ProtoMajor {
	case 2:
		if r.TLS != nil {
			return protoH2
		}
		return protoH2C
	case 3:
		return protoH3
	}
	return protoHTTP1
}

// classify counts the request by protocol, and records the connection's
// protocol on its first request.
func (t *connTracker) classify(r *http.Request) {
	t.reqs[requestProto(r)].Inc()
	cc, ok := r.Context().Value(connKey{}).(*clientConn)
	if !ok || cc.classified.Load() || !cc.classified.CompareAndSwap(false, true) {
		return
	}
	p := int32(requestProto(r))
	if p != protoHTTP1 {
		cc.proto.Store(p)
		t.g[protoHTTP1].Dec()
		t.g[p].Inc()
	}
	t.acc[p].Inc()
}
