package gateway

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds the client-side collectors.
type Metrics struct {
	clientConns    *prometheus.GaugeVec
	clientAccepted *prometheus.CounterVec
	requests       *prometheus.CounterVec
	rejected       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	clientRequests *prometheus.CounterVec
	bytes          *prometheus.CounterVec
	listeners      *Listeners

	waitMu  sync.Mutex   // guards waiters
	waiters []func() int // the HTTP/1.1 servers' Waiting, for sluice_client_requests_waiting
}

// watchWaiting adds an HTTP/1.1 server's count of requests waiting for
// admission (h1.Server.Waiting) to sluice_client_requests_waiting.
func (m *Metrics) watchWaiting(f func() int) {
	m.waitMu.Lock()
	m.waiters = append(m.waiters, f)
	m.waitMu.Unlock()
}

func (m *Metrics) waiting() float64 {
	m.waitMu.Lock()
	defer m.waitMu.Unlock()
	n := 0
	for _, f := range m.waiters {
		n += f()
	}
	return float64(n)
}

// Listeners is the accept state of every listener watched with these
// metrics.
func (m *Metrics) Listeners() *Listeners { return m.listeners }

// NewMetrics creates the gateway metrics and registers them with reg. A nil
// reg keeps them unregistered (tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		clientConns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_client_connections",
			Help: "Open client connections, by protocol (http1, h2c, h2, h3).",
		}, []string{"protocol"}),
		clientAccepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_client_connections_accepted_total",
			Help: "Client connections accepted, by protocol (http1, h2c, h2, h3).",
		}, []string{"protocol"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_client_rejected_total",
			Help: "Client connections or requests refused, by reason (limit, timeout, tls_handshake, proxy_protocol, proxy_untrusted, rapid_reset; requests: header_too_large, too_many_headers, uri_too_long, bad_request_line, invalid_header, content_length, transfer_encoding, bad_chunk, body_too_large, bad_request).",
		}, []string{"reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_requests_total",
			Help: "Client requests completed, by backend and status code (499: client went away).",
		}, []string{"backend", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_request_duration_seconds",
			Help:    "Time from request arrival to the end of the response, by backend.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"backend"}),
		clientRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_client_requests_total",
			Help: "Client requests received, by client protocol (http1, h2c, h2, h3).",
		}, []string{"protocol"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_bytes_total",
			Help: "Body bytes proxied, by direction (in: request bodies read from clients and sent upstream; out: response bodies written to clients) and backend.",
		}, []string{"direction", "backend"}),
		listeners: newListeners(),
	}
	if reg != nil {
		reg.MustRegister(m.clientConns, m.clientAccepted, m.rejected, m.requests, m.duration, m.clientRequests, m.bytes)
		reg.MustRegister(m.listeners.collectors()...)
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sluice_client_requests_waiting",
			Help: "HTTP/1.1 requests read and waiting for their turn: no more run at once than the backends have connection slots.",
		}, m.waiting))
	}
	return m
}

// requestMetrics are one backend's request collectors with labels resolved
// ahead of time, so the request path does no label hashing.
type requestMetrics struct {
	requests *prometheus.CounterVec
	backend  string
	codes    *[600]atomic.Pointer[prometheus.Counter]
	duration prometheus.Observer
	bytesIn  prometheus.Counter // sluice_bytes_total{direction="in"}
	bytesOut prometheus.Counter // sluice_bytes_total{direction="out"}
}

// forNoRoute is requestMetrics for requests no route matched: nothing is
// proxied, so no byte counters.
func (m *Metrics) forNoRoute() requestMetrics {
	return requestMetrics{
		requests: m.requests,
		backend:  "none",
		codes:    new([600]atomic.Pointer[prometheus.Counter]),
		duration: m.duration.WithLabelValues("none"),
	}
}

func (m *Metrics) forBackend(name string) requestMetrics {
	return requestMetrics{
		requests: m.requests,
		backend:  name,
		codes:    new([600]atomic.Pointer[prometheus.Counter]),
		duration: m.duration.WithLabelValues(name),
		bytesIn:  m.bytes.WithLabelValues("in", name),
		bytesOut: m.bytes.WithLabelValues("out", name),
	}
}

func (rm requestMetrics) observe(code int, d time.Duration) {
	rm.duration.Observe(d.Seconds())
	if code < 0 || code >= len(rm.codes) {
		rm.requests.WithLabelValues(rm.backend, codeLabel(code)).Inc()
		return
	}
	c := rm.codes[code].Load()
	if c == nil {
		cnt := rm.requests.WithLabelValues(rm.backend, codeLabel(code))
		c = &cnt
		rm.codes[code].Store(c)
	}
	(*c).Inc()
}

// Sampled are the collectors the stats page's history samples:
// sluice_client_connections, sluice_requests_total and
// sluice_request_duration_seconds. Reading them costs the request path
// nothing.
func (m *Metrics) Sampled() []prometheus.Collector {
	return []prometheus.Collector{m.clientConns, m.requests, m.duration}
}
