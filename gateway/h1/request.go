package h1

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"sync"
)

// newRequest builds the handler's *http.Request from cc.req, as net/http
// would have: Host out of the header, Transfer-Encoding into
// TransferEncoding, equal Content-Lengths folded into one.
func (cc *conn) newRequest(ctx context.Context) (*http.Request, error) {
	req := &cc.req
	target := string(req.Target)
	var u *url.URL
	if string(req.Method) == http.MethodConnect && target[0] != '/' {
		u = &url.URL{Host: target}
	} else {
		var err error
		if u, err = url.ParseRequestURI(target); err != nil {
			return nil, err
		}
	}
	h := make(http.Header, len(req.Fields))
	for _, f := range req.Fields {
		switch {
		case equalFold(f.Name, "Host"), equalFold(f.Name, "Transfer-Encoding"):
			continue
		case equalFold(f.Name, "Content-Length") && len(h["Content-Length"]) > 0:
			continue
		}
		k := textproto.CanonicalMIMEHeaderKey(string(f.Name))
		h[k] = append(h[k], string(f.Value))
	}
	host := u.Host
	if host == "" {
		host = string(req.Host)
	}
	ctx, cancel := context.WithCancel(ctx)
	cc.cancelReq = cancel
	r := &http.Request{
		Method:     string(req.Method),
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: req.Minor,
		Header:     h,
		Host:       host,
		RequestURI: target,
		RemoteAddr: cc.remoteAddr(),
		Close:      req.Close,
	}
	if req.Minor == 0 {
		r.Proto = "HTTP/1.0"
	}
	b := &body{cc: cc, framing: req.Framing, left: req.ContentLength, expect100: req.Expect100}
	switch req.Framing {
	case Chunked:
		r.TransferEncoding = []string{"chunked"}
		r.ContentLength = -1
		cc.dec.Reset()
	case Length:
		r.ContentLength = req.ContentLength
	}
	if req.Framing == NoBody || req.Framing == Length && req.ContentLength == 0 {
		b.eof = true
		b.expect100 = false
	}
	r.Body = b
	return r.WithContext(ctx), nil
}

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
	cc *conn
	rw *response // for 100 Continue

	mu        sync.Mutex // guards what follows; held across reads, as net/http's body does
	framing   Framing
	left      int64 // with Length: bytes still due
	expect100 bool  // 100 Continue not yet sent
	eof       bool
	closed    bool  // the handler returned or closed it
	err       error // a failure, returned to every later read
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
