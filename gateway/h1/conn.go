package h1

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// bufSize is the pooled read and write buffers' size; a head that does not
// fit grows its connection's read buffer up to the head limit.
const bufSize = 4 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) == bufSize {
		*b = (*b)[:bufSize]
		bufPool.Put(b)
	}
}

// aLongTimeAgo is a deadline in the past, to interrupt a pending read.
var aLongTimeAgo = time.Unix(1, 0)

// conn is one served connection; the fields below are its read side's,
// owned by serve's goroutine and lent to a request's body (see doc.go).
type conn struct {
	s   *Server
	c   net.Conn
	ctx context.Context // the connection's, from Server.ConnContext
	raw syscall.RawConn // see rawConn
	waiter
	peer  string // c.RemoteAddr(), formatted once
	first bool   // no request served yet: HTTP/2 prior knowledge still possible

	buf  *[]byte // nil while idle; buf[r:w] is read and not yet parsed
	r, w int
	req  Request
	dec  ChunkDecoder

	// Scratch state of checkAhead.
	aheadReq Request
	aheadDec ChunkDecoder

	// wmu serialises writes to c: the response's and a 100 Continue from
	// the body reader.
	wmu sync.Mutex

	// The watcher (watch): a read of one byte while the handler runs and
	// the body is done, to notice the client leaving. It may be started
	// from the goroutine reading the body.
	watchMu   sync.Mutex    // guards watchDone and watchOff
	watchDone chan struct{} // closed when the watcher returns; nil when none runs
	watchOff  bool          // the handler returned: no watcher for this request
	peeked    [1]byte       // written by the watcher, read after stopWatch
	nPeeked   int           // 1 when the watcher read a byte of the next request
	watchErr  error         // what ended the watcher's read, other than a stop
	cancelReq func()        // cancels the current request's context
	// broken: the client is gone or a write failed; close after this
	// request. Set from the handler's and the body reader's goroutines.
	broken atomic.Bool
}

func newConn(s *Server, c net.Conn) *conn {
	return &conn{s: s, c: c, first: true}
}

// rawConn is the socket to wait on for readability, or nil: a connection
// that is not a socket, or a wrapper with bytes of its own buffered (it
// then returns an error from SyscallConn), or TLS, whose records must be
// read through crypto/tls (which keeps its own buffers while idle). Such
// connections wait in Read, holding a buffer.
// Once had, it is kept: a wrapper's buffer, once drained, does not fill
// again.
func (cc *conn) rawConn() syscall.RawConn {
	if cc.raw != nil {
		return cc.raw
	}
	if sc, ok := cc.c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			cc.raw = rc
		}
	}
	return cc.raw
}

func (cc *conn) close(st http.ConnState) {
	if cc.buf != nil {
		putBuf(cc.buf)
		cc.buf = nil
	}
	if st == http.StateClosed {
		cc.c.Close()
	}
	cc.s.track(cc, st)
}

// serve reads and answers requests until the connection ends.
func (cc *conn) serve() {
	ctx := context.Background()
	if cc.s.ConnContext != nil {
		ctx = cc.s.ConnContext(ctx, cc.c)
	}
	ctx = context.WithValue(ctx, http.ServerContextKey, serverKeyValue)
	cc.ctx = context.WithValue(ctx, http.LocalAddrContextKey, cc.c.LocalAddr())
	cc.run(cc.s.readHeaderTimeout()) // until the first request's bytes
}

// run serves requests, waiting up to wait for the first. When the
// connection goes idle with nothing read ahead, run goes on in a new
// goroutine and returns: the stack a request grew (the handler, the
// proxy, the upstream call) is freed, and the idle connection waits on a
// fresh small one.
func (cc *conn) run(wait time.Duration) {
	ctx := cc.ctx
	for {
		if err := cc.awaitRequest(wait); err != nil {
			cc.close(http.StateClosed)
			return
		}
		wait = cc.s.idleTimeout()
		if !cc.s.moveTo(cc, http.StateActive) {
			cc.close(http.StateClosed)
			return
		}
		st := cc.serveRequest(ctx)
		if st == stateHandedOff {
			ahead := append([]byte(nil), (*cc.buf)[cc.r:cc.w]...)
			cc.r = cc.w
			cc.releaseBuf()
			cc.s.track(cc, stateHandedOff)
			cc.s.H2(cc.c, ahead)
			return
		}
		cc.first = false
		if st != http.StateIdle {
			cc.close(st)
			return
		}
		cc.releaseBuf()
		if !cc.s.moveTo(cc, http.StateIdle) {
			cc.close(http.StateClosed)
			return
		}
		if cc.buf == nil {
			go cc.run(wait)
			return
		}
	}
}

// releaseBuf gives the read buffer back to the pool unless it holds bytes
// read ahead (pipelining).
// The parsed heads, which point into the buffer, are dropped with it: kept,
// they would pin the buffer while the connection idles.
func (cc *conn) releaseBuf() {
	if cc.buf != nil && cc.r == cc.w {
		putBuf(cc.buf)
		cc.buf, cc.r, cc.w = nil, 0, 0
		putFields(cc.req.Fields)
		putFields(cc.aheadReq.Fields)
		cc.req, cc.aheadReq = Request{}, Request{}
		cc.dec, cc.aheadDec = ChunkDecoder{}, ChunkDecoder{}
	}
}

// awaitRequest waits up to d for the first bytes of the next request. An
// idle connection holds no buffer: it waits for readability on the raw
// socket, and takes a pooled buffer only once bytes arrived (or were
// already read ahead: pipelining).
func (cc *conn) awaitRequest(d time.Duration) error {
	if cc.r < cc.w || cc.nPeeked > 0 {
		return nil
	}
	cc.releaseBuf()
	cc.c.SetReadDeadline(time.Now().Add(d))
	if rc := cc.rawConn(); rc != nil {
		return waitReadable(rc, &cc.waiter)
	}
	return nil
}

// fieldsPool keeps the Fields storage of idle connections' Requests.
var fieldsPool sync.Pool

// putFields gives fs's storage to fieldsPool, cleared: its slices point
// into a read buffer.
func putFields(fs []Field) {
	if cap(fs) == 0 {
		return
	}
	fs = fs[:cap(fs)]
	clear(fs)
	fs = fs[:0]
	fieldsPool.Put(&fs)
}

// getFields is storage for a Request's Fields.
func getFields() []Field {
	if p, ok := fieldsPool.Get().(*[]Field); ok {
		return *p
	}
	return make([]Field, 0, 32)
}

// takeBuf makes sure cc has a read buffer, with the byte the watcher read
// ahead, if any, at its start.
func (cc *conn) takeBuf() {
	if cc.buf == nil {
		cc.buf, cc.r, cc.w = getBuf(), 0, 0
		if cc.req.Fields == nil {
			cc.req.Fields = getFields()
			cc.aheadReq.Fields = getFields()
		}
	}
	if cc.nPeeked > 0 {
		if cc.r > 0 {
			cc.r--
		} else {
			copy((*cc.buf)[1:], (*cc.buf)[:cc.w])
			cc.w++
		}
		(*cc.buf)[cc.r] = cc.peeked[0]
		cc.nPeeked = 0
	}
}

// fill reads more into the buffer, making room first: by moving the
// unread bytes to the front, or by growing the buffer up to max bytes.
func (cc *conn) fill(max int) (int, error) {
	cc.takeBuf()
	b := *cc.buf
	if cc.w == len(b) {
		switch {
		case cc.r > 0:
			cc.w = copy(b, b[cc.r:cc.w])
			cc.r = 0
		case len(b) < max:
			nb := make([]byte, min(2*len(b), max))
			copy(nb, b[:cc.w])
			putBuf(cc.buf)
			cc.buf = &nb
			b = nb
		default:
			return 0, ErrHeadTooLarge
		}
	}
	n, err := cc.c.Read(b[cc.w:])
	cc.w += n
	return n, err
}

// h2PrefaceLine opens an HTTP/2 connection with prior knowledge.
var h2PrefaceLine = []byte("PRI * HTTP/2.0\r\n")

// errH2 ends readHead on a connection that opened with h2PrefaceLine.
var errH2 = errors.New("h1: HTTP/2 preface")

// readHead reads until a whole head is parsed into cc.req, under the
// read-header timeout, and consumes it. The first request's clock started
// when the connection did (serve), so that a client that waits before it
// trickles is cut as surely; a later one's starts with its first byte.
func (cc *conn) readHead() error {
	if !cc.first {
		cc.c.SetReadDeadline(time.Now().Add(cc.s.readHeaderTimeout()))
	}
	max := cc.s.Limits.maxHead() + 1
	for {
		if cc.first && cc.s.H2 != nil && cc.r < cc.w {
			got := (*cc.buf)[cc.r:cc.w]
			n := min(len(got), len(h2PrefaceLine))
			if bytes.Equal(got[:n], h2PrefaceLine[:n]) {
				if n == len(h2PrefaceLine) {
					return errH2
				}
				if _, err := cc.fill(max); err != nil {
					return err
				}
				continue
			}
		}
		if cc.r < cc.w {
			n, err := ParseHead((*cc.buf)[cc.r:cc.w], cc.s.Limits, &cc.req)
			if err == nil {
				cc.r += n
				cc.c.SetReadDeadline(time.Time{})
				return nil
			}
			if err != ErrIncomplete {
				return err
			}
		}
		if _, err := cc.fill(max); err != nil {
			return err
		}
	}
}

// serveRequest reads one request and answers it. It returns StateIdle to
// go on with the next, StateClosed or StateHijacked.
func (cc *conn) serveRequest(ctx context.Context) http.ConnState {
	cc.takeBuf()
	if err := cc.readHead(); err != nil {
		if err == errH2 {
			return stateHandedOff
		}
		var perr *Error
		if errors.As(err, &perr) {
			cc.refuse(perr)
		}
		return http.StateClosed
	}
	if err := cc.checkAhead(); err != nil {
		var perr *Error
		if errors.As(err, &perr) {
			cc.refuse(perr)
		}
		return http.StateClosed
	}
	r, err := cc.newRequest(ctx)
	if err != nil {
		cc.refuse(ErrTarget)
		return http.StateClosed
	}
	defer cc.cancelReq()
	w := newResponse(cc, r)
	defer w.release()
	if exp := r.Header["Expect"]; len(exp) > 0 && !cc.req.Expect100 {
		w.closeAfter = true
		w.WriteHeader(http.StatusExpectationFailed)
		w.finish()
		return http.StateClosed
	}
	b := r.Body.(*body)
	b.rw = w
	cc.watchMu.Lock()
	cc.watchOff = false
	cc.watchMu.Unlock()
	if cc.req.Framing == NoBody {
		cc.watch()
	}
	if !cc.handle(w, r) {
		cc.stopWatch()
		return http.StateClosed
	}
	if w.hijacked {
		return http.StateHijacked
	}
	cc.stopWatch()
	if !b.drainable() {
		w.closeAfter = true
	}
	// The response goes out before what is left of the body is read: a
	// client may wait for it before it sends more, or not send more.
	w.finish()
	// A read of the body still in flight on another goroutine (an
	// upstream client that stopped caring) ends by this deadline at
	// worst.
	cc.c.SetReadDeadline(time.Now().Add(cc.s.readHeaderTimeout()))
	drained := b.finish()
	cc.c.SetReadDeadline(time.Time{})
	if !drained || w.closeAfter || cc.req.Close || cc.broken.Load() {
		return http.StateClosed
	}
	return http.StateIdle
}

// checkAhead reads what was read ahead of the head just parsed as the
// request's body and the heads after it would be read, and returns the
// first refusal: a request is not served while bytes already at hand
// after it are malformed (a smuggled second head, a bad chunk), as the
// smuggling guard did when it scanned each read whole. Bytes not yet
// read are judged when they come.
func (cc *conn) checkAhead() error {
	rest := (*cc.buf)[cc.r:cc.w]
	framing, left := cc.req.Framing, cc.req.ContentLength
	for len(rest) > 0 {
		switch framing {
		case Length:
			if int64(len(rest)) <= left {
				return nil
			}
			rest = rest[left:]
		case Chunked:
			cc.aheadDec.Reset()
			for len(rest) > 0 && !cc.aheadDec.Done() {
				_, n, err := cc.aheadDec.Feed(rest)
				if err != nil {
					return err
				}
				rest = rest[n:]
			}
			if !cc.aheadDec.Done() {
				return nil
			}
		}
		n, err := ParseHead(rest, cc.s.Limits, &cc.aheadReq)
		if err == ErrIncomplete {
			return nil
		}
		if err != nil {
			return err
		}
		rest = rest[n:]
		framing, left = cc.aheadReq.Framing, cc.aheadReq.ContentLength
	}
	return nil
}

// handle runs the handler; false means it panicked (ErrAbortHandler
// included, which is how a handler aborts a response) and the
// connection must close without finishing the response.
func (cc *conn) handle(w *response, r *http.Request) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				cc.s.log().Error("h1: handler panic", "path", r.URL.Path, "panic", p)
			}
			ok = false
		}
	}()
	cc.s.Handler.ServeHTTP(w, r)
	return true
}

// refuse answers a head the parser refused and counts it; the connection
// then closes.
func (cc *conn) refuse(e *Error) {
	if cc.s.Refused != nil {
		cc.s.Refused(e)
	}
	body := e.Reason + "\n"
	if e.Status == http.StatusBadRequest {
		body = "bad request: " + body
	}
	b := appendStatusLine(nil, 1, e.Status)
	b = append(b, "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	b = appendInt(b, int64(len(body)))
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	cc.c.SetWriteDeadline(time.Now().Add(cc.s.readHeaderTimeout()))
	cc.c.Write(b)
}

// watch starts the watcher: with the request body done and nothing read
// ahead, a read of one byte tells when the client goes away (end of
// stream, reset), which cancels the request's context, as net/http's
// background read does. A byte that arrives is the next request's: kept.
func (cc *conn) watch() {
	cc.watchMu.Lock()
	defer cc.watchMu.Unlock()
	if cc.watchOff || cc.watchDone != nil || cc.r < cc.w || cc.broken.Load() {
		return
	}
	done := make(chan struct{})
	cc.watchDone = done
	cancel := cc.cancelReq
	go func() {
		defer close(done)
		n, err := cc.c.Read(cc.peeked[:])
		cc.nPeeked = n
		if n == 0 && err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			cc.watchErr = err
			cancel()
		}
	}()
}

// stopWatch stops the watcher and waits for it; a client it saw leave
// marks the connection broken.
// No watcher starts after it for this request.
func (cc *conn) stopWatch() {
	cc.watchMu.Lock()
	cc.watchOff = true
	done := cc.watchDone
	cc.watchDone = nil
	cc.watchMu.Unlock()
	if done == nil {
		return
	}
	cc.c.SetReadDeadline(aLongTimeAgo)
	<-done
	cc.c.SetReadDeadline(time.Time{})
	if cc.watchErr != nil {
		cc.broken.Store(true)
		cc.watchErr = nil
	}
}

// serverKeyValue is the http.ServerContextKey value of requests served
// here: handlers written for net/http look for it to know that a panic
// with http.ErrAbortHandler will be recovered, as handle does.
var serverKeyValue = new(http.Server)

var _ io.Reader = (*body)(nil)
