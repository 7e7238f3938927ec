// Package upstream owns backends: their servers, the choice of server for a
// request, the per-server connection pools (h2c or HTTP/1.1), protocol
// detection, and the bounded FIFO queue where requests wait for a free
// connection slot. A Backend is an http.RoundTripper for the gateway.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/h1compat"
)

// Config describes one backend. Zero values pick the documented defaults.
type Config struct {
	// Name labels metrics and logs.
	Name string
	// Protocol is Auto (default), H2C or H1.
	Protocol string
	// Balance is RoundRobin (default, weighted) or LeastRequest.
	Balance string
	// ProbeInterval is how often an HTTP/1.1-only server of an auto backend
	// is probed for h2c again. Zero means one minute.
	ProbeInterval time.Duration
	// Servers must not be empty unless Discovery names servers.
	Servers []ServerConfig
	H2C     H2CConfig
	H1      H1Config
	Queue   QueueConfig
	// ConnectTimeout bounds a dial or probe. Zero means 2s.
	ConnectTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers. Zero
	// means 30s.
	ResponseHeaderTimeout time.Duration
	// IdleTimeout ends a response whose body delivers no byte for this
	// long. Zero means no limit.
	IdleTimeout time.Duration
	// TotalTimeout bounds a whole request: queueing, every attempt and the
	// response body. Zero means no limit.
	TotalTimeout time.Duration
	// DrainTimeout is how long a server removed by Update may finish the
	// requests it carries; its connections close as they idle, and all
	// of them once this has passed. Zero means 30s.
	DrainTimeout time.Duration
	// Health configures active health checks.
	Health HealthConfig
	// Retries is how many times a failed request may be sent again.
	Retries int
	// RetryBodyLimit is the largest request body buffered so that the
	// request can be retried. Zero never buffers.
	RetryBodyLimit int64
	// IdempotentMethods are methods retried like GET besides the RFC 9110
	// idempotent ones.
	IdempotentMethods []string
	Passive           PassiveConfig

	// Discovery finds more servers in DNS (discovery.go).
	Discovery DiscoveryConfig
}

// H2CConfig bounds the h2c pool of each server.
type H2CConfig struct {
	// ConnsPerServer caps connections per server. Zero means 2.
	ConnsPerServer int
	// MaxStreamsPerConn caps concurrent streams per connection, below the
	// server's own SETTINGS_MAX_CONCURRENT_STREAMS. Zero means 100.
	MaxStreamsPerConn int
	// PingInterval sends a PING on a connection that received nothing for
	// this long; zero sends none.
	PingInterval time.Duration
	// PingTimeout closes a connection whose PING went unanswered this long.
	// Zero means 5s.
	PingTimeout time.Duration
}

// H1Config bounds the HTTP/1.1 pool of each server.
type H1Config struct {
	// ConnsPerServer caps connections per server. Zero means 64.
	ConnsPerServer int
	// IdleTimeout closes connections idle this long. Zero means 90s.
	IdleTimeout time.Duration
	// MaxTunnels caps the connections a server holds for protocol
	// switches (WebSocket), which are dialled apart from the pool whatever
	// the server's protocol. Zero means 1024.
	MaxTunnels int
}

// QueueConfig bounds the backend's wait queue.
type QueueConfig struct {
	// MaxPending caps waiting requests; zero means none may wait.
	MaxPending int
	// Timeout is the longest wait for a slot. Zero means 5s.
	Timeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Protocol == "" {
		c.Protocol = Auto
	}
	if c.Balance == "" {
		c.Balance = RoundRobin
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = time.Minute
	}
	if c.H2C.ConnsPerServer <= 0 {
		c.H2C.ConnsPerServer = 2
	}
	if c.H2C.MaxStreamsPerConn <= 0 {
		c.H2C.MaxStreamsPerConn = 100
	}
	if c.H1.ConnsPerServer <= 0 {
		c.H1.ConnsPerServer = 64
	}
	if c.H1.MaxTunnels <= 0 {
		c.H1.MaxTunnels = defaultMaxTunnels
	}
	if c.H1.IdleTimeout <= 0 {
		c.H1.IdleTimeout = 90 * time.Second
	}
	if c.Queue.Timeout <= 0 {
		c.Queue.Timeout = 5 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 2 * time.Second
	}
	if c.ResponseHeaderTimeout <= 0 {
		c.ResponseHeaderTimeout = 30 * time.Second
	}
	if c.H2C.PingTimeout <= 0 {
		c.H2C.PingTimeout = 5 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.Passive.EjectFor <= 0 {
		c.Passive.EjectFor = 10 * time.Second
	}
	if c.Passive.MaxEjectFor < c.Passive.EjectFor {
		c.Passive.MaxEjectFor = max(5*time.Minute, c.Passive.EjectFor)
	}
	if c.Passive.ProbeInterval <= 0 {
		c.Passive.ProbeInterval = time.Second
	}
	c.Health.setDefaults()
	c.Discovery.setDefaults()
}

// Abort handling. Tomcat counts every RST_STREAM it receives towards closing
// the whole connection (overhead protection), and Go's client sends a PING
// with each reset. So a request whose client left is not reset at once: it
// is given abortGrace to finish, and its response is read and discarded, up
// to drainLimit bytes. Only a request still running after that is reset.
const (
	abortGrace = time.Second
	drainLimit = 256 << 10
)

// Backend is a named group of servers sharing a queue and a balance policy.
// Its configuration and server list can be swapped by Update without
// touching the connections of servers that stay.
type Backend struct {
	name string
	st   atomic.Pointer[backendState]
	q    queue
	h1t  *http.Transport
	m    *backendMetrics
	mets *Metrics
	log  *slog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // warm-up, probe, prober, health and retire goroutines
	bgMu   sync.Mutex     // orders spawn's wg.Add before Close's cancel and Wait

	// detectCh is closed (and cleared) when a server's first detection
	// ends, waking requests in awaitDetection; detectMu guards it.
	detectMu sync.Mutex
	detectCh chan struct{}

	updateMu sync.Mutex // serialises Update; guards retired
	// retired were removed by Update and are draining; each leaves the
	// list when its retire goroutine closes it.
	retired []*Server
	// base is the configuration given to New or Update, without the
	// discovered servers; disc is the running DNS discovery, nil without
	// one; started is set by Start. All three guarded by updateMu.
	base    Config
	disc    *discovery
	started bool
	// lookupFor makes a discovery's resolver (tests replace it).
	lookupFor func(DiscoveryConfig) lookupFunc
}

// backendState is one configuration generation. Requests load it once and
// use it throughout, so a reload never changes a request midway.
type backendState struct {
	cfg     Config
	servers []*Server
	bal     balancer
	// idempotent holds the methods that may be retried after the server
	// may have seen them.
	idempotent map[string]bool
}

func (b *Backend) cur() *backendState { return b.st.Load() }

var _ http.RoundTripper = (*Backend)(nil)

// New builds a backend; Start opens its first connections.
func New(cfg Config, m *Metrics, log *slog.Logger) (*Backend, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Backend{
		name:   cfg.Name,
		h1t:    h1compat.NewTransport(h1compat.Config{}),
		m:      m.forBackend(cfg.Name),
		mets:   m,
		log:    log,
		ctx:    ctx,
		cancel: cancel,
		base:   cfg,

		lookupFor: dnsLookup,
	}
	st, _, _ := b.buildState(cfg, nil)
	b.q.max.Store(int64(cfg.Queue.MaxPending))
	b.st.Store(st)
	m.register(b)
	return b, nil
}

func (c *Config) validate() error {
	if len(c.Servers) == 0 && c.Discovery.Name == "" {
		return fmt.Errorf("upstream %s: no servers", c.Name)
	}
	if err := c.Discovery.validate(c.Name); err != nil {
		return err
	}
	switch c.Protocol {
	case Auto, H2C, H1:
	default:
		return fmt.Errorf("upstream %s: unknown protocol %q", c.Name, c.Protocol)
	}
	switch c.Balance {
	case RoundRobin, LeastRequest:
	default:
		return fmt.Errorf("upstream %s: unknown balance policy %q", c.Name, c.Balance)
	}
	return nil
}

// buildState makes a state for cfg, reusing the servers of old whose
// address and protocol setting are unchanged. It returns the servers it
// created and the old ones it dropped.
func (b *Backend) buildState(cfg Config, old *backendState) (st *backendState, added, removed []*Server) {
	reuse := map[string]*Server{}
	if old != nil && old.cfg.Protocol == cfg.Protocol {
		for _, s := range old.servers {
			reuse[s.addr] = s
		}
	}
	st = &backendState{cfg: cfg, idempotent: map[string]bool{}}
	for _, m := range append(defaultIdempotent, cfg.IdempotentMethods...) {
		st.idempotent[m] = true
	}
	for _, sc := range cfg.Servers {
		if s, ok := reuse[sc.Address]; ok {
			delete(reuse, sc.Address)
			s.conf.Store(&sc)
			st.servers = append(st.servers, s)
			continue
		}
		s := &Server{addr: sc.Address, b: b, obs: b.mets.forServer(cfg.Name, sc.Address), kick: make(chan struct{}, 1)}
		s.conf.Store(&sc)
		if cfg.Protocol != Auto {
			s.cur.Store(s.newPool(cfg.Protocol, &cfg))
		}
		st.servers = append(st.servers, s)
		added = append(added, s)
	}
	if old != nil {
		for _, s := range old.servers {
			if reuse[s.addr] == s {
				removed = append(removed, s)
			}
		}
	}
	st.bal, _ = newBalancer(cfg.Balance, st.servers)
	return st, added, removed
}

// Name is the backend's name.
func (b *Backend) Name() string { return b.name }

// Servers lists the backend's current servers.
func (b *Backend) Servers() []*Server { return b.cur().servers }

// Start detects protocols and opens one connection per server in the
// background, and starts re-probing HTTP/1.1 servers in auto mode.
func (b *Backend) Start() {
	b.warm(b.cur().servers)
	b.spawn(func() { b.probeLoop(b.ctx) })
	b.spawn(func() { b.healthLoop(b.ctx) })
	b.updateMu.Lock()
	b.started = true
	b.rediscoverLocked()
	b.updateMu.Unlock()
}

func (b *Backend) warm(servers []*Server) {
	for _, s := range servers {
		b.spawn(s.warm)
	}
}

// Ready reports whether at least one server may take requests.
func (b *Backend) Ready() bool {
	for _, s := range b.cur().servers {
		if s.usable() {
			return true
		}
	}
	return false
}

// Close stops background work, fails queued requests and closes every
// upstream connection.
func (b *Backend) Close() {
	b.bgMu.Lock()
	b.cancel()
	b.bgMu.Unlock()
	b.q.wakeAll()
	b.wg.Wait()
	for _, s := range b.cur().servers {
		s.shutDown()
	}
	b.updateMu.Lock()
	retired := b.retired
	b.retired = nil
	b.updateMu.Unlock()
	for _, s := range retired {
		s.shutDown()
	}
	b.m.unregister(b)
}

// RoundTrip sends req to a server of the backend. It waits in the backend's
// queue when every connection is busy, and sends the request again, on
// another server when there is one, when a failed attempt provably did not
// reach the server, or when the method is idempotent and the body can be
// replayed; and once more, elsewhere, when an idempotent request was
// answered 404 or 503 by a server shutting down (see suspectAnswer).
// The caller's request is not modified. The request is detached from the
// client's cancellation (see abortGrace), so a client leaving does not
// reset the upstream stream at once. A RequestInfo attached with WithInfo
// is filled in.
func (b *Backend) RoundTrip(req *http.Request) (*http.Response, error) {
	return b.RoundTripInfo(req, infoFrom(req.Context()))
}

// RoundTripInfo is RoundTrip filling in info, when not nil, and passing
// informational responses to info.Got1xx.
func (b *Backend) RoundTripInfo(req *http.Request, info *RequestInfo) (*http.Response, error) {
	st := b.cur()
	if IsUpgrade(req.Header) {
		return b.tunnel(req, st, info)
	}
	clientCtx := req.Context()
	var deadline time.Time
	if st.cfg.TotalTimeout > 0 {
		deadline = time.Now().Add(st.cfg.TotalTimeout)
	}
	// The caller's request is never modified (the http.RoundTripper
	// contract): each attempt sends a shallow copy with its own URL and
	// body (see send).
	var rp *replay
	reqBody, replayable := req.Body, true
	if st.cfg.Retries > 0 {
		var err error
		if rp, reqBody, replayable, err = prepareReplay(req, st.cfg.RetryBodyLimit); err != nil {
			return nil, fmt.Errorf("%w: reading request body: %w", ErrClientGone, err)
		}
	}
	var avoid *Server
	drainRetried := false
	for attempt := 0; ; attempt++ {
		s, p, c, err := b.acquire(clientCtx, st, avoid, deadline, info)
		if err != nil {
			var de *DialError
			if !errors.As(err, &de) || attempt >= st.cfg.Retries || !backoff(clientCtx, attempt) {
				return nil, err
			}
			b.m.retried(retryDial)
			continue
		}
		if clientCtx.Err() != nil {
			// The client left while the request waited for a slot: do
			// not send Tomcat work nobody will read (a rapid-reset
			// flood is exactly this).
			c.cc.Release()
			p.done()
			return nil, fmt.Errorf("%w: %w", ErrClientGone, context.Cause(clientCtx))
		}
		seq := c.reqs.Add(1)
		if info != nil {
			info.Server, info.Protocol, info.ConnID, info.ConnReq = s.addr, p.cfg.protocol, c.id, seq
			info.Attempts++
		}
		resp, wrote, err := b.send(req, reqBody, st, s, p, c, deadline, info)
		if err == nil {
			if !suspectAnswer(resp.StatusCode, s, p, c) || drainRetried || attempt >= st.cfg.Retries ||
				!replayable || !st.idempotent[req.Method] || !hasOther(st, s) {
				return resp, nil
			}
			// A server shutting down answers 404 while its webapps stop:
			// send the request once more, elsewhere.
			drainRetried = true
			resp.Body.Close()
			b.m.retried(retryDraining)
			if rp != nil {
				reqBody = rp.body()
			}
			avoid = s
			continue
		}
		s.failed(st)
		reason := retryReason(err, wrote, st.idempotent[req.Method], replayable)
		if reason == "" || attempt >= st.cfg.Retries || !backoff(clientCtx, attempt) {
			return nil, err
		}
		b.m.retried(reason)
		if rp != nil {
			reqBody = rp.body()
		}
		avoid = s
	}
}

// send makes one attempt on a reserved slot of cc, sending reqBody as the
// body of a copy of req. wrote reports whether the request headers were
// written, after which the server may have seen it.
func (b *Backend) send(req *http.Request, reqBody io.ReadCloser, st *backendState, s *Server, p *pool, c *pconn, deadline time.Time, info *RequestInfo) (*http.Response, bool, error) {
	clientCtx := req.Context()
	s.active.Add(1)
	s.requests.Add(1)

	// The tracker is the attempt's context: the client's values, but its
	// own cancellation (timeouts, and the client leaving abortGrace ago).
	// It also holds the attempt's URL, so the copy costs no allocation.
	t := &tracker{parent: clientCtx, s: s, p: p, idle: st.cfg.IdleTimeout, deadline: deadline, done: make(chan struct{})}
	t.url = *req.URL
	t.url.Scheme, t.url.Host = "http", s.addr
	t.trace.WroteHeaders = func() { t.wrote.Store(true) }
	if info != nil {
		t.trace.Got1xxResponse = info.Got1xx
	}
	// One timer per request: first the response header timeout, then the
	// idle timeout while the body streams. Its callback also runs when the
	// client leaves.
	fire := t.fire
	t.timer = time.AfterFunc(st.cfg.ResponseHeaderTimeout, fire)
	if !deadline.IsZero() {
		t.total = time.AfterFunc(time.Until(deadline), t.totalExpired)
	}
	t.stop = context.AfterFunc(clientCtx, fire)

	out := req.WithContext(httptrace.WithClientTrace(t, &t.trace))
	out.URL, out.Body = &t.url, reqBody
	resp, err := c.cc.RoundTrip(out)
	if err != nil {
		cause := t.cause()
		t.finish()
		switch {
		case clientCtx.Err() != nil:
			return nil, t.wrote.Load(), fmt.Errorf("%w: %w", ErrClientGone, err)
		case cause == ErrResponseHeaderTimeout:
			err = cause
		case cause == ErrTotalTimeout:
			err = ErrTotalTimeout
		}
		return nil, t.wrote.Load(), &RoundTripError{Addr: s.addr, Protocol: p.cfg.protocol, Err: err}
	}
	t.bodyPhase()
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		s.failedAnswer(st)
	default:
		s.succeeded()
	}
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		// Upgraded connections (WebSocket over HTTP/1.1) need the writable
		// body the ReverseProxy looks for, and are not subject to the idle
		// timeout of a request.
		t.timer.Stop()
		resp.Body = &upgradedBody{ReadWriteCloser: rwc, t: t}
		return resp, true, nil
	}
	t.body = body{rc: resp.Body, t: t}
	resp.Body = &t.body
	return resp, true, nil
}

// acquire reserves a connection slot, waiting in the queue if need be.
func (b *Backend) acquire(ctx context.Context, st *backendState, avoid *Server, deadline time.Time, info *RequestInfo) (*Server, *pool, *pconn, error) {
	if err := b.awaitDetection(ctx, st); err != nil {
		return nil, nil, nil, err
	}
	if b.q.len() == 0 {
		s, p, cc, err := b.try(st, avoid)
		if cc != nil || err != nil {
			return s, p, cc, err
		}
	}
	return b.wait(ctx, st, avoid, deadline, info)
}

// try takes a free slot on any server in rotation, opening a connection
// where the caps allow. It never probes: servers whose protocol is unknown
// or that are down are out of rotation until their prober brings them
// back. It returns all nils when the caller should wait, and an error only
// when no server could be reached and none has an open connection.
func (b *Backend) try(st *backendState, avoid *Server) (*Server, *pool, *pconn, error) {
	servers := st.servers
	n := len(servers)
	if n == 0 {
		// Discovery has found no server yet.
		return nil, nil, nil, fmt.Errorf("%w in backend %q", ErrNoHealthyServer, b.name)
	}
	start := st.bal.first(servers)
	now := time.Now().UnixNano()
	sel, any := eligible(servers, now, avoid)
	if !any {
		return nil, nil, nil, fmt.Errorf("%w in backend %q", ErrNoHealthyServer, b.name)
	}
	var lastErr error
	slow := st.cfg.Health.SlowStart
	for i := range n {
		s := servers[(start+i)%n]
		if !sel.ok(s) || i == 0 && n > 1 && !s.admits(slow, now) {
			continue
		}
		if p := s.cur.Load(); p != nil {
			if cc := p.tryAcquire(); cc != nil {
				return s, p, cc, nil
			}
		}
	}
	for i := range n {
		s := servers[(start+i)%n]
		p := s.cur.Load()
		if p == nil || !sel.ok(s) {
			continue
		}
		err := p.grow()
		if errors.Is(err, ErrNoCapacity) {
			continue
		}
		if err != nil {
			s.failed(st)
			if p.stats().conns == 0 {
				// Out of rotation until its prober sees it answer.
				s.unreachable(err)
			}
			lastErr = err
			continue
		}
		if cc := p.tryAcquire(); cc != nil {
			return s, p, cc, nil
		}
		return nil, nil, nil, nil
	}
	if lastErr != nil && !anyOpen(servers) {
		return nil, nil, nil, lastErr
	}
	return nil, nil, nil, nil
}

func anyOpen(servers []*Server) bool {
	for _, s := range servers {
		if p := s.cur.Load(); p != nil && p.stats().conns > 0 {
			return true
		}
	}
	return false
}

// wait parks the request in the FIFO queue until a slot frees up, the queue
// timeout passes or the client leaves.
func (b *Backend) wait(ctx context.Context, st *backendState, avoid *Server, deadline time.Time, info *RequestInfo) (*Server, *pool, *pconn, error) {
	w := &waiter{ch: make(chan struct{}, 1)}
	if !b.q.enqueue(w) {
		b.m.rejected(reasonFull)
		return nil, nil, nil, ErrQueueFull
	}
	start := time.Now()
	if info != nil {
		defer func() { info.QueueWait += time.Since(start) }()
	}
	wait, timeoutErr := st.cfg.Queue.Timeout, ErrQueueTimeout
	if !deadline.IsZero() && time.Until(deadline) < wait {
		wait, timeoutErr = time.Until(deadline), ErrTotalTimeout
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	leave := func(err error, reason string) (*Server, *pool, *pconn, error) {
		if b.q.remove(w) {
			// We were woken but will not use the slot: pass it on.
			b.q.wake()
		}
		if reason != "" {
			b.m.rejected(reason)
		}
		b.m.waited(time.Since(start))
		return nil, nil, nil, err
	}
	for {
		s, p, cc, err := b.try(st, avoid)
		if cc != nil || err != nil {
			b.q.remove(w)
			// Capacity often frees in bulk (a new connection, a burst of
			// completions): let the next waiter look too.
			b.q.wake()
			b.m.waited(time.Since(start))
			return s, p, cc, err
		}
		select {
		case <-w.ch:
			b.q.requeue(w)
		case <-timer.C:
			return leave(timeoutErr, reasonTimeout)
		case <-ctx.Done():
			return leave(fmt.Errorf("%w: %w", ErrClientGone, context.Cause(ctx)), reasonClientGone)
		case <-b.ctx.Done():
			return leave(ErrClosed, "")
		}
	}
}

// Stats is a snapshot of a backend for metrics, readiness and logs.
type Stats struct {
	Name    string        `json:"name"`
	Pending int           `json:"queue_pending"`
	Servers []ServerStats `json:"servers"`
	// Discovery is the DNS discovery's state, nil without one.
	Discovery *DiscoveryStats `json:"discovery,omitempty"`
}

// ServerStats is a snapshot of one server.
type ServerStats struct {
	Address  string `json:"address"`
	Protocol string `json:"protocol"` // h2c, h1, or "" before detection
	// State is up, down (failed health checks or unreachable), ejected
	// (passive health) or draining (removed by a reload).
	State  string `json:"state"`
	Conns  int    `json:"connections"`
	Active int    `json:"active_streams"`
	// MaxStreams lists, per open connection, the concurrent streams it
	// allows: the lower of the server's SETTINGS and the config.
	MaxStreams []int  `json:"max_streams_per_connection"`
	Requests   uint64 `json:"requests"` // attempts sent, ever
	Errors     uint64 `json:"errors"`   // failed attempts and 5xx answers, ever
	Usable     bool   `json:"usable"`

	// Tunnels counts the connections held for protocol switches
	// (WebSocket), apart from Conns.
	Tunnels int `json:"tunnels"`
}

// Stats snapshots the backend.
func (b *Backend) Stats() Stats {
	st := b.cur()
	out := Stats{Name: b.name, Pending: b.q.len(), Servers: make([]ServerStats, 0, len(st.servers)), Discovery: b.discoveryStats()}
	now := time.Now().UnixNano()
	for _, s := range st.servers {
		ss := ServerStats{
			Address: s.addr, Protocol: s.Protocol(), Active: int(s.active.Load()), Usable: s.usable(),
			Requests: s.requests.Load(), Errors: s.errors.Load(), State: "up", Tunnels: s.tun.count(),
		}
		switch {
		case s.ejected(now):
			ss.State = "ejected"
		case !ss.Usable:
			ss.State = "down"
		}
		if p := s.cur.Load(); p != nil {
			ss.MaxStreams = p.maxStreams()
			ss.Conns = len(ss.MaxStreams)
		}
		out.Servers = append(out.Servers, ss)
	}
	b.updateMu.Lock()
	for _, s := range b.retired {
		ss := ServerStats{Address: s.addr, Protocol: s.Protocol(), Active: int(s.active.Load()), State: "draining",
			Requests: s.requests.Load(), Errors: s.errors.Load(), Tunnels: s.tun.count()}
		if p := s.cur.Load(); p != nil {
			ss.MaxStreams = p.maxStreams()
			ss.Conns = len(ss.MaxStreams)
		}
		if ss.Conns > 0 || ss.Active > 0 || ss.Tunnels > 0 {
			out.Servers = append(out.Servers, ss)
		}
	}
	b.updateMu.Unlock()
	return out
}
