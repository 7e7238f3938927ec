package client

// Request header encoding and response header decoding.

import (
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

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

// hopHeaders are connection-specific fields HTTP/2 forbids (RFC 9113
// 8.2.2); Host travels as :authority.
var hopHeaders = map[string]bool{
	"Connection":        true,
	"Proxy-Connection":  true,
	"Keep-Alive":        true,
	"Transfer-Encoding": true,
	"Upgrade":           true,
	"Host":              true,
}

// checkRequest rejects what cannot be sent, before any stream state is
// touched.
func checkRequest(req *http.Request) error {
	if req.URL == nil {
		return fmt.Errorf("h2c client: request has no URL")
	}
	if req.Method != "" && !httpguts.ValidHostHeader(req.Host) && req.Host != "" {
		return fmt.Errorf("h2c client: invalid Host %q", req.Host)
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("h2c client: invalid header name %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("h2c client: invalid value for header %q", k)
			}
		}
	}
	return nil
}

// encodeRequest HPACK-encodes req's header block; the caller holds wmu.
func (c *Conn) encodeRequest(req *http.Request, hdrMax uint32) ([]byte, error) {
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
	// Content-Length goes out when known, and as 0 for the methods
	// that normally have a body, as net/http does.
	var cl string
	switch n := outgoingLength(req); {
	case n > 0:
		cl = strconv.FormatInt(n, 10)
	case n == 0 && (method == "POST" || method == "PUT" || method == "PATCH"):
		cl = "0"
	}
	if hdrMax > 0 {
		size := uint64(len(method)+len(host)+len(path)+len(scheme)) + 4*32 + 7 + 10 + 5 + 6
		for k, vv := range req.Header {
			for _, v := range vv {
				size += uint64(len(k) + len(v) + 32)
			}
		}
		if size > uint64(hdrMax) {
			return nil, fmt.Errorf("h2c client: request headers (%d bytes) exceed the server's MAX_HEADER_LIST_SIZE %d", size, hdrMax)
		}
	}
	c.hbuf.b = c.beginBlock(c.hbuf.b[:0])
	c.field(":method", method)
	c.field(":scheme", scheme)
	c.field(":authority", host)
	c.field(":path", path)
	var trailerNames []string
	for k, vv := range req.Header {
		if hopHeaders[k] {
			continue
		}
		name := lowerHeader(k)
		if name == "te" {
			// Only "trailers" is allowed (RFC 9113 8.2.2).
			for _, v := range vv {
				if strings.EqualFold(v, "trailers") {
					c.field("te", "trailers")
					break
				}
			}
			continue
		}
		if name == "content-length" || name == "trailer" {
			continue
		}
		for _, v := range vv {
			c.field(name, v)
		}
	}
	for k := range req.Trailer {
		trailerNames = append(trailerNames, lowerHeader(k))
	}
	if len(trailerNames) > 0 {
		c.field("trailer", strings.Join(trailerNames, ","))
	}
	if cl != "" {
		c.field("content-length", cl)
	}
	return c.hbuf.b, nil
}

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
	c.nc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
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
			for _, t := range strings.Split(f.Value, ",") {
				if t = textproto.TrimString(t); t != "" {
					if *trailer == nil {
						*trailer = make(http.Header)
					}
					(*trailer)[canonicalHeader(strings.ToLower(t))] = nil
				}
			}
		}
	}
	return h
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
