package upstream

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"
)

// Queue rejection reasons, the fixed label set of sluice_queue_rejected_total.
const (
	reasonFull       = "full"
	reasonTimeout    = "timeout"
	reasonClientGone = "client_gone"
)

// Metrics holds the upstream collectors. Event counters are updated when
// things happen; per-request gauges (active streams, queue depth) are read
// from the backends' atomics at scrape time, so the request path only
// touches atomics it needs anyway.
type Metrics struct {
	conns    *prometheus.GaugeVec
	tunnels  *prometheus.GaugeVec
	opened   *prometheus.CounterVec
	rejected *prometheus.CounterVec
	wait     *prometheus.HistogramVec
	goaways  *prometheus.CounterVec
	kaCloses *prometheus.CounterVec
	leaks    *prometheus.CounterVec
	bodyFull *prometheus.CounterVec
	retries  *prometheus.CounterVec
	ejected  *prometheus.CounterVec
	up       *prometheus.GaugeVec
	checks   *prometheus.CounterVec
	connReqs *prometheus.HistogramVec
	connLife *prometheus.HistogramVec
	probes   *prometheus.CounterVec
	ejectLen *prometheus.HistogramVec
	admin    adminMetrics

	maxStreams     *prometheus.Desc
	streamsActive  *prometheus.Desc
	streamsPerConn *prometheus.Desc
	pending        *prometheus.Desc

	// DNS discovery (discovery.go).
	resolutions    *prometheus.CounterVec
	backendServers *prometheus.Desc
	discoveryOK    *prometheus.Desc

	mu       sync.Mutex // guards backends and servers
	backends map[*Backend]struct{}
	// servers counts the live Servers per (backend, address): a server
	// removed by a reload may still be draining when its address comes
	// back, and both share the series, deleted when the last one closes.
	servers map[[2]string]int
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
}

func histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
}

// NewMetrics creates the upstream metrics and registers them with reg. A nil
// reg keeps them unregistered (tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		conns:    gaugeVec("sluice_upstream_connections", "Open upstream connections.", "backend", "server", "protocol"),
		tunnels:  gaugeVec("sluice_upstream_tunnels", "Upstream HTTP/1.1 connections held for protocol switches (WebSocket), dialled apart from the pools and not in sluice_upstream_connections.", "backend", "server"),
		opened:   counterVec("sluice_upstream_connections_opened_total", "Upstream connections opened (successful dials).", "backend", "server", "protocol"),
		rejected: counterVec("sluice_queue_rejected_total", "Requests that left the backend queue without a connection slot, by reason (full, timeout, client_gone).", "backend", "reason"),
		wait:     histogramVec("sluice_queue_wait_seconds", "Time requests spent in the backend queue waiting for a connection slot.", []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5, 10}, "backend"),
		goaways:  counterVec("sluice_upstream_goaway_total", "Upstream h2c connections the server retired with GOAWAY (the first GOAWAY of each), by HTTP/2 error code (no_error, protocol_error, ..., unknown).", "backend", "server", "code"),
		kaCloses: counterVec("sluice_upstream_keepalive_closes_total", "Upstream HTTP/1.1 connections the server ended by its keep-alive limit (Connection: close, or Keep-Alive max <= 1), each replaced by a dial started at once.", "backend", "server"),
		leaks:    counterVec("sluice_upstream_window_leaks_total", "Upstream h2c connections retired because the server kept most of the connection send window for request bodies of streams it had ended (Tomcat: bodies its servlets never read), each replaced by a dial started at once and closed when its requests are done.", "backend", "server"),
		bodyFull: counterVec("sluice_request_body_memory_full_total", "Request bodies within retry_body_limit that found the backend's retry_body_memory held by other bodies: an HTTP/1.1 client's was streamed to the server as it came (not retried once sent), an HTTP/2 or HTTP/3 client's answered 503.", "backend"),
		retries:  counterVec("sluice_retries_total", "Requests sent again after a failed attempt, by reason (refused_stream, goaway, not_sent, idempotent, dial, draining, idle_closed).", "backend", "reason"),
		ejected:  counterVec("sluice_ejections_total", "Times a server was ejected for consecutive failures (passive health).", "backend", "server"),
		up:       gaugeVec("sluice_server_up", "1 while the server takes requests, or would but for a drain through the admin API (see sluice_server_drained); 0 while it is down (unreachable, failed `fall` health checks in a row, or its protocol not yet detected) or ejected.", "backend", "server"),
		probes:   counterVec("sluice_upstream_probes_total", "Background probes of servers that are ejected, down or not yet detected, by result (pass, fail).", "backend", "server", "result"),
		ejectLen: histogramVec("sluice_ejection_duration_seconds", "How long each ejection actually lasted, from the ejection to the server taking requests again, observed when it does.", []float64{1, 2, 5, 10, 20, 40, 80, 160, 300, 600, 1800}, "backend", "server"),
		checks:   counterVec("sluice_health_checks_total", "Active health checks, by result (pass, fail).", "backend", "server", "result"),
		// Powers of ten: a funnel connection carries millions, a
		// churning proxy's carries one.
		connReqs: histogramVec("sluice_upstream_connection_requests", "Requests carried by each upstream connection over its life, observed when it closes: the reuse figure.", prometheus.ExponentialBuckets(1, 10, 9), "backend", "server"),
		connLife: histogramVec("sluice_upstream_connection_lifetime_seconds", "How long each upstream connection stayed open, observed when it closes.", []float64{1, 10, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600, 7 * 24 * 3600}, "backend", "server"),
		maxStreams: prometheus.NewDesc("sluice_upstream_max_streams",
			"Concurrent streams one connection to the server allows: the lower of the server's SETTINGS_MAX_CONCURRENT_STREAMS and max_streams_per_conn (1 for HTTP/1.1); the lowest over open connections, 0 with none open.",
			[]string{"backend", "server"}, nil),
		streamsActive: prometheus.NewDesc("sluice_upstream_streams_active",
			"Requests in flight to the server (h2c streams or busy HTTP/1.1 connections).",
			[]string{"backend", "server"}, nil),
		streamsPerConn: prometheus.NewDesc("sluice_upstream_streams_per_connection",
			"Active requests divided by open connections to the server.",
			[]string{"backend", "server"}, nil),
		pending: prometheus.NewDesc("sluice_queue_pending",
			"Requests waiting in the backend queue.", []string{"backend"}, nil),
		resolutions: counterVec("sluice_discovery_resolutions_total", "DNS discovery resolutions, by result (ok; empty and error keep the servers found before).", "backend", "result"),
		backendServers: prometheus.NewDesc("sluice_backend_servers",
			"Servers in the backend's rotation set, configured and discovered (draining ones not counted).",
			[]string{"backend"}, nil),
		discoveryOK: prometheus.NewDesc("sluice_discovery_last_success_timestamp_seconds",
			"When the backend's DNS discovery last got servers, Unix time; 0 before the first.",
			[]string{"backend"}, nil),
		backends: map[*Backend]struct{}{},
		servers:  map[[2]string]int{},
		admin:    newAdminMetrics(),
	}
	if reg != nil {
		reg.MustRegister(m.conns, m.tunnels, m.opened, m.rejected, m.wait, m.goaways, m.kaCloses, m.leaks, m.bodyFull, m.retries, m.ejected, m.up, m.checks, m.connReqs, m.connLife, m.probes, m.ejectLen, m.resolutions, m)
		for _, v := range m.admin.vecs() {
			reg.MustRegister(v)
		}
	}
	return m
}

// Describe implements prometheus.Collector for the scrape-time gauges.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.maxStreams
	ch <- m.streamsActive
	ch <- m.streamsPerConn
	ch <- m.pending
	ch <- m.backendServers
	ch <- m.discoveryOK
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	bs := make([]*Backend, 0, len(m.backends))
	for b := range m.backends {
		bs = append(bs, b)
	}
	m.mu.Unlock()
	for _, b := range bs {
		st := b.Stats()
		ch <- prometheus.MustNewConstMetric(m.pending, prometheus.GaugeValue, float64(st.Pending), b.name)
		ch <- prometheus.MustNewConstMetric(m.backendServers, prometheus.GaugeValue, float64(len(b.cur().servers)), b.name)
		if d := st.Discovery; d != nil {
			ok := 0.0
			if !d.LastSuccess.IsZero() {
				ok = float64(d.LastSuccess.UnixNano()) / 1e9
			}
			ch <- prometheus.MustNewConstMetric(m.discoveryOK, prometheus.GaugeValue, ok, b.name)
		}
		for _, s := range st.Servers {
			ch <- prometheus.MustNewConstMetric(m.streamsActive, prometheus.GaugeValue, float64(s.Active), b.name, s.Address)
			per := 0.0
			if s.Conns > 0 {
				per = float64(s.Active) / float64(s.Conns)
			}
			ch <- prometheus.MustNewConstMetric(m.streamsPerConn, prometheus.GaugeValue, per, b.name, s.Address)
			lowest := 0
			for i, n := range s.MaxStreams {
				if i == 0 || n < lowest {
					lowest = n
				}
			}
			ch <- prometheus.MustNewConstMetric(m.maxStreams, prometheus.GaugeValue, float64(lowest), b.name, s.Address)
		}
	}
}

func (m *Metrics) register(b *Backend) {
	m.mu.Lock()
	m.backends[b] = struct{}{}
	m.mu.Unlock()
}

// backendMetrics are a backend's collectors with labels resolved once.
type backendMetrics struct {
	m          *Metrics
	name       string
	full       prometheus.Counter
	timeout    prometheus.Counter
	clientGone prometheus.Counter
	wait       prometheus.Observer
}

func (m *Metrics) forBackend(name string) *backendMetrics {
	return &backendMetrics{
		m:          m,
		name:       name,
		full:       m.rejected.WithLabelValues(name, reasonFull),
		timeout:    m.rejected.WithLabelValues(name, reasonTimeout),
		clientGone: m.rejected.WithLabelValues(name, reasonClientGone),
		wait:       m.wait.WithLabelValues(name),
	}
}

func (bm *backendMetrics) rejected(reason string) {
	switch reason {
	case reasonFull:
		bm.full.Inc()
	case reasonTimeout:
		bm.timeout.Inc()
	case reasonClientGone:
		bm.clientGone.Inc()
	}
}

func (bm *backendMetrics) waited(d time.Duration) { bm.wait.Observe(d.Seconds()) }

// bodyMemoryFull counts a body that found retry_body_memory full.
func (bm *backendMetrics) bodyMemoryFull() { bm.m.bodyFull.WithLabelValues(bm.name).Inc() }

// retried counts a retry; reasons are a fixed token set.
func (bm *backendMetrics) retried(reason string) { bm.m.retries.WithLabelValues(bm.name, reason).Inc() }

// forServer resolves the series of the backend's server at addr.
func (bm *backendMetrics) forServer(addr string) *serverObserver {
	return bm.m.forServer(bm.name, addr)
}

// resolved counts a DNS discovery resolution; results are a fixed token
// set.
func (m *Metrics) resolved(backend, result string) {
	m.resolutions.WithLabelValues(backend, result).Inc()
}

func (bm *backendMetrics) unregister(b *Backend) {
	bm.m.mu.Lock()
	delete(bm.m.backends, b)
	bm.m.mu.Unlock()
}

// serverObserver counts one server's connections, per protocol.
type serverObserver struct {
	m                   *Metrics
	key                 [2]string   // backend, address
	released            atomic.Bool // release has run
	h2cConns, h1Conns   prometheus.Gauge
	tunnels             prometheus.Gauge
	h2cOpened, h1Opened prometheus.Counter
	ejections           prometheus.Counter
	// goAways has one counter per code label value, in goAwayLabels'
	// order: all exist from the start, at 0, so that increase() sees a
	// code's first GOAWAY.
	goAways              []prometheus.Counter
	keepAliveCloses      prometheus.Counter
	windowLeaks          prometheus.Counter
	up                   prometheus.Gauge
	pass, fail           prometheus.Counter
	connReqs, connLife   prometheus.Observer
	probePass, probeFail prometheus.Counter
	ejectionLen          prometheus.Observer
	drained, weight      prometheus.Gauge
}

var _ poolObserver = (*serverObserver)(nil)

// forServer resolves a server's series; release deletes them once no
// server of that backend and address is left.
func (m *Metrics) forServer(backend, addr string) *serverObserver {
	key := [2]string{backend, addr}
	m.mu.Lock()
	m.servers[key]++
	m.mu.Unlock()
	goAways := make([]prometheus.Counter, 0, len(goAwayLabels))
	for _, code := range goAwayLabels {
		goAways = append(goAways, m.goaways.WithLabelValues(backend, addr, code))
	}
	return &serverObserver{
		m:         m,
		key:       key,
		h2cConns:  m.conns.WithLabelValues(backend, addr, H2C),
		h1Conns:   m.conns.WithLabelValues(backend, addr, H1),
		tunnels:   m.tunnels.WithLabelValues(backend, addr),
		h2cOpened: m.opened.WithLabelValues(backend, addr, H2C),
		h1Opened:  m.opened.WithLabelValues(backend, addr, H1),
		goAways:   goAways,
		ejections: m.ejected.WithLabelValues(backend, addr),
		up:        m.up.WithLabelValues(backend, addr),
		pass:      m.checks.WithLabelValues(backend, addr, "pass"),
		fail:      m.checks.WithLabelValues(backend, addr, "fail"),
		connReqs:  m.connReqs.WithLabelValues(backend, addr),
		connLife:  m.connLife.WithLabelValues(backend, addr),

		probePass:   m.probes.WithLabelValues(backend, addr, "pass"),
		probeFail:   m.probes.WithLabelValues(backend, addr, "fail"),
		ejectionLen: m.ejectLen.WithLabelValues(backend, addr),

		keepAliveCloses: m.kaCloses.WithLabelValues(backend, addr),
		windowLeaks:     m.leaks.WithLabelValues(backend, addr),
		drained:         m.admin.drained.WithLabelValues(backend, addr),
		weight:          m.admin.weight.WithLabelValues(backend, addr),
	}
}

// release drops the server's claim on its series, deleting them when it
// was the last server with that backend and address. Later updates through
// o go to series nobody exports. Calls after the first do nothing.
func (o *serverObserver) release() {
	if !o.released.CompareAndSwap(false, true) {
		return
	}
	m := o.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.servers[o.key]--; m.servers[o.key] > 0 {
		return
	}
	delete(m.servers, o.key)
	l := prometheus.Labels{"backend": o.key[0], "server": o.key[1]}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.conns, m.tunnels, m.opened, m.goaways, m.kaCloses, m.leaks, m.ejected, m.up, m.checks, m.connReqs, m.connLife,
		m.probes, m.ejectLen, m.admin.drained, m.admin.weight,
	} {
		v.DeletePartialMatch(l)
	}
}

func (o *serverObserver) connOpened(protocol string) {
	if protocol == H2C {
		o.h2cConns.Inc()
		o.h2cOpened.Inc()
		return
	}
	o.h1Conns.Inc()
	o.h1Opened.Inc()
}

func (o *serverObserver) connClosed(protocol string, requests uint64, lifetime time.Duration) {
	o.connReqs.Observe(float64(requests))
	o.connLife.Observe(lifetime.Seconds())
	if protocol == H2C {
		o.h2cConns.Dec()
		return
	}
	o.h1Conns.Dec()
}

// goAway counts a GOAWAY under its code. The counters were resolved with
// the observer: resolving one here would re-create a series release
// deleted, since a removed server's connection can still receive GOAWAY
// while or after the server shuts down.
func (o *serverObserver) goAway(code http2.ErrCode) {
	o.goAways[goAwayIndex(code)].Inc()
}

func (o *serverObserver) keepAliveClosed() { o.keepAliveCloses.Inc() }

func (o *serverObserver) windowLeak() { o.windowLeaks.Inc() }

func (o *serverObserver) checks(ok bool) {
	if ok {
		o.pass.Inc()
		return
	}
	o.fail.Inc()
}

func (o *serverObserver) probed(ok bool) {
	if ok {
		o.probePass.Inc()
		return
	}
	o.probeFail.Inc()
}

// Sampled are the collectors the stats page's history samples:
// sluice_queue_wait_seconds.
func (m *Metrics) Sampled() []prometheus.Collector {
	return []prometheus.Collector{m.wait}
}
