package client

// Writing a request: the head, and the body with it when it fits one
// buffer, in one write; a longer or streamed body by the exchange's body
// writer goroutine.

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"

	"github.com/sluice-gw/sluice/gateway/h1"
)

// bufSize is the size of the pooled read and write buffers: a request
// head and a body up to about this size leave in one write.
const bufSize = 16 << 10

// frameGap is the room left between the head and the body in the write
// buffer for the framing field, the final CRLF and a chunk-size line;
// frameTail is kept free after the body for a chunk's CRLF and the last
// chunk.
const (
	frameGap  = 64
	frameTail = 8
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

// putBuf returns b to the pool unless it was replaced by a larger one.
func putBuf(b *[]byte) {
	if cap(*b) == bufSize {
		*b = (*b)[:bufSize]
		bufPool.Put(b)
	}
}

// defaultUserAgent is what net/http's transport sends when the request
// has no User-Agent field (an empty one sends none).
const defaultUserAgent = "Go-http-client/1.1"

// appendHead appends req's request line and fields, without the framing
// fields and the final CRLF. hasBody says a body follows (so a Trailer
// field announces req.Trailer). The fields go out in order's order (keys
// of req.Header, each once; a key order lacks follows in sorted order),
// or, without order, in sorted key order after User-Agent, as a map's
// own order changes from request to request.
func appendHead(b []byte, req *http.Request, order []string, hasBody bool) ([]byte, error) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if !validMethod(method) {
		return b, &RequestError{fmt.Sprintf("method %q", method)}
	}
	if req.URL == nil {
		return b, &RequestError{"no URL"}
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if host == "" || !httpguts.ValidHostHeader(host) {
		return b, &RequestError{fmt.Sprintf("Host %q", host)}
	}
	b = append(b, method...)
	b = append(b, ' ')
	b = appendRequestURI(b, req.URL)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	ua, ok := req.Header["User-Agent"]
	if !ok {
		b = append(b, "User-Agent: "+defaultUserAgent+"\r\n"...)
	} else if order == nil {
		var err error
		if b, err = appendValues(b, "User-Agent", ua); err != nil {
			return b, err
		}
	}
	var err error
	n := 0
	for _, k := range order {
		if vv, ok := req.Header[k]; ok {
			n++
			if b, err = appendValues(b, k, vv); err != nil {
				return b, err
			}
		}
	}
	if n < len(req.Header) {
		written := order
		if order == nil {
			written = userAgentOnly // written first, above
		}
		var stack [32]string
		for _, k := range h1.AppendUnordered(stack[:0], req.Header, written) {
			if b, err = appendValues(b, k, req.Header[k]); err != nil {
				return b, err
			}
		}
	}
	if req.Close && !httpguts.HeaderValuesContainsToken(req.Header["Connection"], "close") {
		b = append(b, "Connection: close\r\n"...)
	}
	if hasBody && len(req.Trailer) > 0 {
		keys := make([]string, 0, len(req.Trailer))
		for k := range req.Trailer {
			k = http.CanonicalHeaderKey(k)
			switch k {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return b, &RequestError{fmt.Sprintf("trailer %q", k)}
			}
			if !httpguts.ValidHeaderFieldName(k) {
				return b, &RequestError{fmt.Sprintf("trailer name %q", k)}
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = appendField(b, "Trailer", strings.Join(keys, ","))
	}
	return b, nil
}

// appendValues appends the field k with values vv, but the fields
// appendHead writes itself (Host, framing), and only the first
// User-Agent, if it is not empty.
// userAgentOnly is the order of what appendHead writes first without one.
var userAgentOnly = []string{"User-Agent"}

func appendValues(b []byte, k string, vv []string) ([]byte, error) {
	switch k {
	case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
		return b, nil
	case "User-Agent":
		// As net/http writes it: the first value, untrimmed.
		if len(vv) == 0 || vv[0] == "" {
			return b, nil
		}
		if !httpguts.ValidHeaderFieldValue(vv[0]) {
			return b, &RequestError{"User-Agent value"}
		}
		return appendField(b, k, vv[0]), nil
	}
	if !httpguts.ValidHeaderFieldName(k) {
		return b, &RequestError{fmt.Sprintf("field name %q", k)}
	}
	for _, v := range vv {
		if !httpguts.ValidHeaderFieldValue(v) {
			return b, &RequestError{fmt.Sprintf("value of field %q", k)}
		}
		b = appendField(b, k, strings.Trim(v, " \t"))
	}
	return b, nil
}

func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	b = append(b, v...)
	return append(b, "\r\n"...)
}

// appendRequestURI is url.URL.RequestURI without the allocations.
func appendRequestURI(b []byte, u *url.URL) []byte {
	if u.Opaque != "" {
		return append(b, u.RequestURI()...)
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	b = append(b, p...)
	if u.ForceQuery || u.RawQuery != "" {
		b = append(b, '?')
		b = append(b, u.RawQuery...)
	}
	return b
}

func validMethod(m string) bool {
	for i := 0; i < len(m); i++ {
		if !httpguts.IsTokenRune(rune(m[i])) {
			return false
		}
	}
	return len(m) > 0
}

// sendsEmptyLength is net/http's rule for a request without a body: a
// "Content-Length: 0" goes out except with GET and HEAD.
func sendsEmptyLength(method string) bool {
	return method != "" && method != http.MethodGet && method != http.MethodHead
}

// errBodyLength: the body ended before its Content-Length.
var errBodyLength = errors.New("h1 client: request body shorter than its Content-Length")

// write sends req: head and what of the body fits in one buffer in one
// write; the rest, if any, is left to the body writer (ex.wr set). It
// reports through the trace that the head was written once any byte of it
// left.
func (ex *exchange) write() error {
	req := ex.req
	body := req.Body
	if body == http.NoBody {
		body = nil
	}
	wb := getBuf()
	b, err := appendHead((*wb)[:0], req, ex.order, body != nil)
	if err != nil {
		putBuf(wb)
		ex.closeBody()
		return err
	}
	if body == nil {
		if sendsEmptyLength(req.Method) {
			b = append(b, "Content-Length: 0\r\n"...)
		}
		b = append(b, "\r\n"...)
		*wb = b
		if ex.c.cfg.Sender.Send(&ex.c.job, ex.c.nc, b) {
			// The head is the queue's (and wb with it) until settle.
			ex.queued, ex.wb = true, wb
			return nil
		}
		err := ex.writeHead(b)
		putBuf(wb)
		return err
	}
	// Read what of the body fits after the head and the gap, then put the
	// framing in the gap and move the head up against it.
	h := len(b)
	n := req.ContentLength
	if n == 0 {
		n = -1 // a body of unknown length (net/http probes it; we read it)
	}
	buf := b[:cap(b)]
	room := max(len(buf)-h-frameGap-frameTail, 0)
	want := room
	if n >= 0 && n < int64(room) {
		want = int(n)
	}
	m, rerr := io.ReadFull(body, buf[h+frameGap:h+frameGap+want])
	eof := false
	switch {
	case rerr == io.ErrUnexpectedEOF || rerr == io.EOF:
		if n >= 0 {
			putBuf(wb)
			ex.closeBody()
			return errBodyLength
		}
		eof = true
	case rerr != nil:
		putBuf(wb)
		ex.closeBody()
		return fmt.Errorf("h1 client: reading the request body: %w", rerr)
	case n >= 0 && int64(m) == n:
		eof = true
	}
	var fr [frameGap]byte
	f := fr[:0]
	chunked := n < 0 && (!eof || len(req.Trailer) > 0)
	switch {
	case chunked:
		f = append(f, "Transfer-Encoding: chunked\r\n\r\n"...)
		if m > 0 {
			f = strconv.AppendInt(f, int64(m), 16)
			f = append(f, "\r\n"...)
		}
	case n >= 0:
		f = append(strconv.AppendInt(append(f, "Content-Length: "...), n, 10), "\r\n\r\n"...)
	case m > 0 || sendsEmptyLength(req.Method):
		f = append(strconv.AppendInt(append(f, "Content-Length: "...), int64(m), 10), "\r\n\r\n"...)
	default:
		f = append(f, "\r\n"...)
	}
	start := frameGap - len(f)
	copy(buf[h+start:], f)
	copy(buf[start:], buf[:h])
	out := buf[start : h+frameGap+m]
	if chunked && m > 0 {
		out = append(out, "\r\n"...)
	}
	if chunked && eof {
		out = appendLastChunk(out, req.Trailer)
	}
	if err := ex.writeHead(out); err != nil {
		putBuf(wb)
		ex.closeBody()
		return err
	}
	if eof {
		putBuf(wb)
		ex.closeBody()
		return nil
	}
	left := int64(-1)
	if n >= 0 {
		left = n - int64(m)
	}
	ex.wr = make(chan error, 1)
	go ex.writeBody(body, left, wb, ex.wr)
	return nil
}

// appendLastChunk ends a chunked body: the last chunk and the trailers.
func appendLastChunk(b []byte, trailer http.Header) []byte {
	b = append(b, "0\r\n"...)
	for k, vv := range trailer {
		k = http.CanonicalHeaderKey(k)
		for _, v := range vv {
			if httpguts.ValidHeaderFieldValue(v) {
				b = appendField(b, k, strings.Trim(v, " \t"))
			}
		}
	}
	return append(b, "\r\n"...)
}

// settle takes the request head back from the Sender once the answer's
// first bytes, its end or a read error came (or the answer's head was
// parsed from bytes already read): nil when the head left whole, and
// WroteHeaders is reported then, late but before the answer is handed
// on; otherwise the error a failed writeHead returns (ErrServerClosed when
// nothing left), and the Sender shut the socket down unless nothing was
// taken from the queue. rerr is the read's error, if any: when nothing
// left, it says why better than the queue (the server had closed the
// connection: an end of stream that the head, written, would have met).
func (ex *exchange) settle(rerr error) error {
	ex.queued = false
	n, err := ex.c.job.Settle()
	putBuf(ex.wb)
	ex.wb = nil
	if n > 0 {
		ex.headersWritten()
	}
	switch {
	case err == nil:
		return nil
	case n == 0 && rerr != nil:
		return fmt.Errorf("%w: %w", ErrServerClosed, rerr)
	case n == 0:
		return fmt.Errorf("%w: %w", ErrServerClosed, err)
	}
	return err
}

// writeHead writes the first bytes of the request, reporting WroteHeaders
// to the trace once any of them left.
func (ex *exchange) writeHead(b []byte) error {
	n, err := ex.c.nc.Write(b)
	if n > 0 {
		ex.headersWritten()
	}
	if err != nil && n == 0 {
		return fmt.Errorf("%w: %w", ErrServerClosed, err)
	}
	return err
}

// writeBody is the body writer: it sends the rest of a body, left bytes
// of it (or chunked to its end when left is -1), then reports on ex.wr.
// It stops when the body or a write fails; a failed body read closes the
// connection, so that the response read does not wait for a server that
// waits for the rest. It touches nothing of the exchange's after
// reporting but the socket it closes.
func (ex *exchange) writeBody(body io.Reader, left int64, wb *[]byte, done chan<- error) {
	err := ex.copyBody(body, left, (*wb)[:cap(*wb)])
	putBuf(wb)
	ex.closeBody()
	nc := ex.c.nc
	done <- err // before the close, so that the reader failing on it finds why
	if err != nil {
		nc.Close()
	}
}

func (ex *exchange) copyBody(body io.Reader, left int64, buf []byte) error {
	const pre = 18 // a chunk-size line: up to 16 hex digits and CRLF
	for left != 0 {
		p := buf[pre : len(buf)-2]
		if left > 0 && int64(len(p)) > left {
			p = p[:left]
		}
		m, rerr := body.Read(p)
		if m > 0 {
			out := p[:m]
			if left < 0 {
				var sz [pre]byte
				size := strconv.AppendInt(sz[:0], int64(m), 16)
				size = append(size, "\r\n"...)
				start := pre - len(size)
				copy(buf[start:], size)
				out = append(buf[start:pre+m], "\r\n"...)
			} else if left -= int64(m); left == 0 {
				ex.final.Store(true)
			}
			if _, err := ex.c.nc.Write(out); err != nil {
				return err
			}
		}
		switch {
		case rerr == io.EOF && left > 0:
			return errBodyLength
		case rerr == io.EOF:
			if left < 0 {
				ex.final.Store(true)
				_, err := ex.c.nc.Write(appendLastChunk(buf[:0], ex.req.Trailer))
				return err
			}
			return nil
		case rerr != nil:
			return fmt.Errorf("h1 client: reading the request body: %w", rerr)
		}
	}
	return nil
}

// closeBody closes the request's body once, as a RoundTripper must.
func (ex *exchange) closeBody() {
	if ex.req.Body != nil && ex.bodyClosed.CompareAndSwap(false, true) {
		ex.req.Body.Close()
	}
}
