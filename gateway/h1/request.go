package h1

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/gateway/h1/ctxend"
)

// newRequest builds the handler's *http.Request from cc.req, as net/http
// would have: Host out of the header, Transfer-Encoding into
// TransferEncoding, equal Content-Lengths folded into one.
//
// Nothing of it is allocated per request but the body and one string
// holding the head's method, target, names and values, which the
// request's strings are cut from: the http.Request, its URL, header map
// and value slices live in a pooled response (reqState), reused once the
// handler has returned (response.release). A pool rather than one set per
// connection, so that an idle connection holds none of it. That is safe
// because nothing keeps them after the handler returns: the http.Handler
// contract forbids it, and the gateway's proxy copies what it sends on
// (the outbound request, URL and header map are its own; upstream's
// attempts and h2c client streams, which may outlive the handler, hold
// copies of those, and only strings and value slices of this one, read
// before the response body is closed). A hijacked connection's state is
// not reused (a tunnel may still hold the request).
func (cc *conn) newRequest() (*http.Request, error) {
	ctx := cc.ctx
	req := &cc.req
	w := responsePool.Get().(*response)
	r, err := w.rq.build(req, cc.remoteAddr())
	if err != nil {
		w.release()
		return nil, err
	}
	b := &body{cc: cc, rw: w, framing: req.Framing, left: req.ContentLength, expect100: req.Expect100}
	// The request's context lives in its body, allocated per request
	// anyway: it may outlive the handler, so it is never reused.
	rc := &b.ctx
	if !cc.ctxEnds {
		// Only cancelReq ends it: it can tell a watcher (reqCtx).
		rc.conn = ctx
		ctx = rc
	} else {
		ctx, rc.stop = context.WithCancel(ctx)
	}
	if req.Framing == Chunked {
		cc.dec.Reset()
	}
	if req.Framing == NoBody || req.Framing == Length && req.ContentLength == 0 {
		b.eof = true
		b.expect100 = false
	}
	r.Body = b
	*r = *r.WithContext(ctx) // no allocation: the copy stays on the stack
	return r, nil
}

// reqState is what a request is built in: kept with a pooled response
// and reused, cleared, by the next request (see newRequest).
type reqState struct {
	req  http.Request
	url  url.URL
	hdr  http.Header // cleared, not dropped: its buckets are reused
	vals []string    // the header's values, one backing array
	// names are hdr's keys in the order their first field arrived,
	// which the map loses (HeaderOrder); storage kept across uses.
	names []string
	te    [1]string // TransferEncoding's storage: "chunked", once set
	buf   []byte    // scratch for the head's strings
}

// build fills st from the parsed head in, as net/http's ReadRequest
// would, and returns st's request, without a context or body.
func (st *reqState) build(in *Request, remote string) (*http.Request, error) {
	// One string for the head's method, target, host, names (in their
	// canonical form) and values; the request's strings are cut from it.
	b := append(st.buf[:0], in.Method...)
	b = append(b, in.Target...)
	b = append(b, in.Host...)
	n := 0
	st.eachField(in, func(name, value []byte) {
		b = appendCanonical(b, name)
		b = append(b, value...)
		n++
	})
	head := string(b)
	st.buf = b[:0]
	cut := func(n int) string {
		s := head[:n]
		head = head[n:]
		return s
	}
	method, target, host := cut(len(in.Method)), cut(len(in.Target)), cut(len(in.Host))
	u, err := st.parseTarget(method, target)
	if err != nil {
		return nil, err
	}
	if st.hdr == nil {
		st.hdr = make(http.Header, n)
	}
	if cap(st.vals) < n {
		st.vals = make([]string, 0, n)
	}
	if cap(st.names) < n {
		st.names = make([]string, 0, n)
	}
	h, vals, names := st.hdr, st.vals[:0], st.names[:0]
	st.eachField(in, func(name, value []byte) {
		k := cut(len(name))
		vals = append(vals, cut(len(value)))
		if old, ok := h[k]; ok {
			h[k] = append(old, vals[len(vals)-1])
		} else {
			h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
			names = append(names, k)
		}
	})
	st.vals, st.names = vals, names
	if u.Host != "" {
		host = u.Host
	}
	r := &st.req
	*r = http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: in.Minor,
		Header:     h,
		Host:       host,
		RequestURI: target,
		RemoteAddr: remote,
		Close:      in.Close,
	}
	if in.Minor == 0 {
		r.Proto = "HTTP/1.0"
	}
	switch in.Framing {
	case Chunked:
		st.te[0] = "chunked"
		r.TransferEncoding = st.te[:1:1]
		r.ContentLength = -1
	case Length:
		r.ContentLength = in.ContentLength
	}
	return r, nil
}

// eachField calls f with the fields that go into the header map: not
// Host and Transfer-Encoding, and one Content-Length (the parser refused
// differing ones).
func (st *reqState) eachField(in *Request, f func(name, value []byte)) {
	haveLength := false
	for _, fl := range in.Fields {
		switch {
		case equalFold(fl.Name, "Host"), equalFold(fl.Name, "Transfer-Encoding"):
			continue
		case equalFold(fl.Name, "Content-Length"):
			if haveLength {
				continue
			}
			haveLength = true
		}
		f(fl.Name, fl.Value)
	}
}

// appendCanonical appends the token name in textproto's canonical form:
// upper case at the start and after each '-', lower case elsewhere.
func appendCanonical(b, name []byte) []byte {
	upper := true
	for _, c := range name {
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b = append(b, c)
		upper = c == '-'
	}
	return b
}

// parseTarget is url.ParseRequestURI(target) (the authority for CONNECT),
// into st.url. An origin-form target whose path needs no unescaping
// and has no byte that escaping would change is split at its first '?'
// without the parser, as it would split it: no allocation. Anything
// else goes to the parser.
func (st *reqState) parseTarget(method, target string) (*url.URL, error) {
	u := &st.url
	if method == http.MethodConnect && target[0] != '/' {
		// As net/http: the authority parsed as a URL's, so a bad
		// escape or a path in it is refused, not passed on.
		p, err := url.ParseRequestURI("http://" + target)
		if err != nil {
			return nil, err
		}
		p.Scheme = ""
		*u = *p
		return u, nil
	}
	path, query, hasQuery := strings.Cut(target, "?")
	if path != "" && path[0] == '/' && pathPlain(path) && !hasCTL(query) {
		*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
		return u, nil
	}
	p, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, err
	}
	*u = *p
	return u, nil
}

// pathPlain reports whether the path p is the same unescaped and
// escaped: only unreserved bytes and the sub-delimiters net/url keeps in
// a path (no '%', no '?').
func pathPlain(p string) bool {
	for i := 0; i < len(p); i++ {
		if !plainPathByte[p[i]] {
			return false
		}
	}
	return true
}

var plainPathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_.~$&+,/:;=@" {
		t[c] = true
	}
	return
}()

// hasCTL reports whether s has a control byte, which url's parser
// refuses.
func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// reset clears st for reuse: nothing of the last request stays
// reachable from it.
func (st *reqState) reset() {
	st.req, st.url = http.Request{}, url.URL{} // te keeps "chunked": a kept TransferEncoding reads the same
	clear(st.hdr)
	clear(st.vals[:cap(st.vals)])
	st.vals = st.vals[:0]
	clear(st.names[:cap(st.names)])
	st.names = st.names[:0]
	if cap(st.buf) > maxKeptHead {
		st.buf = nil
	}
}

// maxKeptHead bounds the scratch a pooled reqState keeps.
const maxKeptHead = 8 << 10

// remoteAddr is the client's address, formatted once per connection.
func (cc *conn) remoteAddr() string {
	if cc.peer == "" {
		cc.peer = cc.c.RemoteAddr().String()
	}
	return cc.peer
}

// body is a request's body; it reads through the connection's buffer, and
// sends 100 Continue on its first read when the client waits for it.
type body struct {
	cc  *conn
	rw  *response // for 100 Continue
	ctx reqCtx    // the request's context (newRequest)

	mu        sync.Mutex // guards what follows; held across reads, as net/http's body does
	framing   Framing
	left      int64 // with Length: bytes still due
	expect100 bool  // 100 Continue not yet sent
	eof       bool
	closed    bool  // the handler returned or closed it
	err       error // a failure, returned to every later read
}

// reqCtx is a request's context over a connection's that cannot end:
// the connection's values, and an end of its own (ctxend.Notifier), which
// tells one watcher of it by a callback (h1compat/client.CancelNotifier),
// so that upstream's queue waits for a slot with a plain receive rather
// than a select on a Done channel, and costs no allocation until someone
// asks for Done. cancel is its only end. Over a connection's context that
// can end, the request's context is context.WithCancel's, and reqCtx only
// holds its cancel func (stop).
type reqCtx struct {
	ctxend.Notifier
	conn context.Context    // the connection's, when the request's context is this one
	stop context.CancelFunc // the request's context.WithCancel's, when it is that one
}

var _ context.Context = (*reqCtx)(nil)

// Deadline is the connection's: none, since it cannot end.
func (c *reqCtx) Deadline() (time.Time, bool) { return c.conn.Deadline() }

// Value answers context.Cause's key with the request's end, and the rest
// from the connection's context.
func (c *reqCtx) Value(key any) any {
	if v, ok := c.OwnValue(key); ok {
		return v
	}
	return c.conn.Value(key)
}

// cancel ends the context, then calls the watcher and ends the contexts
// derived from it, from the caller's goroutine.
func (c *reqCtx) cancel() {
	if c.stop != nil {
		c.stop()
		return
	}
	c.End(context.Canceled, nil)
}

// ErrBodyAfterClose is returned by a request body's Read after the
// handler has returned.
var ErrBodyAfterClose = errors.New("h1: read of a request body after its handler returned")

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return 0, ErrBodyAfterClose
	case b.err != nil:
		return 0, b.err
	case b.eof:
		return 0, io.EOF
	case len(p) == 0:
		return 0, nil
	}
	if b.expect100 {
		b.expect100 = false
		b.rw.sendContinue()
	}
	n, err := b.readFramed(p)
	if err != nil && err != io.EOF {
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.ErrUnexpectedEOF
		}
		b.err = err
		b.cc.broken.Store(true)
		var perr *Error
		if errors.As(err, &perr) && b.cc.s.Refused != nil {
			b.cc.s.Refused(perr)
		}
	}
	if b.eof {
		b.cc.watch()
		if err == nil && n == 0 {
			err = io.EOF
		}
	}
	return n, err
}

// readFramed reads the body by its framing, Content-Length or chunked.
func (b *body) readFramed(p []byte) (int, error) {
	if b.framing == Length {
		return b.readLength(p)
	}
	return b.readChunked(p)
}

func (b *body) readLength(p []byte) (int, error) {
	cc := b.cc
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	var n int
	if cc.r < cc.w {
		n = copy(p, (*cc.buf)[cc.r:cc.w])
		cc.r += n
	} else {
		var err error
		n, err = cc.c.Read(p)
		if n == 0 && err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
	b.left -= int64(n)
	if b.left == 0 {
		b.eof = true
	}
	return n, nil
}

func (b *body) readChunked(p []byte) (int, error) {
	cc := b.cc
	for {
		if cc.r == cc.w {
			cc.r, cc.w = 0, 0
			n, err := cc.fill(bufSize)
			if n == 0 && err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return 0, err
			}
		}
		in := (*cc.buf)[cc.r:min(cc.w, cc.r+len(p))]
		data, n, err := cc.dec.Feed(in)
		if err != nil {
			return 0, err
		}
		cc.r += n
		k := copy(p, data)
		if cc.dec.Done() {
			b.eof = true
			return k, nil
		}
		if k > 0 {
			return k, nil
		}
	}
}

// Close ends the handler's use of the body; what is left is drained or
// the connection closed when the request ends (finish).
func (b *body) Close() error { return nil }

// drainable reports whether what is left of the body, if anything, can
// be read after the response so that the connection goes on: not when a
// read is in flight on another goroutine (it cannot be told now), when the
// client waits for a 100 Continue it will not get, or when more than
// maxDrain is due.
func (b *body) drainable() bool {
	if !b.mu.TryLock() {
		return false
	}
	defer b.mu.Unlock()
	switch {
	case b.err != nil:
		return false
	case b.eof:
		return true
	case b.expect100:
		return false
	}
	return b.framing == Chunked || b.left <= maxDrain
}

// maxDrain is the most of an unread body read and dropped after the
// handler returns to keep the connection (net/http drains 256 KiB).
const maxDrain = 256 << 10

// finish closes the body for good once the handler has returned, and
// reads what is left of it, up to maxDrain, under the deadline the caller
// set. It reports whether the connection can take another request.
func (b *body) finish() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.err != nil {
		return false
	}
	if b.eof {
		return true
	}
	if b.expect100 {
		// The client waits for 100 Continue before sending a body
		// nobody will read: the connection cannot go on.
		return false
	}
	if b.framing == Length && b.left > maxDrain {
		return false
	}
	buf := make([]byte, bufSize)
	drained := 0
	for !b.eof && drained <= maxDrain {
		n, err := b.readFramed(buf)
		if err != nil {
			return false
		}
		drained += n
	}
	return b.eof
}
