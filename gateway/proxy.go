package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http/httpguts"

	"github.com/sluice-gw/sluice/gateway/h1"
	"github.com/sluice-gw/sluice/upstream"
)

// proxy forwards the requests of one backend. It does what
// httputil.ReverseProxy with our Rewrite did, with the same semantics, but
// without the per-request clones, closures and header canonicalisation that
// made ReverseProxy a fifth of the gateway's allocations (see
// BenchmarkProxyRequest): hop-by-hop headers (and those named by
// Connection) are stripped both ways, X-Forwarded-For/-Host/-Proto and
// Forwarded are stripped then set, TE: trailers is kept, the client's Host
// is kept, 1xx responses and trailers are passed on, streaming responses are
// flushed as they arrive, and a body copy failing midway aborts the handler
// with http.ErrAbortHandler. Protocol upgrades (WebSocket) hijack the
// client connection and splice it to an upstream one (upgrade.go).
type proxy struct {
	name    string
	rt      http.RoundTripper
	info    infoRoundTripper // rt, when it reports RequestInfo directly
	tun     *tunnels         // the gateway's spliced connections (upgrade.go)
	m       requestMetrics
	pages   func() map[int]ErrorPage
	log     *slog.Logger
	trusted func(*http.Request) bool
}

// infoRoundTripper is upstream.Backend's RoundTripInfo, which fills in the
// RequestInfo the access log reads.
type infoRoundTripper interface {
	RoundTripInfo(*http.Request, *upstream.RequestInfo) (*http.Response, error)
}

var _ infoRoundTripper = (*upstream.Backend)(nil)

func newProxy(name string, rt http.RoundTripper, pages func() map[int]ErrorPage, m requestMetrics, log *slog.Logger, trusted func(*http.Request) bool, tun *tunnels) *proxy {
	p := &proxy{name: name, rt: rt, m: m, pages: pages, log: log, trusted: trusted, tun: tun}
	p.info, _ = rt.(infoRoundTripper)
	return p
}

// fail answers a request whose round trip failed.
func (p *proxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := errorStatus(err, r.Context().Err() != nil, p.name)
	if sw, ok := w.(*statusWriter); ok && code == StatusClientClosed {
		sw.code = StatusClientClosed
		p.log.Debug("client went away", "backend", p.name, "path", r.URL.Path, "err", err)
		return
	}
	p.log.Warn("proxy error", "backend", p.name, "method", r.Method, "host", r.Host, "path", r.URL.Path, "status", code, "err", err)
	writeError(w, p.pages(), code, msg+"\n")
}

// exchange is the per-request state of a proxied request: the outbound
// request, its URL and header, the X-Forwarded-* values and what the
// backend reports. Exchanges are pooled (getExchange): reused only once
// the backend is done with the request, which the RoundTripper contract
// puts at the response body's Close (no 1xx comes after the final
// response, and the outbound request may be reused from then on), after
// an h2c or an HTTP/1.1 round trip alike (see serve); an exchange whose
// round trip failed, panicked or switched protocols is left to the GC
// (release).
// What may outlive the request, the body passed upstream (a stream's
// writer), is allocated apart.
type exchange struct {
	exchangeReq                       // zeroed for reuse
	hdr         upstream.HeaderList   // the outbound header; cleared for reuse
	trace       httptrace.ClientTrace // passes 1xx responses on (got1xx), bound once
	resFields   [][2]string           // the response header passed on as a list (copyFields); cleared for reuse
	// sw is the request's status writer (Gateway.ServeHTTP): one pooled
	// object per request, not two.
	sw statusWriter
}

// exchangeReq is the part of an exchange that release zeroes.
type exchangeReq struct {
	out http.Request
	url url.URL
	xf  [2]string // X-Forwarded-For, X-Forwarded-Host
	// teTrailers: the client's TE field lists trailers (outHeader), kept
	// for the response, when the request's header map is no longer in
	// this core's cache (the round trip parked the goroutine).
	teTrailers bool
	info       upstream.RequestInfo
	body       *reqBody // the client's body, when it has one

	w    http.ResponseWriter
	mu   sync.Mutex // guards done and w's header map between got1xx and the final response
	done bool       // the round trip returned: 1xx responses are ignored

	reusable bool // the response body was closed: the backend is done with it
}

var exchanges = sync.Pool{New: func() any {
	ex := &exchange{hdr: upstream.HeaderList{Fields: make([]upstream.Field, 0, 16)}}
	ex.trace.Got1xxResponse = ex.got1xx
	return ex
}}

func getExchange() *exchange { return exchanges.Get().(*exchange) }

// release gives ex back to the pool, cleared, if the backend is done
// with it.
func (ex *exchange) release() {
	if !ex.reusable {
		return
	}
	ex.hdr.Reset()
	clear(ex.resFields)
	ex.resFields = ex.resFields[:0]
	ex.exchangeReq = exchangeReq{}
	ex.sw.ResponseWriter = nil
	exchanges.Put(ex)
}

// reqBody passes the client's body upstream and counts it. Close does not
// close the client's body: the transport closes the outbound body when it
// fails, and closing a body whose 100-continue is still pending would hang.
// Reading after Close fails, as the transport may outlive the handler.
type reqBody struct {
	rc     io.ReadCloser
	n      prometheus.Counter // sluice_bytes_total{direction="in"}
	closed atomic.Bool
	// sole: the client is on HTTP/1.x, so nothing else of its comes
	// while this body waits to be read (client.SoleBody).
	sole bool
}

// Sole tells the h2c client that holding this body back holds back no
// other request (client.SoleBody).
func (b *reqBody) Sole() bool { return b.sole }

// bodiless reports whether method's requests have no body by their
// semantics (RFC 9110), though a client may still send one.
func bodiless(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// probeBody looks at the body of an HTTP/2 or HTTP/3 request that did not
// end with its HEADERS and said no length (HTTP/3 requests always come so:
// quic-go gives every one a body of unknown length), for a method that
// has no body by its semantics: nil when it ends at once (the request goes
// upstream without one: END_STREAM on its HEADERS, so the server allots it
// no receive buffer, Tomcat 1 MiB per stream at the shipped
// initialWindowSize, and the transport may retry it), else a body that
// gives what the look read back first. The look blocks until the client
// sends its first byte or ends the stream, as the upstream would have
// waited for them.
func probeBody(rc io.ReadCloser) io.ReadCloser {
	pb := &probedBody{rc: rc}
	for range 64 {
		n, err := rc.Read(pb.b[:])
		if n > 0 || err != nil && err != io.EOF {
			pb.n, pb.err = n, err
			return pb
		}
		if err == io.EOF {
			return nil
		}
	}
	return pb // no byte and no end after 64 empty reads: read on as it comes
}

// probedBody is a request body whose first byte probeBody read.
type probedBody struct {
	rc  io.ReadCloser
	b   [1]byte
	n   int   // bytes of b not yet given back
	err error // what the read of b returned with it (io.EOF: the body ended), or its failure
}

func (b *probedBody) Read(p []byte) (int, error) {
	if b.n > 0 && len(p) > 0 {
		p[0], b.n = b.b[0], 0
		if b.err == io.EOF {
			return 1, io.EOF
		}
		return 1, nil
	}
	if b.err != nil {
		return 0, b.err
	}
	return b.rc.Read(p)
}

func (b *probedBody) Close() error { return b.rc.Close() }

var errReadAfterClose = errors.New("gateway: read on the request body after the handler returned")

func (b *reqBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errReadAfterClose
	}
	n, err := b.rc.Read(p)
	if n > 0 {
		b.n.Add(float64(n))
	}
	return n, err
}

func (b *reqBody) Close() error {
	b.closed.Store(true)
	return nil
}

// got1xx forwards an informational response (103 Early Hints, 100
// Continue...) to the client.
func (ex *exchange) got1xx(code int, header textproto.MIMEHeader) error {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.done {
		return nil
	}
	h := ex.w.Header()
	for k, vv := range header {
		if _, ok := h[k]; !ok && len(vv) > 0 {
			h[k] = vv
		}
	}
	ex.w.WriteHeader(code)
	// WriteHeader does not clear the header map after a 1xx. Only the keys
	// this 1xx added (the very slices it brought) are removed, so headers
	// set before it (Alt-Svc) stay for the final response.
	for k, vv := range header {
		if hv := h[k]; len(hv) > 0 && len(vv) > 0 && &hv[0] == &vv[0] {
			delete(h, k)
		}
	}
	return nil
}

// Static header values, shared by every request and never modified.
var (
	valTrailers = []string{"trailers"}
	valEmpty    = []string{""} // no User-Agent: the transport must not add Go's
	valHTTP     = []string{"http"}
	valHTTPS    = []string{"https"}
)

// hopByHop reports whether the canonical header key k is hop-by-hop (RFC
// 9110 section 7.6.1, plus the ones ReverseProxy also strips).
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// forwarding reports whether k is a forwarding header the client may not
// set: it is replaced by what the gateway saw.
func forwarding(k string) bool {
	switch k {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return false
}

// upgradeType is the protocol a request asks to switch to, or "".
func upgradeType(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade") {
		return ""
	}
	if v := h["Upgrade"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// serve proxies r. It panics with http.ErrAbortHandler when the response
// body fails midway, as ReverseProxy does, so the client sees a truncated
// response rather than a complete-looking one.
//
// Stack: an HTTP/2 or HTTP/3 request runs on a goroutine of its own,
// started with the runtime's adaptive starting stack, and the handler's
// frames down to the upstream h2c stream and to Go's HTTP/2 response
// writer are all on it at once. Any frame too many (a rarely taken branch
// or a big struct inlined into a function of that path) makes every
// request copy its stack, which a CPU profile shows as runtime.newstack.
// So the functions that stay on the stack during the round trip
// (Gateway.ServeHTTP, serve, upstream's RoundTripInfo and send, the h2c
// client's roundTrip) keep only what the round trip needs, and what they
// do before or after it is in helpers of their own, marked noinline as
// profile-guided inlining would merge them back. TestH2RequestStack
// holds the path to its budget.
func (p *proxy) serve(w *statusWriter, r *http.Request, ex *exchange) {
	if up := upgradeType(r.Header); up != "" && r.ProtoMajor == 1 && upstream.IsUpgrade(r.Header) {
		// Protocol switch (WebSocket): the client connection is hijacked
		// and spliced to an upstream connection (upgrade.go). Upgrade:
		// h2c (deprecated by RFC 9113; Go's server does not do it) is
		// answered as the plain HTTP/1.1 request it also is.
		p.upgrade(w, r, ex, up)
		return
	}
	out := p.outRequest(w, r, ex)
	if out.Body != nil {
		defer ex.body.Close()
	}
	res, err := p.roundTrip(w, out, ex)
	if err != nil {
		p.fail(w, out, err)
		return
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		p.unexpectedSwitch(w, out, res)
		return
	}
	p.copyResponse(w, r, res, ex)
	// Both of Sluice's clients write the request head before RoundTrip
	// returns and read nothing of the request after but its body (apart,
	// see exchange) and, on HTTP/1.1, its Trailer map (the client's).
	// Another RoundTripper (a test's) may keep the request it was given.
	ex.reusable = ex.info.Protocol == upstream.H2C || ex.info.Protocol == upstream.H1
}

// unexpectedSwitch fails a request answered 101 Switching Protocols,
// which it never asked for (upgrades take their own path in serve).
//
//go:noinline
func (p *proxy) unexpectedSwitch(w *statusWriter, out *http.Request, res *http.Response) {
	res.Body.Close()
	p.fail(w, out, errors.New("gateway: unexpected 101 Switching Protocols"))
}

// outRequest builds the outbound request in ex; w is r's writer.
//
//go:noinline
func (p *proxy) outRequest(w *statusWriter, r *http.Request, ex *exchange) *http.Request {
	out := &ex.out
	*out = *r // shallow: the context, method, trailers and body travel as they are
	ex.url = *r.URL
	out.URL = &ex.url
	// The backend fills in the server address once it has chosen one; the
	// scheme is always http, whatever the client used, as a cleartext
	// Tomcat connector rejects :scheme https.
	ex.url.Scheme, ex.url.Host = "http", p.name
	ex.url.RawQuery = cleanQueryParams(ex.url.RawQuery)
	out.Close = false
	body := r.Body
	if r.ContentLength < 0 && r.ProtoMajor >= 2 && body != nil && bodiless(r.Method) {
		body = probeBody(body)
	}
	if r.ContentLength == 0 || body == nil {
		out.Body = nil // no body: the transport may retry freely
	} else {
		ex.body = &reqBody{rc: body, n: p.m.bytesIn, sole: r.ProtoMajor == 1}
		out.Body = ex.body
	}
	var order []string
	if o, ok := w.ResponseWriter.(h1.HeaderOrderer); ok {
		order = o.HeaderOrder()
	}
	p.outHeader(r, order, ex)
	if p.info != nil {
		// upstream.Backend takes the header as a list, which the h2c
		// client encodes with no map (a map is built only for an
		// HTTP/1.1 server).
		ex.info.Header = &ex.hdr
		out.Header = nil
	} else {
		out.Header = ex.hdr.Map()
	}
	return out
}

// roundTrip sends out to the backend, passing 1xx responses on to w:
// through RequestInfo.Got1xx to an upstream.Backend, which sets the hook
// on each attempt's own trace (no context per request here), and
// through out's httptrace hooks, which every RoundTripper calls, to any
// other RoundTripper and for protocol switches (roundTripTraced).
func (p *proxy) roundTrip(w *statusWriter, out *http.Request, ex *exchange) (*http.Response, error) {
	ex.w = w
	if ex.trace.Got1xxResponse == nil {
		ex.trace.Got1xxResponse = ex.got1xx // an exchange not from the pool
	}
	var res *http.Response
	var err error
	if p.info != nil && !upstream.IsUpgrade(out.Header) {
		ex.info.Got1xx = ex.trace.Got1xxResponse
		// An HTTP/1.1 client's writer takes the response header as the
		// list the h2c client decodes: no map on either side.
		_, ex.info.ListResponse = w.ResponseWriter.(h1.FieldsWriter)
		ex.info.ListResponse = ex.info.ListResponse && listResponses.Load()
		res, err = p.info.RoundTripInfo(out, &ex.info)
	} else {
		res, err = p.roundTripTraced(out, ex)
	}
	ex.mu.Lock()
	ex.done = true
	ex.mu.Unlock()
	return res, err
}

// roundTripTraced is roundTrip with ex's hooks in out's context.
//
//go:noinline
func (p *proxy) roundTripTraced(out *http.Request, ex *exchange) (*http.Response, error) {
	*out = *out.WithContext(httptrace.WithClientTrace(out.Context(), &ex.trace))
	if p.info != nil {
		return p.info.RoundTripInfo(out, &ex.info)
	}
	return p.rt.RoundTrip(out)
}

// outHeader builds the outbound header in ex.hdr: the client's fields
// minus hop-by-hop and forwarding ones, in the order the client sent
// them (order: r.Header's keys from an HTTP/1.1 client, h1.HeaderOrderer;
// keys it lacks follow, sorted), else in sorted key order (Go's HTTP/2
// and HTTP/3 servers give a map, whose order changes from request to
// request); then what the gateway sets, in a fixed order. Values are
// shared with the inbound header, never modified in place.
func (p *proxy) outHeader(r *http.Request, order []string, ex *exchange) {
	in := r.Header
	h := &ex.hdr
	n, ua := addClientFields(h, in, order)
	if n < len(in) {
		// No order, or keys the map gained after the server built it.
		var stack [32]string
		_, ua2 := addClientFields(h, in, h1.AppendUnordered(stack[:0], in, order))
		ua = ua || ua2
	}
	ex.teTrailers = httpguts.HeaderValuesContainsToken(in["Te"], "trailers")
	if ex.teTrailers {
		// Tell the server trailers are supported, when the client said so.
		h.Add("Te", valTrailers)
	}
	if clientIP, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := in["X-Forwarded-For"]; len(prior) > 0 && p.trusted(r) {
			// A trusted proxy in front: keep the chain it reports and
			// append the peer, as it would.
			clientIP = strings.Join(prior, ", ") + ", " + clientIP
		}
		ex.xf[0] = clientIP
		h.Add("X-Forwarded-For", ex.xf[0:1:1])
	}
	ex.xf[1] = r.Host
	h.Add("X-Forwarded-Host", ex.xf[1:2:2])
	if r.TLS == nil {
		h.Add("X-Forwarded-Proto", valHTTP)
	} else {
		h.Add("X-Forwarded-Proto", valHTTPS)
	}
	if !ua {
		h.Add("User-Agent", valEmpty)
	}
}

// addClientFields adds to h, in keys' order, the fields of in under those
// keys that are passed on: not hop-by-hop or forwarding ones, nor those
// the Connection field names. It returns how many of keys in holds (a key
// it lacks is skipped), and whether User-Agent was added.
func addClientFields(h *upstream.HeaderList, in http.Header, keys []string) (n int, ua bool) {
	conn := in["Connection"]
	for _, k := range keys {
		vv, ok := in[k]
		if !ok {
			continue
		}
		n++
		if hopByHop(k) || forwarding(k) || len(conn) > 0 && httpguts.HeaderValuesContainsToken(conn, k) {
			continue
		}
		ua = ua || k == "User-Agent"
		h.Add(k, vv)
	}
	return n, ua
}

// copyResponse sends res to the client: headers without hop-by-hop ones,
// the body (flushed as it arrives when its length is unknown), then
// trailers. The header and trailer copies are helpers of their own, off
// the stack while the body is written (see serve).
func (p *proxy) copyResponse(w *statusWriter, r *http.Request, res *http.Response, ex *exchange) {
	h := w.Header()
	var announced int
	ct := ""
	if fields := ex.info.ResponseFields; fields != nil && res.Header == nil {
		announced, ct = copyFields(w, r, res, fields, ex)
	} else {
		announced = copyHeader(h, r, res, ex.teTrailers)
		if v := res.Header["Content-Type"]; len(v) > 0 {
			ct = v[0]
		}
		w.WriteHeader(res.StatusCode)
	}
	flush := flushImmediately(res.ContentLength, ct)
	if flush {
		// Streaming: the client gets the headers now, even if the first
		// body bytes are slow to come (Server-Sent Events).
		w.Flush()
	}
	if readErr, err := copyBody(w, res.Body, flush); err != nil {
		p.bodyFailed(r, res, readErr, err)
		if r.Context().Value(http.ServerContextKey) == nil {
			// Not under an http.Server (a test calling ServeHTTP), which
			// would not recover the panic.
			return
		}
		panic(http.ErrAbortHandler)
	}
	res.Body.Close() // now, to populate res.Trailer
	if len(res.Trailer) > 0 {
		// Force chunking, so that net/http does not add a Content-Length
		// to a short body and drop the trailers.
		w.Flush()
		copyTrailers(h, res.Trailer, announced)
	}
}

// copyHeader copies res's header to h, but hop-by-hop fields, and
// announces res's trailers. It returns how many were announced.
//
//go:noinline
func copyHeader(h http.Header, r *http.Request, res *http.Response, teTrailers bool) (announced int) {
	conn := res.Header["Connection"]
	for k, vv := range res.Header {
		if hopByHop(k) || len(conn) > 0 && httpguts.HeaderValuesContainsToken(conn, k) {
			continue
		}
		addValues(h, k, vv)
	}
	announced = len(res.Trailer)
	if mayHaveTrailers(r, res, teTrailers) {
		// An HTTP/1.1 client gets trailers only with a chunked body, and
		// an h2 upstream sends them unannounced: answer chunked.
		delete(h, "Content-Length")
	}
	if announced > 0 {
		// The transport takes the Trailer header out of res.Header and
		// into res.Trailer's keys: announce them again.
		h.Add("Trailer", trailerNames(res.Trailer))
	}
	return announced
}

// listResponses lets the proxy take an h2c server's response header as a
// list into an HTTP/1.1 client's head (copyFields); tests turn it off to
// compare with the map path.
var listResponses = func() *atomic.Bool { var b atomic.Bool; b.Store(true); return &b }()

// copyFields is copyHeader and WriteHeader for a response whose header
// came as a list (RequestInfo.ResponseFields) to a writer that takes one
// (h1.FieldsWriter, which w wraps): the same fields leave out, in the
// server's order, without a map. It returns how many trailers were
// announced and the Content-Type.
//
//go:noinline
func copyFields(w *statusWriter, r *http.Request, res *http.Response, fields [][2]string, ex *exchange) (announced int, ct string) {
	var connStack [2]string
	conn := connStack[:0]
	for i := range fields {
		if fields[i][0] == "Connection" {
			conn = append(conn, fields[i][1])
		}
	}
	dropCL := mayHaveTrailers(r, res, ex.teTrailers)
	out := ex.resFields[:0]
	for _, f := range fields {
		k := f[0]
		if hopByHop(k) || len(conn) > 0 && httpguts.HeaderValuesContainsToken(conn, k) ||
			dropCL && k == "Content-Length" {
			continue
		}
		if k == "Content-Type" && ct == "" {
			ct = f[1]
		}
		out = append(out, f)
	}
	announced = len(res.Trailer)
	if announced > 0 {
		out = append(out, [2]string{"Trailer", trailerNames(res.Trailer)})
	}
	ex.resFields = out
	w.writeHeaderFields(res.StatusCode, out)
	return announced, ct
}

// trailerNames is the Trailer field announcing trailer's keys.
func trailerNames(trailer http.Header) string {
	keys := make([]string, 0, len(trailer))
	for k := range trailer {
		keys = append(keys, k)
	}
	return strings.Join(keys, ", ")
}

// bodyFailed logs a body copy that failed midway with err (a read error
// when readErr is set) and closes res's body.
//
//go:noinline
func (p *proxy) bodyFailed(r *http.Request, res *http.Response, readErr bool, err error) {
	if readErr && !errors.Is(err, context.Canceled) {
		p.log.Warn("upstream body failed midway", "backend", p.name, "path", r.URL.Path, "err", err)
	}
	res.Body.Close()
}

// copyTrailers adds trailer to h: as they are when all of them were
// announced (count announced), else with http.TrailerPrefix.
//
//go:noinline
func copyTrailers(h http.Header, trailer http.Header, announced int) {
	if len(trailer) == announced {
		for k, vv := range trailer {
			addValues(h, k, vv)
		}
		return
	}
	for k, vv := range trailer {
		k = http.TrailerPrefix + k
		for _, v := range vv {
			h.Add(k, v)
		}
	}
}

// mayHaveTrailers reports whether res may end with trailers that r's client
// gets only if the body is chunked: an HTTP/1.1 client that said TE:
// trailers (teTrailers, from outHeader), and a response with a body that
// announced trailers or came over HTTP/2, where trailers need no
// announcement.
func mayHaveTrailers(r *http.Request, res *http.Response, teTrailers bool) bool {
	return teTrailers && r.ProtoMajor == 1 && r.ProtoMinor >= 1 && r.Method != http.MethodHead &&
		res.StatusCode != http.StatusNoContent && res.StatusCode != http.StatusNotModified &&
		(len(res.Trailer) > 0 || res.ProtoMajor == 2)
}

// addValues appends vv to h[k]. A key h lacks takes vv itself: the
// response is ours alone, so its slices need no copy.
func addValues(h http.Header, k string, vv []string) {
	if prev, ok := h[k]; ok {
		h[k] = append(prev, vv...)
	} else {
		h[k] = vv
	}
}

// flushImmediately reports whether each chunk of the body must reach the
// client at once: Server-Sent Events, or any body of unknown length
// (streaming). Known-length bodies are copied in 32 KiB chunks.
// contentLength and ct are the response's length and Content-Type.
func flushImmediately(contentLength int64, ct string) bool {
	if contentLength == -1 {
		return true
	}
	if ct == "" {
		return false
	}
	base, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(base), "text/event-stream")
}

// copyBody copies src to w through a pooled buffer. It returns the first
// write error or non-EOF read error, and whether it was a read error.
func copyBody(w *statusWriter, src io.Reader, flush bool) (readErr bool, err error) {
	return copyPooled(src, func(p []byte) error {
		nw, err := w.Write(p)
		if err != nil {
			return err
		}
		if nw != len(p) {
			return io.ErrShortWrite
		}
		if flush {
			w.Flush()
		}
		return nil
	})
}

// copyPooled reads src through a pooled buffer and hands each read to
// write, until EOF or the first error. It returns that error (nil at EOF)
// and whether it was a read error.
func copyPooled(src io.Reader, write func([]byte) error) (readErr bool, err error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			if err := write(buf[:nr]); err != nil {
				return false, err
			}
		}
		if rerr == io.EOF {
			return false, nil
		}
		if rerr != nil {
			return true, rerr
		}
	}
}

// cleanQueryParams drops query parameters that cannot be parsed (a ';', a
// bad %-escape), as ReverseProxy does, so the server cannot read the query
// differently from the gateway. Well-formed queries are returned as they
// are.
func cleanQueryParams(s string) string {
	if s == "" {
		return s
	}
	reencode := func(s string) string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	if strings.Count(s, "&")+1 > 10000 {
		return reencode(s)
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode(s)
		case '%':
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return reencode(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
