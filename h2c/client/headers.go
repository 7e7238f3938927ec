package client

// Request header encoding and response header decoding.

import (
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/sluice-gw/sluice/h2c/hpack"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// headerBuf collects the encoder's output for one header block.
type headerBuf struct{ b []byte }

func (h *headerBuf) Write(p []byte) (int, error) {
	h.b = append(h.b, p...)
	return len(p), nil
}

// Field is one request header name, in the canonical form of an
// http.Header key (any case is taken), with its values.
type Field struct {
	Name   string
	Values []string
}

// encodeRequest HPACK-encodes req's header block into dst from index 1
// (dst[0] is left for a table size update: see headerBlock) and checks
// it as it goes, in one walk over the header: names and values that
// cannot be sent (RFC 9110 5.1 and 5.5, as httpguts checks them) fail
// the request, whatever made them; connection-specific fields (RFC 9113
// 8.2.2) are dropped, Host travels as :authority. The header is fields
// when list is set, else req.Header. size is the header list's size as
// MAX_HEADER_LIST_SIZE counts it (every field of the header, sent or
// not), for the caller to check against the server's. Nothing of the
// connection is touched, so it runs before a stream is opened and
// without wmu.
func encodeRequest(dst []byte, req *http.Request, fields []Field, list bool) (block []byte, size uint64, err error) {
	if err := checkRequestTarget(req); err != nil {
		return dst, 0, err
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	path := requestPath(req.URL, req.RequestURI)
	scheme := req.URL.Scheme
	if scheme == "" {
		scheme = "http"
	}
	size = uint64(len(method)+len(host)+len(path)+len(scheme)) + 4*32 + 7 + 10 + 5 + 6
	b := append(dst[:0], 0)
	b = appendPseudo(b, nameMethod, method)
	b = appendPseudo(b, nameScheme, scheme)
	b = appendPseudo(b, nameAuthority, host)
	b = appendPseudo(b, namePath, path)
	if list {
		for _, f := range fields {
			if b, err = appendHeaderField(b, &size, f.Name, f.Values); err != nil {
				return b, 0, err
			}
		}
	} else if b, err = appendHeaderMap(b, &size, req.Header); err != nil {
		return b, 0, err
	}
	if len(req.Trailer) > 0 {
		b = appendTrailerNames(b, req.Trailer)
	}
	// Content-Length goes out when known, and as 0 for the methods
	// that normally have a body, as net/http does.
	switch n := outgoingLength(req); {
	case n > 0:
		b = appendContentLength(b, n)
	case n == 0 && (method == "POST" || method == "PUT" || method == "PATCH"):
		b = appendIndexedName(b, reqNames["Content-Length"], "0")
	}
	return b, size, nil
}

// checkRequestTarget fails a request that has no URL or an invalid Host.
// encodeRequest's checks that build errors are helpers of its own, which
// keeps its frame small (it runs on the stack of every request).
//
//go:noinline
func checkRequestTarget(req *http.Request) error {
	if req.URL == nil {
		return fmt.Errorf("h2c client: request has no URL")
	}
	if req.Method != "" && !httpguts.ValidHostHeader(req.Host) && req.Host != "" {
		return fmt.Errorf("h2c client: invalid Host %q", req.Host)
	}
	return nil
}

// appendHeaderMap is encodeRequest's loop over a header map.
//
//go:noinline
func appendHeaderMap(b []byte, size *uint64, h http.Header) ([]byte, error) {
	for k, vv := range h {
		var err error
		if b, err = appendHeaderField(b, size, k, vv); err != nil {
			return b, err
		}
	}
	return b, nil
}

// appendTrailerNames appends the trailer field announcing trailer's
// names.
//
//go:noinline
func appendTrailerNames(b []byte, trailer http.Header) []byte {
	names := make([]string, 0, len(trailer))
	for k := range trailer {
		names = append(names, lowerHeader(k))
	}
	return appendField(b, "trailer", strings.Join(names, ","))
}

// appendContentLength appends a content-length field of n.
//
//go:noinline
func appendContentLength(b []byte, n int64) []byte {
	return appendIndexedName(b, reqNames["Content-Length"], strconv.FormatInt(n, 10))
}

// The pseudo-header fields' names, as appendIndexedName takes them.
var (
	nameMethod    = reqName{lower: ":method", static: staticNames[":method"]}
	nameScheme    = reqName{lower: ":scheme", static: staticNames[":scheme"]}
	nameAuthority = reqName{lower: ":authority", static: staticNames[":authority"]}
	namePath      = reqName{lower: ":path", static: staticNames[":path"]}
)

// appendPseudo appends a pseudo-header field: one indexed byte when the
// static table has the whole field (GET, POST, "/", http, https).
func appendPseudo(b []byte, n reqName, value string) []byte {
	if i := staticFull(n.lower, value); i != 0 {
		return append(b, 0x80|i)
	}
	return appendIndexedName(b, n, value)
}

// appendHeaderField checks and appends the header field k with values
// vv, adding their size to *size.
func appendHeaderField(b []byte, size *uint64, k string, vv []string) ([]byte, error) {
	n, ok := reqNames[k]
	if !ok {
		if n, ok = unknownName(k); !ok {
			return b, invalidField("h2c client: invalid header name %q", k)
		}
	}
	te := false
	for i, v := range vv {
		if !validValue(v) {
			return b, invalidField("h2c client: invalid value for header %q", k)
		}
		*size += uint64(len(k) + len(v) + 32)
		switch n.send {
		case sendField:
			b = appendIndexedName(b, n, v)
		case sendTE:
			// Only "trailers" is allowed (RFC 9113 8.2.2).
			te = te || strings.EqualFold(v, "trailers")
		case sendFirstSet:
			if i == 0 && v != "" {
				b = appendIndexedName(b, n, v)
			}
		}
	}
	if te {
		b = appendIndexedName(b, n, "trailers")
	}
	return b, nil
}

// invalidField is appendHeaderField's error, format naming header k.
//
//go:noinline
func invalidField(format, k string) error {
	return fmt.Errorf(format, k)
}

// expects100 reports whether the header (fields when list is set, else
// req.Header) asks for 100-continue.
func expects100(req *http.Request, fields []Field, list bool) bool {
	var v string
	if !list {
		v = req.Header.Get("Expect")
	} else {
		for _, f := range fields {
			if len(f.Values) > 0 && strings.EqualFold(f.Name, "Expect") {
				v = f.Values[0]
				break
			}
		}
	}
	return strings.EqualFold(v, "100-continue")
}

// headerBlock is the block encodeRequest wrote into b, opened with the
// connection's table size update if it is the first (beginBlock); the
// caller holds wmu.
func (c *Conn) headerBlock(b []byte) []byte {
	if c.tableZeroed {
		return b[1:]
	}
	c.tableZeroed = true
	b[0] = 0x20 // size update, 5-bit prefix, 0
	return b
}

// validValue is httpguts.ValidHeaderFieldValue: no control byte but
// HTAB.
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// unknownName is reqNames' entry for a name it does not hold: k in lower
// case, sent as it is, unless it is one of reqNames' own in another case
// (a header map's keys need not be canonical). ok is false when k is not
// a valid field name (a token).
func unknownName(k string) (n reqName, ok bool) {
	if !httpguts.ValidHeaderFieldName(k) {
		return n, false
	}
	lower := strings.ToLower(k)
	if n, ok := reqNames[lower]; ok {
		return n, true
	}
	return reqName{lower: lower, send: sendField}, true
}

// reqBlocks recycles encodeRequest's buffers between requests.
var reqBlocks = sync.Pool{New: func() any { return new(headerBuf) }}

// maxKeptBlock bounds the buffers reqBlocks keeps.
const maxKeptBlock = 16 << 10

// requestPath is u.RequestURI(), the :path sent, byte for byte, without
// its concatenation of path and query: "path?query" is the request's
// original target (orig, a server request's RequestURI) when that reads
// the same, as it does unless the URL was changed, rather than a new
// string per request.
func requestPath(u *url.URL, orig string) string {
	if u.Opaque != "" {
		return u.RequestURI()
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	if !u.ForceQuery && u.RawQuery == "" {
		return p
	}
	if len(orig) == len(p)+1+len(u.RawQuery) && orig[len(p)] == '?' &&
		orig[:len(p)] == p && orig[len(p)+1:] == u.RawQuery {
		return orig
	}
	return p + "?" + u.RawQuery
}

func (c *Conn) field(name, value string) {
	c.hbuf.b = appendField(c.hbuf.b, name, value)
}

// encodeTrailers HPACK-encodes request trailers; the caller holds wmu.
func (c *Conn) encodeTrailers(tr http.Header, hdrMax uint32) ([]byte, error) {
	c.hbuf.b = c.beginBlock(c.hbuf.b[:0])
	var size uint64
	for k, vv := range tr {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, fmt.Errorf("h2c client: invalid trailer name %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, fmt.Errorf("h2c client: invalid value for trailer %q", k)
			}
			size += uint64(len(k) + len(v) + 32)
		}
	}
	if hdrMax > 0 && size > uint64(hdrMax) {
		return nil, fmt.Errorf("h2c client: request trailers exceed the server's MAX_HEADER_LIST_SIZE %d", hdrMax)
	}
	for k, vv := range tr {
		name := lowerHeader(k)
		for _, v := range vv {
			c.field(name, v)
		}
	}
	return c.hbuf.b, nil
}

// writeHeaderBlock writes block as HEADERS and as many CONTINUATION
// frames as the server's MAX_FRAME_SIZE needs; the caller holds wmu.
func (c *Conn) writeHeaderBlock(id uint32, block []byte, endStream bool, frame uint32) error {
	first := block
	if uint32(len(first)) > frame {
		first = block[:frame]
	}
	block = block[len(first):]
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID:      id,
		BlockFragment: first,
		EndStream:     endStream,
		EndHeaders:    len(block) == 0,
	})
	for err == nil && len(block) > 0 {
		frag := block
		if uint32(len(frag)) > frame {
			frag = block[:frame]
		}
		block = block[len(frag):]
		err = c.fr.WriteContinuation(id, len(block) == 0, frag)
	}
	return err
}

// decodeHeader turns decoded fields into a header map, with one backing
// array for all values: vals when it is long enough (the stream's own,
// never reused), else a new one. Names announced in "Trailer" are
// declared in *trailer (made when needed), when trailer is not nil.
func decodeHeader(fields []hpack.Field, trailer *http.Header, vals []string) http.Header {
	h := make(http.Header, len(fields))
	if len(fields) <= len(vals) {
		vals = vals[:len(fields)]
	} else {
		vals = make([]string, len(fields))
	}
	for i, f := range fields {
		k := canonicalHeader(f.Name)
		vals[i] = f.Value
		if old := h[k]; len(old) > 0 {
			h[k] = append(old, f.Value)
		} else {
			h[k] = vals[i : i+1 : i+1]
		}
		if trailer != nil && k == "Trailer" {
			declareTrailers(trailer, f.Value)
		}
	}
	return h
}

// decodeList is decodeHeader for a caller that takes the header as a
// list (RoundTripList): canonical names and values in the order
// received, in mem when it is long enough (the stream's own, never
// reused), else in a new array.
func decodeList(fields []hpack.Field, trailer *http.Header, mem [][2]string) [][2]string {
	var l [][2]string
	if len(fields) <= len(mem) {
		l = mem[:0:len(fields)]
	} else {
		l = make([][2]string, 0, len(fields))
	}
	for _, f := range fields {
		k := canonicalHeader(f.Name)
		l = append(l, [2]string{k, f.Value})
		if k == "Trailer" {
			declareTrailers(trailer, f.Value)
		}
	}
	return l
}

// declareTrailers adds the names a Trailer field's value v announces to
// *trailer, made when needed.
func declareTrailers(trailer *http.Header, v string) {
	for _, t := range strings.Split(v, ",") {
		if t = textproto.TrimString(t); t != "" {
			if *trailer == nil {
				*trailer = make(http.Header)
			}
			(*trailer)[canonicalHeader(strings.ToLower(t))] = nil
		}
	}
}

// listContentLength returns the value of l's Content-Length fields as
// a header map would hold them, without a slice: the one value, or "",
// false when there is none or more than one.
func listContentLength(l [][2]string) (v string, one bool) {
	for i := range l {
		if l[i][0] == "Content-Length" {
			if one {
				return "", false
			}
			v, one = l[i][1], true
		}
	}
	return v, one
}

// common maps frequent lower-case names to canonical ones, both ways,
// to save an allocation per field.
var common = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Age", "Access-Control-Allow-Origin", "Allow", "Authorization", "Cache-Control",
		"Connection", "Content-Disposition", "Content-Encoding", "Content-Language",
		"Content-Length", "Content-Location", "Content-Range", "Content-Type", "Cookie",
		"Date", "Etag", "Expect", "Expires", "From", "Host", "If-Match", "If-Modified-Since",
		"If-None-Match", "If-Range", "If-Unmodified-Since", "Keep-Alive", "Last-Modified",
		"Link", "Location", "Max-Forwards", "Origin", "Proxy-Authenticate",
		"Proxy-Authorization", "Range", "Referer", "Refresh", "Retry-After", "Server",
		"Set-Cookie", "Strict-Transport-Security", "Te", "Trailer", "Transfer-Encoding",
		"User-Agent", "Vary", "Via", "Www-Authenticate", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id", "X-Real-Ip",
	} {
		m[strings.ToLower(k)] = k
		m[k] = strings.ToLower(k)
	}
	return m
}()

func canonicalHeader(lower string) string {
	if k, ok := common[lower]; ok && k != lower {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(lower)
}

func lowerHeader(canonical string) string {
	if k, ok := common[canonical]; ok && k != canonical {
		return k
	}
	return strings.ToLower(canonical)
}
