// Package gateway owns the client side of Sluice: the listener that speaks
// HTTP/1.1 and h2c to clients, routing by host and path, and proxying each
// request to its backend's RoundTripper with correct proxy semantics
// (hop-by-hop headers, X-Forwarded-*, streaming bodies, trailers, 1xx).
package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/gateway/h1"
)

// Config is the client-facing side. Zero values pick the defaults.
type Config struct {
	// Routes are matched in order; the first match wins. A request that
	// matches none gets 404.
	Routes []Route
	// ReadHeaderTimeout bounds reading a request's headers. Zero means 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes client connections idle this long. Zero means 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps request header size; more gets 431. HTTP/1.1
	// counts the head's bytes, with Go's 4 KiB of slack (the guard,
	// sanitize.go); HTTP/2 and HTTP/3 count as SETTINGS_MAX_HEADER_LIST_SIZE
	// does (headSize). Zero means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// ErrorPages replaces the short text body of the errors Sluice
	// answers itself (404 no route, 502, 503, 504), by status. Nil means
	// text only.
	ErrorPages map[int]ErrorPage
	// MaxConns caps open client connections across all TCP listeners;
	// more are closed at once. Zero means 100000.
	MaxConns int
	// MaxHeaderCount caps request header fields; more get 431. Zero means
	// 100.
	MaxHeaderCount int
	// MaxRequestBody caps request bodies in bytes; larger get 413. Zero
	// means no limit.
	MaxRequestBody int64
	// MaxConcurrentStreams caps streams per HTTP/2 client connection.
	// Zero means 250.
	MaxConcurrentStreams int
	// ResetLimit is how many streams an HTTP/2 client connection may reset
	// within a second before it is closed (reset.go). Zero means 100;
	// negative, no limit.
	ResetLimit int
	// TrustedProxies are networks whose X-Forwarded-For is kept and
	// appended to; from anyone else it is replaced by the peer address.
	TrustedProxies []netip.Prefix
	// AccessLog, when not nil, gets one line per request.
	AccessLog *AccessLog
	// AltSvc, when set, is sent as Alt-Svc on TCP responses (HTTP/3
	// advertisement), e.g. `h3=":443"; ma=86400`.
	AltSvc string
}

// DefaultMaxHeaderBytes is the request head limit when Config leaves it at
// zero: 32 KiB, above what browsers and APIs send (Tomcat's own default is
// 8 KiB, HAProxy's about 15 KiB), far below the 1 MiB that Go's server
// would accept.
const DefaultMaxHeaderBytes = 32 << 10

// maxHeaderBytes is Config.MaxHeaderBytes with its default.
func (g *Gateway) maxHeaderBytes() int {
	if g.cfg.MaxHeaderBytes > 0 {
		return g.cfg.MaxHeaderBytes
	}
	return DefaultMaxHeaderBytes
}

// maxHeaderCount is Config.MaxHeaderCount with its default.
func (g *Gateway) maxHeaderCount() int {
	if g.cfg.MaxHeaderCount > 0 {
		return g.cfg.MaxHeaderCount
	}
	return 100
}

// maxHeadHard is the head size the protocol layers accept, whatever the
// configured limit: Go's HTTP/2 server advertises it as
// SETTINGS_MAX_HEADER_LIST_SIZE and quic-go refuses larger HEADERS frames,
// and Go's server closes an HTTP/2 connection whose header block runs past
// it (CONTINUATION floods, CVE-2023-45288). Under it, the configured limit
// is applied per request, so that a head over it gets 431 rather than a
// closed connection: by the guard on HTTP/1.1 (sanitize.go), by
// checkLimits on HTTP/2 and HTTP/3. It is Go's default.
const maxHeadHard = 1 << 20

// protocolHeaderBytes is the head limit given to Go's server and quic-go:
// maxHeadHard, or the configured limit if larger.
func (g *Gateway) protocolHeaderBytes() int {
	return max(g.maxHeaderBytes(), maxHeadHard)
}

// headSize is the size of r's head as HTTP/2 and HTTP/3 count it against
// SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 6.5.2): each field's name and
// value plus 32 bytes, the pseudo-header fields included (:scheme taken
// from the connection). HTTP/2 cookie fields, joined by Go's server,
// count as one.
func headSize(r *http.Request) int {
	const perField = 32
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	n := len(":method") + len(r.Method) + len(":path") + len(r.RequestURI) +
		len(":authority") + len(r.Host) + len(":scheme") + len(scheme) + 4*perField
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + perField
		}
	}
	return n
}

// Gateway routes client requests to backends. It is an http.Handler.
type Gateway struct {
	cfg     Config // listener settings; Routes and ErrorPages as at New
	table   atomic.Pointer[routeTable]
	m       *Metrics
	log     *slog.Logger
	conns   connTracker
	noRoute requestMetrics

	open atomic.Int64 // client connections open across TCP listeners

	tunnels tunnels // spliced connections of protocol switches (upgrade.go)

	mu      sync.Mutex        // serialises Update; guards proxies
	proxies map[string]*proxy // by backend name, kept across updates
}

// routeTable is one generation of routes and error pages, swapped whole by
// Update so a request sees either the old or the new one.
type routeTable struct {
	router router
	pages  map[int]ErrorPage
	// slotted are the routes' backends that report their connection
	// slots (upstream.Backend.Slots), for admitLimit.
	slotted []slotted
}

// slotted is a backend that tells how many requests it can take at once.
type slotted interface{ Slots() int }

// admitLimit is how many requests the HTTP/1.1 front end lets run at once
// (h1.Server.AdmitLimit): the routes' backends' slots, all together, or
// 0 (no limit) when none of them tells.
func (g *Gateway) admitLimit() int {
	n := 0
	for _, b := range g.table.Load().slotted {
		n += b.Slots()
	}
	return n
}

// New builds a gateway. backends maps backend names to their
// RoundTrippers (upstream.Backend in production); every route's backend must
// be there.
func New(cfg Config, backends map[string]http.RoundTripper, m *Metrics, log *slog.Logger) (*Gateway, error) {
	g := &Gateway{cfg: cfg, m: m, log: log, conns: connTracker{m: m}, noRoute: m.forNoRoute(), proxies: map[string]*proxy{}}
	g.conns.init()
	g.tunnels.idle = g.idleTimeout()
	if err := g.Update(cfg.Routes, backends, cfg.ErrorPages); err != nil {
		return nil, err
	}
	return g, nil
}

// Update swaps in new routes, backends and error pages (a config reload).
// Requests already routed finish where they were sent. On error nothing
// changes.
func (g *Gateway) Update(routes []Route, backends map[string]http.RoundTripper, pages map[int]ErrorPage) error {
	if len(routes) == 0 {
		return errors.New("gateway: no routes")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	t := &routeTable{pages: pages}
	next := map[string]*proxy{}
	for i, r := range routes {
		p, ok := next[r.Backend]
		if !ok {
			rt, ok := backends[r.Backend]
			if !ok {
				return fmt.Errorf("gateway: routes[%d]: unknown backend %q", i, r.Backend)
			}
			if sl, ok := rt.(slotted); ok {
				t.slotted = append(t.slotted, sl)
			}
			if old := g.proxies[r.Backend]; old != nil && old.rt == rt {
				p = old
			} else {
				p = newProxy(r.Backend, rt, g.pages, g.m.forBackend(r.Backend), g.log, g.trusted, &g.tunnels)
			}
			next[r.Backend] = p
		}
		t.router.add(r, p)
	}
	g.proxies = next
	g.table.Store(t)
	return nil
}

// ClientConns is the number of open client connections, all protocols.
func (g *Gateway) ClientConns() int { return int(g.open.Load() + g.conns.h3.Load()) }

func (g *Gateway) pages() map[int]ErrorPage { return g.table.Load().pages }

// trusted reports whether the request's peer is a trusted proxy.
func (g *Gateway) trusted(r *http.Request) bool {
	if len(g.cfg.TrustedProxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range g.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// checkLimits applies the request limits Go's server does not: header
// count, head size on HTTP/2 and HTTP/3 (HTTP/1.1 heads are measured by
// the guard, as they are read: sanitize.go) and body size. It returns a
// status, the reason it is counted under and a message, or 0.
func (g *Gateway) checkLimits(r *http.Request) (code int, reason, msg string) {
	maxHeaders := g.maxHeaderCount()
	n := 0
	for _, v := range r.Header {
		n += len(v)
	}
	if n > maxHeaders {
		return http.StatusRequestHeaderFieldsTooLarge, reasonTooManyHeaders, fmt.Sprintf("too many header fields (%d, limit %d)\n", n, maxHeaders)
	}
	if r.ProtoMajor >= 2 {
		if size, max := headSize(r), g.maxHeaderBytes(); size > max {
			return http.StatusRequestHeaderFieldsTooLarge, reasonHeaderTooLarge, fmt.Sprintf("request header fields too large (%d bytes, limit %d)\n", size, max)
		}
	}
	if max := g.cfg.MaxRequestBody; max > 0 {
		if r.ContentLength > max {
			return http.StatusRequestEntityTooLarge, reasonBodyTooLarge, fmt.Sprintf("request body too large (limit %d bytes)\n", max)
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(nil, r.Body, max)
		}
	}
	return 0, "", ""
}

// ServeHTTP routes and proxies one request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	p := g.route(w, r, start)
	if p == nil {
		return
	}
	ex := getExchange()
	sw := &ex.sw
	sw.ResponseWriter, sw.code, sw.n = w, 0, 0
	// Runs also when the proxy aborts with http.ErrAbortHandler after a
	// failed body copy.
	defer g.finish(p, r, sw, ex, start)
	p.serve(sw, r, ex)
}

// route checks r against the gateway's limits and picks its backend's
// proxy. It answers the requests that go no further (over a limit, no
// route, the client already gone) and returns nil for them.
//
//go:noinline
func (g *Gateway) route(w http.ResponseWriter, r *http.Request, start time.Time) *proxy {
	g.conns.classify(r)
	if code, reason, msg := g.checkLimits(r); code != 0 {
		g.conns.reject(reason)
		writeError(w, nil, code, msg)
		g.noRoute.observe(code, time.Since(start))
		return nil
	}
	if g.cfg.AltSvc != "" && r.ProtoMajor < 3 {
		w.Header().Set("Alt-Svc", g.cfg.AltSvc)
	}
	t := g.table.Load()
	p := t.router.match(r.Host, r.URL.Path)
	if p == nil {
		writeError(w, t.pages, http.StatusNotFound, "no route for this host and path\n")
		g.noRoute.observe(http.StatusNotFound, time.Since(start))
		return nil
	}
	if r.ProtoMajor == 1 && r.ContentLength != 0 {
		// Tomcat may answer before it has read the whole upload (an echo, an
		// early error). Without full duplex, Go's HTTP/1.1 server stops
		// reading the request body once the response starts, and the
		// upstream gets a truncated body.
		if fd, ok := w.(interface{ EnableFullDuplex() error }); ok {
			fd.EnableFullDuplex()
		}
	}
	if r.Context().Err() != nil {
		// The client reset the stream before its handler ran, as every
		// stream of an HTTP/2 rapid-reset flood is: sending the request
		// on would only make Tomcat do the work for nobody. (The flood
		// itself is cut where its frames are read: reset.go.)
		p.m.observe(StatusClientClosed, time.Since(start))
		return nil
	}
	return p
}

// finish records a proxied request (metrics, access log) and gives its
// exchange, status writer included, back.
//
//go:noinline
func (g *Gateway) finish(p *proxy, r *http.Request, sw *statusWriter, ex *exchange, start time.Time) {
	d := time.Since(start)
	code := sw.status()
	p.m.observe(code, d)
	p.m.bytesOut.Add(float64(sw.n))
	if g.cfg.AccessLog != nil {
		g.cfg.AccessLog.record(r, code, sw.n, p.name, &ex.info, d)
	}
	ex.release()
}

// statusWriter records the final status for metrics. Unwrap keeps
// http.ResponseController (flush, deadlines) working through it.
type statusWriter struct {
	http.ResponseWriter
	code int
	n    int64 // body bytes written
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// writeHeaderFields is WriteHeader through the wrapped writer's
// h1.FieldsWriter (copyFields).
func (w *statusWriter) writeHeaderFields(code int, fields [][2]string) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.(h1.FieldsWriter).WriteHeaderFields(code, fields)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		// Nothing written: the handler was aborted before the headers.
		return http.StatusBadGateway
	}
	return w.code
}

// codeLabel formats a status for the code label without allocating for the
// common ones.
func codeLabel(code int) string {
	if code >= 100 && code < 600 {
		return codeLabels[code]
	}
	return strconv.Itoa(code)
}

var codeLabels = func() (l [600]string) {
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return
}()
