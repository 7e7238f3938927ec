package h1

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// response is the handler's http.ResponseWriter. The head is written with
// the first bytes of the body when those fill the buffer, when the handler
// flushes, or when it returns: a small response goes out in one write,
// with a Content-Length.
type response struct {
	cc  *conn
	req *http.Request
	rq  reqState // the request's storage (newRequest); kept across uses

	header http.Header
	// fields is more of the header, after header's: the list
	// WriteHeaderFields copied in. Its storage is kept across uses.
	fields [][2]string
	status int  // the final status, once WriteHeader ran
	head   bool // a HEAD request: no body is sent

	// Guarded by cc.wmu, with the socket writes: a 100 Continue may be
	// sent from the body reader's goroutine.
	headSent  bool // the final head is on the wire
	interim   bool // a 1xx went out: no 100 Continue after it
	continued bool // a 100 Continue went out: not another
	writeErr  error

	chunked     bool
	contentLen  int64   // from the handler's Content-Length; -1 without
	written     int64   // body bytes the handler wrote
	out         *[]byte // pending body bytes, pooled
	closeAfter  bool    // send Connection: close and end the connection
	hijacked    bool
	trailerKeys []string // declared in the Trailer header when the head went out
}

var responsePool = sync.Pool{New: func() any { return new(response) }}

// newResponse is r's response: the one newRequest built r in. Its
// header map is the last use's, cleared.
func newResponse(cc *conn, r *http.Request) *response {
	w := r.Body.(*body).rw
	h := w.header
	if h == nil {
		h = make(http.Header)
	}
	w.cc, w.req, w.header, w.contentLen, w.head, w.out = cc, r, h, -1, r.Method == http.MethodHead, getBuf()
	*w.out = (*w.out)[:0]
	return w
}

// release returns w to the pool, with its request's storage and header
// map cleared for the next use, once the handler has returned. A hijacked
// connection's are dropped instead: the handler may go on using them.
func (w *response) release() {
	if w.out != nil {
		putBuf(w.out)
	}
	rq, h, hijacked, fields := w.rq, w.header, w.hijacked, w.fields
	*w = response{}
	if rq.hdr != nil && !hijacked {
		rq.reset()
		clear(h)
		w.rq, w.header = rq, h
		if cap(fields) <= maxKeptFields {
			clear(fields)
			w.fields = fields[:0]
		}
	}
	responsePool.Put(w)
}

// maxKeptFields bounds the field list a response keeps for its next use.
const maxKeptFields = 64

func (w *response) Header() http.Header { return w.header }

// FieldsWriter is the server's http.ResponseWriter as a proxy sees it: a
// final response whose header is a list (an h2c server's, as decoded)
// goes into the head without a map.
type FieldsWriter interface {
	// WriteHeaderFields is WriteHeader(code), for a final status, with
	// fields (name, value; names canonical as http.Header keys) added
	// to the header after what Header() holds, as Header().Add would
	// add them, but in their order. It keeps no reference to fields.
	WriteHeaderFields(code int, fields [][2]string)
}

// WriteHeaderFields implements FieldsWriter.
func (w *response) WriteHeaderFields(code int, fields [][2]string) {
	if w.hijacked || w.status != 0 || code < 200 {
		// Not a final head of its own: as the map would take it.
		for _, f := range fields {
			w.header[f[0]] = append(w.header[f[0]], f[1])
		}
		w.WriteHeader(code)
		return
	}
	w.fields = append(w.fields[:0], fields...)
	w.WriteHeader(code)
}

// HeaderOrderer is the server's http.ResponseWriter as a proxy sees it:
// it tells the order of the request's header fields, which the request's
// header map lost, so that they can be passed on in that order.
type HeaderOrderer interface {
	// HeaderOrder returns the request header's keys (canonical, as in
	// its map), each once, in the order their first field arrived; Host
	// and Transfer-Encoding are not among them, as they are not in the
	// map. It is valid until the handler returns, and not to be
	// modified. It tells what the client sent: a key the handler added
	// to the map is not in it, one it deleted still is.
	HeaderOrder() []string
}

// AppendUnordered appends to dst the keys of h that order lacks, sorted:
// the fields that go after those in order when h is written in order (a
// nil order lacks every key). For a stack-backed dst it allocates nothing
// while the keys fit.
func AppendUnordered(dst []string, h http.Header, order []string) []string {
	n := len(dst)
	for k := range h {
		if !slices.Contains(order, k) {
			dst = append(dst, k)
		}
	}
	slices.Sort(dst[n:])
	return dst
}

// HeaderOrder implements HeaderOrderer.
func (w *response) HeaderOrder() []string { return w.rq.names }

// get is Header().Get(k) over the map and the list, for a canonical k.
func (w *response) get(k string) string {
	if vv := w.header[k]; len(vv) > 0 {
		return vv[0]
	}
	for i := range w.fields {
		if w.fields[i][0] == k {
			return w.fields[i][1]
		}
	}
	return ""
}

// has reports whether the header, map or list, has a field named k
// (canonical).
func (w *response) has(k string) bool {
	if _, ok := w.header[k]; ok {
		return true
	}
	for i := range w.fields {
		if w.fields[i][0] == k {
			return true
		}
	}
	return false
}

// del removes the fields named k (canonical) from the map and the list.
func (w *response) del(k string) {
	delete(w.header, k)
	l := w.fields[:0]
	for _, f := range w.fields {
		if f[0] != k {
			l = append(l, f)
		}
	}
	clear(w.fields[len(l):])
	w.fields = l
}

// WriteHeader sends a 1xx at once (101 excepted: a switch is written by
// whoever hijacks), and records a final status for the head.
func (w *response) WriteHeader(code int) {
	if w.hijacked || w.status != 0 {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		b := appendStatusLine(nil, w.req.ProtoMinor, code)
		b = appendHeader(b, w.header, nil)
		b = append(b, "\r\n"...)
		w.cc.wmu.Lock()
		defer w.cc.wmu.Unlock()
		if code == http.StatusContinue && w.continued {
			// One 100 Continue: the body reader sent it already.
			return
		}
		w.interim = true
		w.continued = w.continued || code == http.StatusContinue
		w.writeLocked(b)
		return
	}
	w.status = code
	if v := w.get("Content-Length"); v != "" {
		if n, ok := ParseContentLength([]byte(v)); ok {
			w.contentLen = n
		} else {
			w.del("Content-Length")
		}
	}
}

// bodyAllowed reports whether the status may carry a body (RFC 9110 6.4.1).
func (w *response) bodyAllowed() bool {
	return w.status != http.StatusNoContent && w.status != http.StatusNotModified && (w.status < 100 || w.status >= 200)
}

func (w *response) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyAllowed() {
		return 0, http.ErrBodyNotAllowed
	}
	if w.contentLen >= 0 && w.written+int64(len(p)) > w.contentLen {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.head {
		return len(p), nil
	}
	if len(*w.out)+len(p) <= bufSize {
		*w.out = append(*w.out, p...)
		return len(p), nil
	}
	if err := w.flush(p, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush sends the head, if not yet sent, and what is buffered.
func (w *response) Flush() { w.FlushError() }

// FlushError is Flush with its error, for http.ResponseController.
func (w *response) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.flush(nil, false)
}

// flush writes the head if due, the buffered body and p, in one writev;
// final ends a chunked body with its trailers.
func (w *response) flush(p []byte, final bool) error {
	w.cc.wmu.Lock()
	defer w.cc.wmu.Unlock()
	if w.writeErr != nil {
		return w.writeErr
	}
	// The head and the chunk framing go into a pooled buffer; body bytes
	// follow in it when they fit, so that a response under bufSize is
	// one write whatever the connection (a wrapper around the socket
	// would turn a writev into several writes).
	frame := getBuf()
	defer putBuf(frame)
	b := (*frame)[:0]
	if !w.headSent {
		b = w.buildHead(b, final)
		w.headSent = true
	}
	body := *w.out
	n := len(body) + len(p)
	if n > 0 && w.chunked {
		b = strconv.AppendInt(b, int64(n), 16)
		b = append(b, "\r\n"...)
	}
	var tail []byte
	if w.chunked {
		if n > 0 {
			tail = append(tail, "\r\n"...)
		}
		if final {
			tail = append(tail, "0\r\n"...)
			tail = w.appendTrailers(tail)
			tail = append(tail, "\r\n"...)
		}
	}
	*w.out = (*w.out)[:0]
	var err error
	if len(b)+n+len(tail) <= bufSize {
		b = append(b, body...)
		b = append(b, p...)
		b = append(b, tail...)
		switch {
		case final && w.closeAfter:
			_, err = w.cc.writeLast(b)
		case len(b) > 0:
			_, err = w.cc.c.Write(b)
		}
	} else {
		err = w.cc.writeBufs(net.Buffers{b, body, p, tail})
	}
	if err != nil {
		w.writeErr = err
		w.cc.broken.Store(true)
	}
	return err
}

// writeLocked writes b, under cc.wmu.
func (w *response) writeLocked(b []byte) {
	if w.writeErr != nil {
		return
	}
	if _, err := w.cc.c.Write(b); err != nil {
		w.writeErr = err
		w.cc.broken.Store(true)
	}
}

// sendContinue answers Expect: 100-continue, unless a 100 went out
// already (a handler relaying its upstream's) or the final response has
// started: the body is read anyway, as net/http does, if the client sends
// it.
func (w *response) sendContinue() {
	w.cc.wmu.Lock()
	defer w.cc.wmu.Unlock()
	if w.headSent || w.interim || w.status != 0 {
		return
	}
	w.continued = true
	w.writeLocked([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
}

// finish completes the response once the handler has returned.
func (w *response) finish() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.contentLen >= 0 && w.written < w.contentLen && w.bodyAllowed() && !w.head {
		// Fewer bytes than announced: the client must not wait for the
		// rest on a connection that goes on.
		w.closeAfter = true
	}
	if !w.headSent || len(*w.out) > 0 || w.chunked {
		w.flush(nil, true)
	}
}

// dateCache is the Date field's value for the current second, formatted
// once a second rather than once a response.
var dateCache atomic.Pointer[dateEntry]

type dateEntry struct {
	sec int64
	v   []string
}

func dateValue() []string {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return d.v
	}
	d := &dateEntry{sec: now.Unix(), v: []string{now.UTC().Format(http.TimeFormat)}}
	dateCache.Store(d)
	return d.v
}

var crlfToSpace = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ")

// buildHead decides the framing and appends the status line and header
// fields to b. final means the handler has returned: a body that fit the
// buffer gets a Content-Length.
func (w *response) buildHead(b []byte, final bool) []byte {
	h := w.header
	bodyOK := w.bodyAllowed()
	addTrailerKeys := func(v string) {
		eachToken([]byte(v), func(t []byte) { w.trailerKeys = append(w.trailerKeys, http.CanonicalHeaderKey(string(t))) })
	}
	for _, v := range h["Trailer"] {
		addTrailerKeys(v)
	}
	for i := range w.fields {
		if w.fields[i][0] == "Trailer" {
			addTrailerKeys(w.fields[i][1])
		}
	}
	hasPrefixed := false
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			hasPrefixed = true
			break
		}
	}
	wantTrailers := len(w.trailerKeys) > 0 || hasPrefixed
	switch {
	case !bodyOK:
		// A 304 may tell the length of what it stands for; a 204 has
		// none (RFC 9110 8.6).
		if w.status == http.StatusNoContent {
			w.del("Content-Length")
		}
	case w.contentLen >= 0 && !(wantTrailers && w.req.ProtoMinor == 1):
		// The handler's own length.
	case final && !wantTrailers && !w.head:
		w.del("Content-Length")
		h["Content-Length"] = []string{strconv.FormatInt(w.written, 10)}
	case w.head:
	case w.req.ProtoMinor == 1:
		w.del("Content-Length")
		w.chunked = true
	default:
		w.closeAfter = true // HTTP/1.0: the body ends with the connection
	}
	w.del("Transfer-Encoding")
	if w.chunked {
		h["Transfer-Encoding"] = []string{"chunked"}
	}
	if !w.has("Content-Type") && bodyOK && !w.head && len(*w.out) > 0 && w.get("Content-Encoding") == "" {
		h["Content-Type"] = []string{http.DetectContentType(*w.out)}
	}
	if !w.has("Date") {
		h["Date"] = dateValue()
	}
	if w.cc.s.shuttingDown() {
		w.closeAfter = true
	}
	switch {
	case w.closeAfter || w.req.Close && w.req.ProtoMinor == 1:
		w.del("Connection")
		h["Connection"] = []string{"close"}
		w.closeAfter = true
	case w.req.ProtoMinor == 0 && !w.req.Close:
		w.del("Connection")
		h["Connection"] = []string{"keep-alive"}
	}
	b = appendStatusLine(b, w.req.ProtoMinor, w.status)
	b = appendHeader(b, h, func(k string) bool { return strings.HasPrefix(k, http.TrailerPrefix) })
	b = appendFields(b, w.fields)
	return append(b, "\r\n"...)
}

// appendTrailers writes the trailer fields: those declared in Trailer and
// those set with http.TrailerPrefix.
func (w *response) appendTrailers(b []byte) []byte {
	t := http.Header{}
	for _, k := range w.trailerKeys {
		if vv, ok := w.header[k]; ok {
			t[k] = vv
		}
	}
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			t[http.CanonicalHeaderKey(name)] = vv
		}
	}
	return appendHeader(b, t, nil)
}

// appendStatusLine writes "HTTP/1.x code reason\r\n".
func appendStatusLine(b []byte, minor, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	if minor == 0 {
		b[len(b)-2] = '0'
	}
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	return append(b, "\r\n"...)
}

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

// appendHeader writes h's fields in key order, with line breaks in values
// turned to spaces (no response splitting); skip leaves keys out.
func appendHeader(b []byte, h http.Header, skip func(string) bool) []byte {
	var stack [24]string
	keys := stack[:0]
	for k := range h {
		if skip == nil || !skip(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			b = appendField(b, k, v)
		}
	}
	return b
}

// appendFields writes the fields of a list, in its order, as
// appendHeader writes a map's.
func appendFields(b []byte, fields [][2]string) []byte {
	for _, f := range fields {
		b = appendField(b, f[0], f[1])
	}
	return b
}

// appendField writes one field line.
func appendField(b []byte, k, v string) []byte {
	if strings.ContainsAny(v, "\r\n") {
		v = crlfToSpace.Replace(v)
	}
	b = append(b, k...)
	b = append(b, ": "...)
	b = append(b, strings.TrimSpace(v)...)
	return append(b, "\r\n"...)
}

// Hijack hands the connection over: the watcher stopped, what was read
// ahead in the returned reader.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	cc := w.cc
	cc.stopWatch()
	w.hijacked = true
	// A tunnel from here on: its place goes to the next request.
	cc.s.workers.release(cc)
	var ahead []byte
	if cc.nPeeked > 0 {
		ahead = append(ahead, cc.peeked[0])
		cc.nPeeked = 0
	}
	if cc.buf != nil {
		ahead = append(ahead, (*cc.buf)[cc.r:cc.w]...)
		cc.r = cc.w
	}
	var src io.Reader = cc.c
	if len(ahead) > 0 {
		src = io.MultiReader(bytes.NewReader(ahead), cc.c)
	}
	return cc.c, bufio.NewReadWriter(bufio.NewReaderSize(src, bufSize), bufio.NewWriterSize(cc.c, bufSize)), nil
}

// EnableFullDuplex is for http.ResponseController: the body can be read
// while the response is written here anyway.
func (w *response) EnableFullDuplex() error { return nil }

// SetReadDeadline and SetWriteDeadline are for http.ResponseController.
func (w *response) SetReadDeadline(t time.Time) error {
	w.cc.watchMu.Lock()
	defer w.cc.watchMu.Unlock()
	w.cc.idleBy = time.Time{} // the handler's now (rearmLocked)
	return w.cc.c.SetReadDeadline(t)
}
func (w *response) SetWriteDeadline(t time.Time) error { return w.cc.c.SetWriteDeadline(t) }

var (
	_ http.ResponseWriter = (*response)(nil)
	_ http.Flusher        = (*response)(nil)
	_ http.Hijacker       = (*response)(nil)
	_ FieldsWriter        = (*response)(nil)
	_ HeaderOrderer       = (*response)(nil)
)
