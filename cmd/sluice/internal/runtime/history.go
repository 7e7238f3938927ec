package runtime

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluice-gw/sluice/upstream"
)

// The stats page's history: one background goroutine samples the counters
// and gauges Sluice keeps anyway into a fixed ring, so the page can show the
// last 15 minutes. Nothing is added to the request path and nothing is
// written to disk.

const (
	historyEvery = 2 * time.Second
	historyLen   = int(15 * time.Minute / historyEvery) // 450 samples

	// Bucket slots per sample; the histograms sampled have at most this
	// many upper bounds (+Inf excluded). Extra bounds fold into +Inf.
	maxBuckets = 16
)

// Client protocols in sample.clients, as sluice_client_connections labels.
var clientProtos = [...]string{"http1", "h2c", "h2", "h3"}

// buckets is a cumulative histogram read: counts[i] observations at most
// bounds[i]; count is the total, +Inf included.
type buckets struct {
	bounds [maxBuckets]float64
	counts [maxBuckets]uint64
	n      int // bounds in use
	count  uint64
	sum    float64
}

// serverSample is one server at one sample.
type serverSample struct {
	backend, addr string // shared with upstream.Stats, not copied
	state         string // up, down, ejected, drain, draining (upstream.ServerStats.State)
	active, limit int32
}

// sample is the state at one moment; counters are cumulative, rates are
// deltas between neighbours.
type sample struct {
	t         int64 // unix ms
	clients   [len(clientProtos)]int32
	upstreams int32
	pending   int32
	requests  uint64 // completed requests, every code
	err5xx    uint64
	err499    uint64
	latency   buckets // sluice_request_duration_seconds, all backends
	wait      buckets // sluice_queue_wait_seconds, all backends
	// servers is reused slot to slot: once the ring has wrapped with a
	// steady set of servers, sampling allocates nothing for the ring.
	servers []serverSample
}

// ring holds the last len(buf) samples.
type ring struct {
	mu   sync.Mutex // guards the fields below
	buf  []sample
	next int // slot the next put overwrites
	n    int // samples held, at most len(buf)
}

func newRing(size int) *ring { return &ring{buf: make([]sample, size)} }

// put overwrites the oldest slot with fill's sample. fill gets the slot
// with its servers slice emptied but its capacity kept.
func (r *ring) put(fill func(*sample)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.buf[r.next]
	servers := s.servers[:0]
	*s = sample{servers: servers}
	fill(s)
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
}

// each calls f on the samples held, oldest first, under the ring's lock.
func (r *ring) each(f func(*sample)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := (r.next - r.n + len(r.buf)) % len(r.buf)
	for i := range r.n {
		f(&r.buf[(start+i)%len(r.buf)])
	}
}

// history owns the ring and the goroutine that fills it.
type history struct {
	ring  *ring
	every time.Duration
	fill  func(*sample)
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

func newHistory(every time.Duration, size int, fill func(*sample)) *history {
	return &history{ring: newRing(size), every: every, fill: fill, stop: make(chan struct{}), done: make(chan struct{})}
}

// start samples now and then every h.every until close.
func (h *history) start() {
	go func() {
		defer close(h.done)
		h.ring.put(h.fill)
		tick := time.NewTicker(h.every)
		defer tick.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-tick.C:
				h.ring.put(h.fill)
			}
		}
	}()
}

// close stops the sampler and waits for it.
func (h *history) close() {
	h.once.Do(func() { close(h.stop) })
	<-h.done
}

// sampler reads the live state into samples. Its scratch space is reused,
// so a sample costs a few small allocations in the prometheus and upstream
// snapshots only.
type sampler struct {
	lv  *live
	reg *prometheus.Registry // only the sampled collectors
	now func() time.Time
}

func newSampler(lv *live) *sampler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(lv.gm.Sampled()...)
	reg.MustRegister(lv.um.Sampled()...)
	return &sampler{lv: lv, reg: reg, now: time.Now}
}

func (sp *sampler) fill(s *sample) {
	s.t = sp.now().UnixMilli()
	for _, b := range sp.lv.snapshot() {
		st := b.Stats()
		s.pending += int32(st.Pending)
		for _, ss := range st.Servers {
			s.upstreams += int32(ss.Conns)
			limit := 0
			for _, n := range ss.MaxStreams {
				limit += n
			}
			s.servers = append(s.servers, serverSample{backend: st.Name, addr: ss.Address, state: ss.State,
				active: int32(ss.Active), limit: int32(limit)})
		}
	}
	mfs, err := sp.reg.Gather()
	if err != nil {
		sp.lv.log.Warn("stats history: gathering metrics", "err", err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "sluice_client_connections":
			for _, m := range mf.Metric {
				for i, p := range clientProtos {
					if label(m, "protocol") == p {
						s.clients[i] = int32(m.GetGauge().GetValue())
					}
				}
			}
		case "sluice_requests_total":
			for _, m := range mf.Metric {
				n := uint64(m.GetCounter().GetValue())
				s.requests += n
				code, _ := strconv.Atoi(label(m, "code"))
				switch {
				case code == 499:
					s.err499 += n
				case code >= 500 && code < 600:
					s.err5xx += n
				}
			}
		case "sluice_request_duration_seconds":
			for _, m := range mf.Metric {
				s.latency.add(m.GetHistogram())
			}
		case "sluice_queue_wait_seconds":
			for _, m := range mf.Metric {
				s.wait.add(m.GetHistogram())
			}
		}
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// add sums one histogram into b. Histograms of one family share bounds.
func (b *buckets) add(h *dto.Histogram) {
	if h == nil {
		return
	}
	b.count += h.GetSampleCount()
	b.sum += h.GetSampleSum()
	for i, bk := range h.Bucket {
		if i >= maxBuckets || math.IsInf(bk.GetUpperBound(), 1) {
			break
		}
		b.bounds[i] = bk.GetUpperBound()
		b.counts[i] += bk.GetCumulativeCount()
		b.n = max(b.n, i+1)
	}
}

// quantile estimates the q-quantile of the observations between prev and
// cur as histogram_quantile does: linear within the bucket. NaN without
// observations; the highest bound when the quantile is beyond it.
func quantile(q float64, prev, cur *buckets) float64 {
	total := float64(cur.count - prev.count)
	if cur.count < prev.count || total == 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i := range cur.n {
		c := float64(cur.counts[i] - prev.counts[i])
		if c >= rank {
			in := c - below
			if in <= 0 {
				return cur.bounds[i]
			}
			return lower + (cur.bounds[i]-lower)*(rank-below)/in
		}
		lower, below = cur.bounds[i], c
	}
	if cur.n == 0 {
		return math.NaN()
	}
	return cur.bounds[cur.n-1]
}

// num is a JSON number that encodes NaN as null: no data in that interval.
type num float64

func (n num) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, math.Round(float64(n)*1000)/1000, 'f', -1, 64), nil
}

// historyDoc is the "history" of /stats.json: one array per series, aligned
// with T. Rates and percentiles are over the interval ending at each point,
// so the oldest sample held only serves as the base of the first one.
type historyDoc struct {
	IntervalMs int64            `json:"interval_ms"`
	T          []int64          `json:"t"`
	Clients    map[string][]int `json:"client_connections"`
	Upstreams  []int            `json:"upstream_connections"`
	RPS        []num            `json:"requests_per_s"`
	Err5xx     []num            `json:"error_5xx_pct"`
	Err499     []num            `json:"error_499_pct"`
	P50        []num            `json:"latency_p50_ms"`
	P99        []num            `json:"latency_p99_ms"`
	Pending    []int            `json:"queue_pending"`
	WaitMean   []num            `json:"queue_wait_mean_ms"`
	WaitP99    []num            `json:"queue_wait_p99_ms"`
	Servers    []serverSeries   `json:"servers"`
	Events     []stateEvent     `json:"events"`
}

// serverSeries is one server's streams; null where it did not exist.
type serverSeries struct {
	Backend string `json:"backend"`
	Address string `json:"address"`
	Active  []num  `json:"streams_active"`
	Limit   []num  `json:"streams_limit"`
	State   string `json:"state"` // at the last point it appears
}

// stateEvent is a server's state change between two samples, placed at
// the later one. A server first seen after the start of the history
// appears with From "".
type stateEvent struct {
	T       int64  `json:"t"`
	Backend string `json:"backend"`
	Address string `json:"address"`
	From    string `json:"from"`
	To      string `json:"to"`
}

// doc builds the series from the ring.
func (h *history) doc() historyDoc {
	d := historyDoc{IntervalMs: h.every.Milliseconds(), Clients: map[string][]int{}}
	for _, p := range clientProtos {
		d.Clients[p] = []int{}
	}
	type key struct{ backend, addr string }
	idx := map[key]int{}
	last := map[key]string{}
	var prev *sample
	h.ring.each(func(s *sample) {
		defer func() { prev = s }()
		if prev == nil {
			for _, ss := range s.servers {
				last[key{ss.backend, ss.addr}] = ss.state
			}
			return
		}
		i := len(d.T)
		dt := float64(s.t-prev.t) / 1000
		d.T = append(d.T, s.t)
		for j, p := range clientProtos {
			d.Clients[p] = append(d.Clients[p], int(s.clients[j]))
		}
		d.Upstreams = append(d.Upstreams, int(s.upstreams))
		d.Pending = append(d.Pending, int(s.pending))
		reqs := float64(s.requests - prev.requests)
		if s.requests < prev.requests || dt <= 0 {
			reqs = math.NaN()
		}
		d.RPS = append(d.RPS, num(reqs/dt))
		pct := func(cur, old uint64) num {
			if reqs == 0 || math.IsNaN(reqs) {
				return num(math.NaN())
			}
			return num(100 * float64(cur-old) / reqs)
		}
		d.Err5xx = append(d.Err5xx, pct(s.err5xx, prev.err5xx))
		d.Err499 = append(d.Err499, pct(s.err499, prev.err499))
		d.P50 = append(d.P50, num(1000*quantile(.5, &prev.latency, &s.latency)))
		d.P99 = append(d.P99, num(1000*quantile(.99, &prev.latency, &s.latency)))
		// No request waited: the wait was zero, not unknown.
		waitMean, waitP99 := 0.0, 0.0
		if waited := float64(s.wait.count - prev.wait.count); waited > 0 {
			waitMean = 1000 * (s.wait.sum - prev.wait.sum) / waited
			waitP99 = 1000 * quantile(.99, &prev.wait, &s.wait)
		}
		d.WaitMean = append(d.WaitMean, num(waitMean))
		d.WaitP99 = append(d.WaitP99, num(waitP99))
		for _, ss := range s.servers {
			k := key{ss.backend, ss.addr}
			j, ok := idx[k]
			if !ok {
				j = len(d.Servers)
				idx[k] = j
				d.Servers = append(d.Servers, serverSeries{Backend: ss.backend, Address: ss.addr,
					Active: nans(len(d.T)), Limit: nans(len(d.T))})
			}
			sv := &d.Servers[j]
			for len(sv.Active) < len(d.T) {
				sv.Active = append(sv.Active, num(math.NaN()))
				sv.Limit = append(sv.Limit, num(math.NaN()))
			}
			sv.Active[i], sv.Limit[i], sv.State = num(ss.active), num(ss.limit), ss.state
			if from := last[k]; from != ss.state {
				d.Events = append(d.Events, stateEvent{T: s.t, Backend: ss.backend, Address: ss.addr, From: from, To: ss.state})
			}
			last[k] = ss.state
		}
	})
	for j := range d.Servers {
		sv := &d.Servers[j]
		for len(sv.Active) < len(d.T) {
			sv.Active = append(sv.Active, num(math.NaN()))
			sv.Limit = append(sv.Limit, num(math.NaN()))
		}
	}
	if d.T == nil {
		d.T = []int64{}
	}
	return d
}

func nans(n int) []num {
	out := make([]num, n)
	for i := range out {
		out[i] = num(math.NaN())
	}
	return out
}

// connRow is one row of the upstream connections table.
type connRow struct {
	upstream.ConnStats
	AgeS      num `json:"age_s"`
	PingRTTMs num `json:"last_ping_rtt_ms"`
}

func connRows(now time.Time, cs []upstream.ConnStats) []connRow {
	out := make([]connRow, len(cs))
	for i, c := range cs {
		out[i] = connRow{ConnStats: c, AgeS: num(now.Sub(c.Opened).Seconds()), PingRTTMs: num(math.NaN())}
		if !c.PingAt.IsZero() {
			out[i].PingRTTMs = num(float64(c.PingRTT) / float64(time.Millisecond))
		}
	}
	return out
}
