package client

// One request and its answer on a Conn: RoundTrip, the response head, and
// the response body that holds the read side until the answer ends.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/gateway/h1"
)

// max1xx caps the interim answers before a final one, as net/http does,
// unless the trace takes them (Got1xxResponse).
const max1xx = 5

// exchange is one request's state, from RoundTrip to the end of its
// answer. The response and its body are part of it, so an exchange is one
// allocation.
type exchange struct {
	c     *Conn
	req   *http.Request
	order []string // the order of req's fields (RoundTripOrder), or nil
	ctx   context.Context
	trace *httptrace.ClientTrace
	// stop unregisters the context's interruption (context.AfterFunc);
	// nil when the context cannot end or is a CancelNotifier (cn).
	stop func() bool
	// cn is the context when it is a CancelNotifier, whose OnCancel holds
	// the interruption; cnFired: it ended before the exchange began.
	cn      CancelNotifier
	cnFired bool

	wrote bool // a byte of the request left (writer: RoundTrip's goroutine)
	// queued: the head is with the Sender (Config.Sender) until settle,
	// with wb, the pooled buffer it is in.
	queued bool
	wb     *[]byte
	got    bool // a byte of the answer arrived
	// wr receives the body writer's result; nil when the whole request
	// went out with the head.
	wr         chan error
	final      atomic.Bool // the body writer is at its last write
	bodyClosed atomic.Bool

	resp    http.Response
	framing h1.Framing
	left    int64 // body bytes due, with h1.Length
	close   bool  // the server ends the connection after this answer
	head    bool  // the request was HEAD

	bmu sync.Mutex // guards done, err, reading and closed: Close may run beside a Read
	// done: the exchange ended (finish ran); err: the body's sticky
	// error; reading: a Read is in its I/O, without bmu; closed: Close
	// ran, and the Read in progress finishes the exchange.
	done, reading, closed bool
	err                   error
}

// RoundTrip sends req on the connection and reads the answer's head; the
// body is read through the response. The request context's httptrace
// hooks WroteHeaders and Got1xxResponse are called from the calling
// goroutine, and so is the context's HeadersWritten when it is a
// HeadersNotifier. A request that cannot be written fails with a
// *RequestError and leaves the connection usable; any other failure
// closes it.
func (c *Conn) RoundTrip(req *http.Request) (*http.Response, error) {
	return c.RoundTripOrder(req, nil)
}

// RoundTripOrder is RoundTrip writing req's header fields in order:
// order holds keys of req.Header, each once, and the keys it lacks
// follow in sorted order. RoundTrip, with a map only, writes them all in
// sorted order: a map's own order changes from request to request. The
// request line and Host come first, framing fields last, whatever order
// says.
func (c *Conn) RoundTripOrder(req *http.Request, order []string) (*http.Response, error) {
	early, unchecked, err := c.begin()
	if err != nil {
		return nil, err
	}
	ex := &exchange{c: c, req: req, order: order, ctx: req.Context(), head: req.Method == http.MethodHead}
	ex.trace = httptrace.ContextClientTrace(ex.ctx)
	ex.watch()
	if early {
		ex.headersWritten()
	} else {
		err = ex.write()
	}
	if err != nil && unchecked {
		err = reusedClosed(err)
	}
	if err != nil && !ex.wrote {
		// Nothing left: unless the socket itself failed, the connection
		// is as good as before (an invalid request, a request body that
		// failed or fell short before the first write).
		if errors.Is(err, ErrServerClosed) {
			ex.abandon(err)
		} else {
			ex.abandon(nil)
		}
		return nil, ex.mapErr(err)
	}
	// After a failed write the server may still have answered (an early
	// error status before it stopped reading): the answer wins.
	resp, rerr := ex.readHead()
	if rerr != nil {
		if err == nil {
			err = ex.writerErr(rerr)
		}
		if unchecked && !ex.got && !errors.Is(err, ErrReusedClosed) {
			err = reusedClosed(err)
		}
		ex.abandon(err)
		return nil, ex.mapErr(err)
	}
	return resp, nil
}

// writerErr is the body writer's error if it failed already (a request
// body that failed closes the socket, and the read then fails too), else
// err.
func (ex *exchange) writerErr(err error) error {
	if ex.wr == nil {
		return err
	}
	select {
	case werr := <-ex.wr:
		ex.wr = nil
		if werr != nil {
			return werr
		}
	default:
	}
	return err
}

// interrupt is the context's AfterFunc: the exchange's blocked reads and
// writes fail at once.
func (c *Conn) interrupt() { c.nc.SetDeadline(time.Unix(1, 0)) }

// CancelNotifier is a context that tells one watcher when it ends,
// without context.AfterFunc's allocations (upstream's attempt context).
// OnCancel sets the watcher, whose ContextEnded is called from the
// goroutine that cancels the context, and reports false, keeping nothing,
// if the context has ended already; StopOnCancel forgets it and reports
// false if it was called.
type CancelNotifier interface {
	OnCancel(w interface{ ContextEnded() }) bool
	StopOnCancel() bool
}

// HeadersNotifier is a request context told, from the goroutine writing
// the request, once its headers were written, as a trace's WroteHeaders
// hook is (before it), but with no hook to allocate per request
// (upstream's attempt context).
type HeadersNotifier interface{ HeadersWritten() }

// headersWritten records that the request's headers (some of their
// bytes) left, and tells the context and the trace.
func (ex *exchange) headersWritten() {
	ex.wrote = true
	if hn, ok := ex.ctx.(HeadersNotifier); ok {
		hn.HeadersWritten()
	}
	if ex.trace != nil && ex.trace.WroteHeaders != nil {
		ex.trace.WroteHeaders()
	}
}

// interrupter is a Conn as the watcher of its exchange's CancelNotifier.
type interrupter Conn

func (i *interrupter) ContextEnded() { (*Conn)(i).interrupt() }

// watch arranges for the exchange's I/O to be interrupted when its
// context ends.
func (ex *exchange) watch() {
	if cn, ok := ex.ctx.(CancelNotifier); ok {
		ex.cn = cn
		if !cn.OnCancel((*interrupter)(ex.c)) {
			ex.cnFired = true
			ex.c.interrupt()
		}
		return
	}
	if ex.ctx.Done() != nil {
		ex.stop = context.AfterFunc(ex.ctx, ex.c.interrupt)
	}
}

// unwatch ends watch's arrangement, once, and reports whether the
// interruption happened (or is happening).
func (ex *exchange) unwatch() (interrupted bool) {
	switch {
	case ex.cn != nil:
		interrupted = ex.cnFired || !ex.cn.StopOnCancel()
		ex.cn = nil
	case ex.stop != nil:
		interrupted = !ex.stop()
		ex.stop = nil
	}
	return interrupted
}

// mapErr prefers the context's reason over the I/O error it caused.
func (ex *exchange) mapErr(err error) error {
	if ex.ctx.Err() != nil {
		return fmt.Errorf("h1 client: %w (%v)", context.Cause(ex.ctx), err)
	}
	return err
}

// abandon ends an exchange that produced no response. With a nil why,
// nothing was written and the connection stays usable.
func (ex *exchange) abandon(why error) {
	ex.done = true
	if ex.unwatch() && why == nil {
		why = context.Cause(ex.ctx)
	}
	if why != nil {
		ex.closeBody()
	}
	ex.c.releaseBuf()
	ex.c.end(why)
}

// readHead reads the answer's head, passing interim ones to the trace,
// and sets up the body.
func (ex *exchange) readHead() (*http.Response, error) {
	c := ex.c
	c.takeBuf()
	n1xx := 0
	for {
		n, err := ex.parseHead()
		if ex.queued {
			// The head came from bytes read before this request's
			// (parseHead settles after each read of its own).
			if serr := ex.settle(nil); serr != nil {
				return nil, serr
			}
		}
		if err != nil {
			return nil, err
		}
		st := c.head.Status
		if st >= 200 || st == http.StatusSwitchingProtocols {
			return ex.response(n)
		}
		if ex.trace != nil && ex.trace.Got1xxResponse != nil {
			if err := ex.trace.Got1xxResponse(st, c.mimeHeader(n)); err != nil {
				return nil, err
			}
			n1xx = 0
		}
		if n1xx++; n1xx > max1xx {
			return nil, ErrTooMany1xx
		}
		c.r += n
	}
}

// parseHead reads until the read buffer holds a whole head, growing the
// buffer up to the head limit.
func (ex *exchange) parseHead() (int, error) {
	c := ex.c
	lim := c.limits()
	for {
		if c.w > c.r {
			n, err := h1.ParseResponseHead(c.rb[c.r:c.w], lim, ex.head, &c.head)
			if err == nil {
				return n, nil
			}
			if err != h1.ErrIncomplete {
				return 0, &ProtocolError{Addr: c.addr, Err: err}
			}
		}
		if c.w == len(c.rb) {
			if c.r > 0 {
				c.w = copy(c.rb, c.rb[c.r:c.w])
				c.r = 0
			} else {
				grown := make([]byte, min(2*len(c.rb), lim.MaxHeadBytes+1))
				copy(grown, c.rb[:c.w])
				c.rb = grown
			}
		}
		k, err := c.nc.Read(c.rb[c.w:])
		if ex.queued {
			if serr := ex.settle(err); serr != nil {
				// Nothing of the request left (an answer then is not
				// to it), or the socket was shut down under it.
				return 0, serr
			}
		}
		c.w += k
		if k > 0 {
			ex.got = true
			continue
		}
		switch {
		case err == nil:
		case !ex.got:
			return 0, fmt.Errorf("%w: %w", ErrServerClosed, err)
		case err == io.EOF:
			return 0, &ProtocolError{Addr: c.addr, Err: io.ErrUnexpectedEOF}
		default:
			return 0, err
		}
	}
}

// response builds the final answer from the head of n bytes at c.r, and
// sets its body up. The head's bytes become one string, of which the
// status, field names and values are substrings.
func (ex *exchange) response(n int) (*http.Response, error) {
	c := ex.c
	hd := &c.head
	raw := c.rb[c.r : c.r+n]
	s := string(raw)
	sub := func(b []byte) string {
		off := cap(raw) - cap(b)
		return s[off : off+len(b)]
	}
	resp := &ex.resp
	resp.StatusCode = hd.Status
	resp.Status = s[len("HTTP/1.1 "):len("HTTP/1.1 123")]
	if len(hd.Reason) > 0 || len(s) > len("HTTP/1.1 123") && s[len("HTTP/1.1 123")] == ' ' {
		resp.Status = s[len("HTTP/1.1 ") : len("HTTP/1.1 123 ")+len(hd.Reason)]
	}
	resp.Proto, resp.ProtoMajor, resp.ProtoMinor = "HTTP/1.1", 1, hd.Minor
	if hd.Minor == 0 {
		resp.Proto = "HTTP/1.0"
	}
	resp.Request = ex.req
	resp.Close = hd.Close
	resp.ContentLength = hd.ContentLength
	chunked := hd.Framing == h1.Chunked
	dropConnection := hd.Close && hd.Minor == 1
	h := make(http.Header, len(hd.Fields))
	vals := make([]string, len(hd.Fields))
	for i, f := range hd.Fields {
		k := textproto.CanonicalMIMEHeaderKey(sub(f.Name))
		v := sub(f.Value)
		switch k {
		case "Transfer-Encoding":
			continue
		case "Trailer":
			if chunked {
				ex.announce(v)
				continue
			}
		case "Connection":
			if dropConnection {
				continue
			}
		case "Content-Length":
			if chunked || len(h[k]) > 0 {
				continue
			}
		}
		if old, ok := h[k]; ok {
			h[k] = append(old, v)
		} else {
			vals[i] = v
			h[k] = vals[i : i+1 : i+1]
		}
	}
	resp.Header = h
	c.r += n
	ex.framing, ex.close = hd.Framing, hd.Close
	switch hd.Framing {
	case h1.NoBody:
		if hd.Status == http.StatusSwitchingProtocols {
			return ex.switchProtocols()
		}
		if hd.Status == http.StatusNoContent || hd.Status == http.StatusNotModified {
			resp.ContentLength = 0
		}
		resp.Body = http.NoBody
		ex.finish(nil)
		return resp, nil
	case h1.Length:
		ex.left = hd.ContentLength
		if ex.left == 0 {
			resp.Body = http.NoBody
			ex.finish(nil)
			return resp, nil
		}
	case h1.Chunked:
		resp.TransferEncoding = []string{"chunked"}
		resp.ContentLength = -1
		c.chunk.Reset()
	case h1.UntilClose:
		resp.ContentLength = -1
	}
	resp.Body = (*body)(ex)
	return resp, nil
}

// announce takes a chunked answer's Trailer field: the names its
// trailers will have, with no values until the body ends.
func (ex *exchange) announce(v string) {
	for len(v) > 0 {
		var k string
		k, v, _ = cut(v, ',')
		k = textproto.TrimString(k)
		if k == "" {
			continue
		}
		k = http.CanonicalHeaderKey(k)
		switch k {
		case "Transfer-Encoding", "Trailer", "Content-Length":
			continue
		}
		if ex.resp.Trailer == nil {
			ex.resp.Trailer = make(http.Header)
		}
		ex.resp.Trailer[k] = nil
	}
}

func cut(s string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// mimeHeader is an interim answer's fields for Got1xxResponse.
func (c *Conn) mimeHeader(n int) textproto.MIMEHeader {
	h := make(textproto.MIMEHeader, len(c.head.Fields))
	for _, f := range c.head.Fields {
		k := textproto.CanonicalMIMEHeaderKey(string(f.Name))
		h[k] = append(h[k], string(f.Value))
	}
	return h
}

// switchProtocols hands the connection to a 101's body.
func (ex *exchange) switchProtocols() (*http.Response, error) {
	c := ex.c
	if ex.wr != nil || ex.unwatch() {
		return nil, errors.New("h1 client: 101 Switching Protocols while the request body was still being sent")
	}
	sw := &switched{nc: c.nc, rest: append([]byte(nil), c.rb[c.r:c.w]...)}
	c.r = c.w
	ex.resp.Body = sw
	ex.finish(ErrSwitched)
	return &ex.resp, nil
}

// switched is a 101 answer's body: the connection itself, after what was
// read ahead.
type switched struct {
	nc   interface{ io.ReadWriteCloser }
	rest []byte
}

func (s *switched) Read(p []byte) (int, error) {
	if len(s.rest) > 0 {
		n := copy(p, s.rest)
		s.rest = s.rest[n:]
		return n, nil
	}
	return s.nc.Read(p)
}
func (s *switched) Write(p []byte) (int, error) { return s.nc.Write(p) }
func (s *switched) Close() error                { return s.nc.Close() }

// finish ends the exchange once: the connection is idle again if the
// answer and the request both ended cleanly and the server keeps it, else
// closed with why.
func (ex *exchange) finish(why error) {
	if ex.done {
		return
	}
	ex.done = true
	c := ex.c
	interrupted := ex.unwatch()
	if why == nil {
		switch {
		case interrupted:
			why = context.Cause(ex.ctx)
		case ex.close:
			why = ErrKeepAliveEnded
		case c.r < c.w:
			why = &ProtocolError{Addr: c.addr, Err: errors.New("bytes after the response")}
		case ex.wr != nil && ex.final.Load():
			// The server read the body and answered while the writer
			// was still returning from its last write: its word is
			// due at once, and bounded all the same.
			c.nc.SetWriteDeadline(time.Now().Add(time.Second))
			why = <-ex.wr
			c.nc.SetWriteDeadline(time.Time{})
		case ex.wr != nil:
			select {
			case why = <-ex.wr:
			default:
				// The server answered before it read the whole body.
				why = errEarlyAnswer
			}
		}
	}
	if why != nil && why != ErrSwitched {
		ex.closeBody()
	}
	c.releaseBuf()
	c.end(why)
}

// takeBuf gives the read side a buffer for the answer.
func (c *Conn) takeBuf() {
	c.rbp = getBuf()
	c.rb, c.r, c.w = *c.rbp, 0, 0
}

// releaseBuf gives it back: the connection holds no buffer while idle.
func (c *Conn) releaseBuf() {
	if c.rbp != nil {
		putBuf(c.rbp)
	}
	c.rbp, c.rb, c.r, c.w = nil, nil, 0, 0
}

// errEarlyAnswer closes a connection whose server answered before the
// request body was all sent: what it did with the rest is unknown.
var errEarlyAnswer = errors.New("h1 client: answer complete before the request body was sent")

// errClosedBody is a Read after Close.
var errClosedBody = errors.New("h1 client: read on a closed response body")

// body is an answer's body: the exchange itself, holding the read side.
type body exchange

func (b *body) Read(p []byte) (int, error) {
	ex := (*exchange)(b)
	ex.bmu.Lock()
	defer ex.bmu.Unlock()
	switch {
	case ex.err != nil:
		return 0, ex.err
	case ex.done:
		return 0, io.EOF
	case len(p) == 0:
		return 0, nil
	}
	ex.reading = true
	ex.bmu.Unlock()
	var n int
	var err error
	switch ex.framing {
	case h1.Length:
		n, err = ex.readRaw(p[:min(int64(len(p)), ex.left)])
		ex.left -= int64(n)
		if err == io.EOF {
			err = &ProtocolError{Addr: ex.c.addr, Err: io.ErrUnexpectedEOF}
		}
		if err == nil && ex.left == 0 {
			err = io.EOF
		}
	case h1.UntilClose:
		n, err = ex.readRaw(p)
	case h1.Chunked:
		n, err = ex.readChunked(p)
	}
	ex.bmu.Lock()
	ex.reading = false
	switch {
	case ex.closed:
		n, err = 0, errClosedBody
		ex.err = err
		ex.finish(ErrBodyUnfinished)
	case err == io.EOF:
		ex.finish(nil)
	case err != nil:
		err = ex.mapErr(err)
		ex.err = err
		ex.finish(err)
	}
	return n, err
}

// readRaw reads what the buffer holds, then the socket straight into p.
func (ex *exchange) readRaw(p []byte) (int, error) {
	c := ex.c
	if c.r < c.w {
		n := copy(p, c.rb[c.r:c.w])
		c.r += n
		return n, nil
	}
	return c.nc.Read(p)
}

// readChunked decodes through the buffer until some data or the end.
func (ex *exchange) readChunked(p []byte) (int, error) {
	c := ex.c
	for {
		if c.chunk.Done() {
			ex.setTrailers()
			return 0, io.EOF
		}
		if c.r == c.w {
			c.r, c.w = 0, 0
			k, err := c.nc.Read(c.rb)
			c.w = k
			if k == 0 {
				if err == io.EOF || err == nil {
					err = &ProtocolError{Addr: c.addr, Err: io.ErrUnexpectedEOF}
				}
				return 0, err
			}
		}
		in := c.rb[c.r:min(c.w, c.r+len(p))]
		data, k, err := c.chunk.Feed(in)
		c.r += k
		if err != nil {
			return 0, &ProtocolError{Addr: c.addr, Err: err}
		}
		if len(data) > 0 {
			return copy(p, data), nil
		}
	}
}

// setTrailers fills the response's Trailer from the trailer section.
func (ex *exchange) setTrailers() {
	t := ex.c.chunk.Trailers()
	if len(t) == 0 {
		return
	}
	got := make(http.Header)
	for len(t) > 0 {
		i := indexCRLF(t)
		line := t[:i]
		t = t[i+2:]
		colon := 0
		for colon < len(line) && line[colon] != ':' {
			colon++
		}
		k := textproto.CanonicalMIMEHeaderKey(string(line[:colon]))
		got[k] = append(got[k], textproto.TrimString(string(line[colon+1:])))
	}
	if ex.resp.Trailer == nil {
		ex.resp.Trailer = got
		return
	}
	for k, vv := range got {
		ex.resp.Trailer[k] = vv
	}
}

func indexCRLF(b []byte) int {
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' {
			return i
		}
	}
	return len(b) - 2
}

// Close ends the body. Before its end, the connection cannot be reused
// and is closed; a Read in progress on another goroutine fails and
// finishes the exchange.
func (b *body) Close() error {
	ex := (*exchange)(b)
	ex.bmu.Lock()
	defer ex.bmu.Unlock()
	if ex.done || ex.closed {
		return nil
	}
	ex.closed = true
	ex.c.nc.Close()
	if !ex.reading {
		ex.err = errClosedBody
		ex.finish(ErrBodyUnfinished)
	}
	return nil
}
