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
// owned by its watcher while it idles, by a worker while a request is
// served, and lent to a request's body (see doc.go).
type conn struct {
	s *Server
	c net.Conn
	// state is the connection's http.ConnState as Server.track and
	// moveTo last set it, for closeIdle.
	state atomic.Int32
	ctx   context.Context // the connection's, from Server.ConnContext
	// ctxEnds: ctx can end (its Done is not nil), asked once in start:
	// Done walks the chain of values ConnContext added.
	ctxEnds bool
	raw     syscall.RawConn // see rawConn; called under watchMu once requests are served
	waiter
	peer  string // c.RemoteAddr(), formatted once
	first bool   // no request served yet: HTTP/2 prior knowledge still possible
	// headBy is the first head's deadline while it is not set on the
	// socket: a head read whole at once needs none (readHead).
	headBy time.Time

	buf *[]byte // nil while idle; buf[r:w] is read and not yet parsed
	// holding mirrors buf != nil for tests, which read it while the
	// watcher may take and give back a buffer in its callback.
	holding   atomic.Bool
	r, w      int
	req       Request
	reqFields *[]Field // the box req.Fields' storage came in (putFields)
	// taken: the watcher read this request (takeRequest) and waits on
	// the socket, watching it, since; set by the watcher, cleared by the
	// worker (readHead).
	taken bool
	dec   ChunkDecoder

	// Scratch state of checkAhead.
	aheadReq    Request
	aheadFields *[]Field
	aheadDec    ChunkDecoder

	// wmu serialises writes to c: the response's and a 100 Continue from
	// the body reader.
	wmu  sync.Mutex
	last lastWrite // writeLast's state; guarded by wmu
	vec  vecWrite  // writeBufs's state; guarded by wmu

	// The watcher (watch, await): a goroutine that waits on the socket
	// while a request is served, its body done, to notice the client
	// leaving, and then, the request answered, goes on waiting for the
	// next one: it is the idle connection's goroutine too. So a request
	// costs no goroutine and no deadline of its own for it.
	watchMu  sync.Mutex    // guards the fields down to idleEnd
	watching watchState    // what the watcher goroutine is doing, if any
	watchOff bool          // the handler returned: no watcher for this request
	ready    bool          // the watcher parked on the next request's bytes, come while a request was served
	stopped  chan struct{} // made by stopWatch, closed by the watcher it stopped
	// kick moves a parked watcher (watchParked) on to what watching
	// then says; made when it first parks, with room for the one token.
	kick      chan struct{}
	cancelReq *reqCtx // the current request's context, cancelled by its end or the client leaving; nil between requests
	// lateWatch: the request was handed to a worker unwatched, its
	// socket not on the poller (takeRequest, latePending); watch arms
	// late for it instead of starting the watcher (lateArmed), and late
	// starts the watcher if the request is still served lateWatchDelay
	// later. Cleared as the request ends.
	lateWatch lateState
	late      *time.Timer
	// idleBy is the idle timeout's read deadline while it is the one set
	// on the socket (zero: another, or none), and idleEnd when the
	// current idle wait is due to end. A deadline set is left in place
	// from one request to the next while it is not later than due (idle):
	// a keep-alive request sets none (readHead), and the watcher moves
	// it on when it passes early (rearmLocked). Written under watchMu,
	// or by the request's goroutine while no watcher waits (readHead).
	idleBy, idleEnd time.Time
	// peeked and nPeeked: where a watcher without a raw socket reads
	// (readOne), the next request's first byte, put back by takeBuf.
	// Written by the watcher, read after it ended or handed over.
	peeked  [1]byte
	nPeeked int
	// broken: the client is gone or a write failed; close after this
	// request. Set from the handler's and the body reader's goroutines.
	broken atomic.Bool

	// admit is the connection's state in the server's admission
	// (workers.go), guarded by workers.mu; admit.waits is also read by
	// the worker the request was let in to (conn.run).
	admit admission
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
	if !canWait || cc.raw != nil {
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
	cc.watchMu.Lock()
	switch cc.watching {
	case watchRequest:
		// Closing the socket ends its wait.
		cc.watching = watchClosing
	case watchParked:
		cc.unparkLocked(watchNone)
	}
	cc.watchMu.Unlock()
	// The buffer and the heads' field storage go back to their pools for
	// the next connection, whatever is left unread.
	cc.r = cc.w
	cc.releaseBuf()
	if st == http.StateClosed {
		cc.c.Close()
	}
	cc.s.track(cc, st)
}

// writeLast writes b, the last bytes of a response after which the
// connection closes, with wmu held. On a socket, the end of stream leaves
// with them (sendLast): the client gets the response and the FIN in one
// segment, and acknowledges both at once, a packet fewer each way than
// with a FIN of its own when the socket is closed; and it sees the end
// of the response even before the socket is closed (a request body left
// to read, the watcher still on the socket).
func (cc *conn) writeLast(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	cc.watchMu.Lock()
	rc := cc.rawConn()
	cc.watchMu.Unlock()
	var n int
	if rc != nil {
		var err error
		if n, err = sendLast(rc, b, &cc.last); n == len(b) || err != nil {
			return n, err
		}
	}
	m, err := cc.c.Write(b[n:])
	return n + m, err
}

// writeBufs writes bufs, with wmu held: on a socket in one system call
// where it takes them all (sendBufs).
func (cc *conn) writeBufs(bufs net.Buffers) error {
	cc.watchMu.Lock()
	rc := cc.rawConn()
	cc.watchMu.Unlock()
	var err error
	if rc != nil {
		_, err = sendBufs(rc, bufs, &cc.vec)
	} else {
		_, err = bufs.WriteTo(cc.c)
	}
	return err
}

// serve waits for the connection's first request, under the read-header
// timeout, on the caller's goroutine, and has a worker serve it.
func (cc *conn) serve() {
	if !cc.start() {
		return
	}
	// The first request's clock starts now (readHead).
	cc.c.SetReadDeadline(time.Now().Add(cc.s.readHeaderTimeout()))
	if cc.buf != nil {
		cc.s.workers.run(cc)
		return
	}
	cc.s.firstWaits.Add(1)
	cc.watching = watchOwns
	cc.await(cc.rawConn())
}

// start tracks the new connection and derives its context; false means
// the server is closing, and the connection was closed.
func (cc *conn) start() bool {
	if !cc.s.track(cc, http.StateNew) {
		cc.c.Close()
		return false
	}
	ctx := context.Background()
	if cc.s.ConnContext != nil {
		ctx = cc.s.ConnContext(ctx, cc.c)
	}
	ctx = context.WithValue(ctx, http.ServerContextKey, serverKeyValue)
	cc.ctx = context.WithValue(ctx, http.LocalAddrContextKey, cc.c.LocalAddr())
	cc.ctxEnds = cc.ctx.Done() != nil
	return true
}

// begin starts a fresh connection on its own goroutine (Server.serveNew),
// which goes on as its watcher (await): it reads what the client sent,
// and takes a whole first request as it would a keep-alive one
// (takeRequest), or hands what came to a worker. A connection without a
// socket to read (TLS) is served as in ServeConn.
// The first request's clock starts now, but is set on the socket only
// when a read must wait: most heads come whole in the first read.
func (cc *conn) begin() {
	if cc.rawConn() == nil {
		cc.serve()
		return
	}
	if cc.startFresh() {
		cc.await(cc.raw)
	}
}

// startFresh starts a new connection that its watcher owns from the first
// byte (begin, serveAccepted): tracked, its context derived, and the first
// head's clock started, not yet set on the socket (headBy). False means
// the server is closing, and the connection was closed.
func (cc *conn) startFresh() bool {
	cc.watching = watchOwns // before start: no other goroutine sees cc yet
	if !cc.start() {
		return false
	}
	// After start, as in serve: ConnContext may note when the connection
	// began, and a connection cut by the head's clock is to be seen to
	// have lasted it (gateway counts it as a header timeout then).
	cc.headBy = time.Now().Add(cc.s.readHeaderTimeout())
	return true
}

// admitUnwatched has the admission take a whole last request read on a
// socket not on the poller (takeRequest's hand), with no watcher: one
// starts only if the request runs long (watch, lateWatchDelay).
func (cc *conn) admitUnwatched() {
	cc.waiter.hand = false
	cc.watchMu.Lock()
	cc.watching = watchNone
	cc.lateWatch = latePending
	cc.watchMu.Unlock()
	cc.s.workers.admit(cc)
}

// armFirst sets the first head's clock on the socket, before the watcher
// waits for a fresh connection's first bytes (takeRequest's arm).
func (cc *conn) armFirst() {
	cc.waiter.arm = false
	cc.armHead()
	cc.s.firstWaits.Add(1)
}

// armHead sets the first head's deadline on the socket, if it is not set
// yet (headBy), before a read that may wait.
func (cc *conn) armHead() {
	if !cc.headBy.IsZero() {
		cc.c.SetReadDeadline(cc.headBy)
		cc.headBy = time.Time{}
	}
}

// run serves requests, on a worker (workers.run), as long as each next
// one's bytes are at hand; then it hands the idle connection to its
// watcher (idle) and returns, and the worker goes on with another
// connection. So requests run on a stack already grown by earlier ones,
// and an idle connection waits on a small one.
//
// It returns a connection whose request the admission let in as this one
// gave up its place (workers.leave), for the same worker to serve next.
func (cc *conn) run() *conn {
	p := &cc.s.workers
	for {
		if cc.admit.waits {
			// Marked active as it started waiting for its place
			// (workers.queueLocked): a shutdown begun since lets it
			// be served.
			cc.admit.waits = false
		} else if !cc.s.moveTo(cc, http.StateActive) {
			cc.close(http.StateClosed)
			return p.leave(cc)
		}
		st := cc.serveRequest()
		if st == stateHandedOff {
			next := p.leave(cc)
			cc.watchMu.Lock()
			if cc.watching == watchParked {
				cc.unparkLocked(watchNone)
			}
			cc.watchMu.Unlock()
			ahead := append([]byte(nil), (*cc.buf)[cc.r:cc.w]...)
			cc.r = cc.w
			cc.releaseBuf()
			cc.s.track(cc, stateHandedOff)
			cc.s.H2(cc.c, ahead)
			return next
		}
		cc.first = false
		if st != http.StateIdle {
			next := p.leave(cc)
			cc.close(st)
			return next
		}
		cc.releaseBuf()
		if !cc.s.moveTo(cc, http.StateIdle) {
			next := p.leave(cc)
			cc.close(http.StateClosed)
			return next
		}
		if cc.buf != nil {
			continue
		}
		// The place goes before the connection does: once idle hands
		// it to the watcher, its next request may take a new one.
		next := p.leave(cc)
		if cc.idle() {
			return next
		}
		if next != nil {
			p.dispatch(next)
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
		cc.holding.Store(false)
		cc.dropHeads()
	}
}

// dropHeads gives the parsed heads' field storage back to its pool and
// clears them.
func (cc *conn) dropHeads() {
	putFields(cc.reqFields, cc.req.Fields)
	putFields(cc.aheadFields, cc.aheadReq.Fields)
	cc.reqFields, cc.aheadFields = nil, nil
	cc.req, cc.aheadReq = Request{}, Request{}
	cc.dec, cc.aheadDec = ChunkDecoder{}, ChunkDecoder{}
}

// fieldsPool keeps the Fields storage of idle connections' Requests, in
// the boxes they came in (getFields), so that giving it back allocates
// nothing.
var fieldsPool sync.Pool

// putFields gives fs's storage to fieldsPool in box, the one getFields
// gave (nil: none), cleared: its slices point into a read buffer. Only
// fs's length needs clearing: ParseHead leaves the storage past it zero.
func putFields(box *[]Field, fs []Field) {
	if box == nil {
		return
	}
	clear(fs)
	*box = fs[:0]
	fieldsPool.Put(box)
}

// getFields is storage for a Request's Fields, in a box for putFields.
func getFields() *[]Field {
	if p, ok := fieldsPool.Get().(*[]Field); ok {
		return p
	}
	fs := make([]Field, 0, 32)
	return &fs
}

// takeBuf makes sure cc has a read buffer, with the byte the watcher read
// ahead, if any, at its start.
func (cc *conn) takeBuf() {
	if cc.buf == nil {
		cc.buf, cc.r, cc.w = getBuf(), 0, 0
		cc.holding.Store(true)
		if cc.reqFields == nil {
			cc.reqFields = getFields()
			cc.req.Fields = *cc.reqFields
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

// mayBeH2 reports whether got, a connection's first bytes, starts with
// h2PrefaceLine or is a prefix of it: HTTP/2 with prior knowledge.
func mayBeH2(got []byte) bool {
	n := min(len(got), len(h2PrefaceLine))
	return bytes.Equal(got[:n], h2PrefaceLine[:n])
}

// errH2 ends readHead on a connection that opened with h2PrefaceLine.
var errH2 = errors.New("h1: HTTP/2 preface")

// readHead reads until a whole head is parsed into cc.req, under the
// read-header timeout, and consumes it. The first request's clock started
// when the connection did (serve, begin), so that a client that waits before it
// trickles is cut as surely; a later one's starts with its first byte:
// its watcher saw the socket readable, so what is there is read first,
// and the deadline set only if that is not a whole head (most requests
// come in one segment).
func (cc *conn) readHead() error {
	timed := cc.first
	max := cc.s.Limits.maxHead() + 1
	for {
		if cc.first && cc.s.H2 != nil && cc.r < cc.w {
			if got := (*cc.buf)[cc.r:cc.w]; mayBeH2(got) {
				if len(got) >= len(h2PrefaceLine) {
					cc.armHead() // for the HTTP/2 server, as on any connection
					return errH2
				}
				cc.armHead()
				if _, err := cc.fill(max); err != nil {
					return err
				}
				continue
			}
		}
		if cc.r < cc.w {
			n, err := ParseHead((*cc.buf)[cc.r:cc.w], cc.s.Limits, &cc.req)
			if cc.taken && (err == nil && !cc.selfContained(n) || err == ErrIncomplete) {
				// The watcher's quick look (wholeRequest) and the
				// parser disagree: the socket is to be read after all.
				cc.untake()
			}
			cc.taken = false
			if err == nil {
				cc.r += n
				// Off: the watcher and the body are not bounded by the
				// head's clock, nor by the idle timeout set before;
				// but a request without a body reads nothing, and its
				// watcher lets the idle deadline pass (rearmLocked),
				// so that one stays for the next idle wait.
				// Under watchMu: the watcher may wait already
				// (takeRequest).
				if cc.headBy.IsZero() {
					cc.watchMu.Lock()
					if cc.idleBy.IsZero() || cc.req.Framing != NoBody {
						cc.c.SetReadDeadline(time.Time{})
						cc.idleBy = time.Time{}
					}
					cc.watchMu.Unlock()
				}
				cc.headBy = time.Time{}
				return nil
			}
			if err != ErrIncomplete {
				return err
			}
			if !timed {
				cc.c.SetReadDeadline(time.Now().Add(cc.s.readHeaderTimeout()))
				cc.idleBy = time.Time{}
				timed = true
			}
		}
		cc.armHead()
		if _, err := cc.fill(max); err != nil {
			if timed || cc.idleBy.IsZero() || !errors.Is(err, os.ErrDeadlineExceeded) {
				return err
			}
			// The idle deadline left on the socket (idleBy) passed
			// just as the watcher saw this request's bytes come: they
			// are read under the head's clock instead.
			cc.c.SetReadDeadline(time.Now().Add(cc.s.readHeaderTimeout()))
			cc.idleBy = time.Time{}
			timed = true
		}
	}
}

// serveRequest reads one request and answers it. It returns StateIdle to
// go on with the next, StateClosed or StateHijacked.
func (cc *conn) serveRequest() http.ConnState {
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
	r, err := cc.newRequest()
	if err != nil {
		cc.refuse(ErrTarget)
		return http.StateClosed
	}
	defer cc.endRequest()
	// One hold of watchMu: the request's context for the watcher, and
	// the watch of a request without a body (most often the watcher
	// watches it already: takeRequest).
	b := r.Body.(*body)
	cc.watchMu.Lock()
	cc.cancelReq = &b.ctx
	cc.watchOff = false
	if cc.req.Framing == NoBody {
		cc.watchLocked()
	}
	cc.watchMu.Unlock()
	w := newResponse(cc, r)
	defer w.release()
	if cc.req.Expect && !cc.req.Expect100 {
		w.closeAfter = true
		w.WriteHeader(http.StatusExpectationFailed)
		w.finish()
		return http.StateClosed
	}
	b.rw = w
	if !cc.handle(w, r) {
		return http.StateClosed
	}
	if w.hijacked {
		return http.StateHijacked
	}
	cc.watchMu.Lock()
	cc.watchOff = true
	cc.watchMu.Unlock()
	if !b.drainable() {
		w.closeAfter = true
	}
	// The response goes out before what is left of the body is read: a
	// client may wait for it before it sends more, or not send more.
	w.finish()
	drained := cc.finishBody(b)
	if !drained || w.closeAfter || cc.req.Close || cc.broken.Load() {
		return http.StateClosed
	}
	return http.StateIdle
}

// finishBody closes the request's body for good and reads what is left of
// it (body.finish). Only when something is left, or a read of it is still
// in flight on another goroutine (an upstream client that stopped caring),
// does that run under a deadline, the read-header timeout.
func (cc *conn) finishBody(b *body) bool {
	if b.mu.TryLock() {
		if b.eof && b.err == nil {
			b.closed = true
			b.mu.Unlock()
			return true
		}
		b.mu.Unlock()
	}
	cc.watchMu.Lock()
	cc.idleBy = time.Time{}
	cc.watchMu.Unlock()
	cc.c.SetReadDeadline(time.Now().Add(cc.s.readHeaderTimeout()))
	drained := b.finish()
	cc.c.SetReadDeadline(time.Time{})
	return drained
}

// endRequest cancels the request's context and drops it: an idle
// connection keeps no request state.
func (cc *conn) endRequest() {
	cc.watchMu.Lock()
	cancel := cc.cancelReq
	cc.cancelReq = nil
	cc.lateWatch = lateNone
	if cc.late != nil {
		// Fired already, watchLate sees no request.
		cc.late.Stop()
	}
	cc.watchMu.Unlock()
	if cancel != nil {
		cancel.cancel()
	}
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
		if cc.aheadFields == nil {
			// Only once bytes came ahead: pipelining is rare.
			cc.aheadFields = getFields()
			cc.aheadReq.Fields = *cc.aheadFields
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

// watchState is what a connection's watcher goroutine is doing; see
// conn.watching.
type watchState uint8

const (
	watchNone     watchState = iota // no watcher goroutine
	watchRequest                    // waiting while a request is served; the request's goroutine owns the connection
	watchOwns                       // waiting on an idle connection, which it owns: it closes it, or has a worker serve its next request
	watchEnded                      // returned while the request was served (the client gone, or stopped)
	watchStopping                   // stopWatch interrupts it
	watchClosing                    // the connection is closed under it
	watchParked                     // it handed the connection to a worker, and waits on kick to watch the request or the idle connection, or to end
)

// Why a watcher, and why this one. A client that leaves while its request
// waits for the backend must have the upstream request cancelled, as
// net/http's background read does; only a read (or a wait for
// readability) on the socket tells. Measured under load (BENCHMARKS.md,
// issue 12), a goroutine per request doing a one-byte read, stopped by
// moving the read deadline into the past and back, cost 8% of Sluice's
// CPU. Starting it lazily, once a request has been outstanding for a
// while, would not help where it matters: under load requests queue for
// an upstream stream for tens of milliseconds, so nearly every one would
// start it, and a timer besides. Instead the watcher is never stopped on
// the fast path: when the request ends, the connection is handed to it
// (idle) and its wait becomes the wait for the next request, which a
// goroutine of the connection's had to do anyway. Nor does it end when it
// hands the next request to a worker: it parks (watchParked) until the
// worker has it watch that request (watch) or the idle connection again
// (idle). So a connection keeps one watcher from one request to the next:
// a request starts and ends no goroutine, and sets no read deadline of
// the watcher's own. Where it can, the watcher does not even park: it
// reads a whole request itself and watches it within the same wait
// (takeRequest), which spares the kick, and the peek a new wait starts
// with.

// watch has the watcher watch the request, if the request's body is
// done, nothing was read ahead and it does not already: the parked one,
// or one started now; called again when the body ends.
func (cc *conn) watch() {
	cc.watchMu.Lock()
	cc.watchLocked()
	cc.watchMu.Unlock()
}

// watchLocked is watch, called with watchMu held.
func (cc *conn) watchLocked() {
	if cc.watchOff || cc.watching != watchNone && cc.watching != watchParked || cc.r < cc.w || cc.nPeeked > 0 || cc.broken.Load() {
		return
	}
	switch cc.lateWatch {
	case latePending:
		cc.lateWatch = lateArmed
		if cc.late == nil {
			cc.late = time.AfterFunc(lateWatchDelay, cc.watchLate)
		} else {
			cc.late.Reset(lateWatchDelay)
		}
		return
	case lateArmed:
		// Called again (a body read past its end): late is set.
		return
	}
	if cc.watching == watchParked {
		cc.unparkLocked(watchRequest)
		return
	}
	cc.watching = watchRequest
	go cc.await(cc.rawConn()) // under watchMu: a body reader may call watch
}

// lateWatchDelay is how long a request served unwatched (takeRequest, on
// a socket not on the poller) goes before its watcher starts: a client
// that leaves before then has the upstream request cancelled that much
// later. Watching every request at once would put each socket on the
// poller; under load most requests are answered well within this (or
// wait in a queue long before they start: the delay runs from their
// start), so few ever start it.
const lateWatchDelay = time.Second

// lateState is where a request served unwatched is in its late watch; see
// conn.lateWatch.
type lateState uint8

const (
	lateNone    lateState = iota // watched as any request
	latePending                  // handed over unwatched; watch arms late
	lateArmed                    // late runs
)

// watchLate is the late timer's: it starts the watcher of a request served
// unwatched that is still being served.
func (cc *conn) watchLate() {
	cc.watchMu.Lock()
	armed := cc.lateWatch == lateArmed
	cc.lateWatch = lateNone
	cc.watchMu.Unlock()
	if armed {
		cc.watch()
	}
}

// unparkLocked moves the parked watcher on to st: watchRequest,
// watchOwns, or watchNone to end. Called with watchMu held.
func (cc *conn) unparkLocked(st watchState) {
	cc.watching = st
	cc.s.kicks.Add(1)
	cc.kick <- struct{}{} // room for it: one token per park
}

// idle hands the idle connection to its watcher, started now if none ran
// while the request was served, to wait for the next request under the
// idle timeout. It reports false, handing nothing, when the watcher saw
// the next request's bytes already: the caller serves it.
func (cc *conn) idle() bool {
	now := time.Now()
	end := now.Add(cc.s.idleTimeout())
	cc.watchMu.Lock()
	cc.idleEnd = end
	if !now.Before(cc.idleBy) || cc.idleBy.After(end) {
		cc.c.SetReadDeadline(end)
		cc.idleBy = end
	}
	switch cc.watching {
	case watchRequest:
		cc.watching = watchOwns
		cc.watchMu.Unlock()
		return true
	case watchParked:
		if cc.ready {
			// It saw the next request's bytes: the caller serves it,
			// and has the watcher watch it (watch).
			cc.ready = false
			cc.watchMu.Unlock()
			return false
		}
		cc.unparkLocked(watchOwns)
		cc.watchMu.Unlock()
		return true
	}
	cc.watching = watchOwns
	rc := cc.rawConn()
	cc.watchMu.Unlock()
	go cc.await(rc)
	return true
}

// await is the watcher: it waits until the connection is readable (the
// next request's bytes, the end of stream or an error), under whatever
// deadline is set, on rc without reading, or, without a raw socket, by
// reading one byte into cc.peeked (readOne). While a request is served
// (watchRequest) a client seen leaving has the request cancelled and the
// connection marked broken; on an idle connection it owns (watchOwns) it
// has a worker serve the next request, or closes the connection.
func (cc *conn) await(rc syscall.RawConn) {
	for {
		var err error
		gone := false
		for {
			if rc != nil {
				err = cc.waitReadable(rc)
				gone = cc.waiter.gone
				if err == nil && cc.waiter.hand {
					cc.admitUnwatched()
					return
				}
				if err == nil && cc.waiter.arm {
					cc.armFirst()
					continue
				}
			} else {
				gone, err = cc.readOne()
			}
			cc.watchMu.Lock()
			if gone || err == nil || !cc.rearmLocked(err) {
				break
			}
			cc.watchMu.Unlock()
		}
		switch cc.watching {
		case watchOwns:
			if err != nil || gone {
				cc.watching = watchNone
				cc.watchMu.Unlock()
				cc.close(http.StateClosed)
				return
			}
			if !cc.parkLocked(true) {
				return
			}
			continue
		case watchRequest:
			if err == nil && !gone {
				// The next request's bytes, early: the worker serves
				// that one next (idle).
				cc.ready = true
				if !cc.parkLocked(false) {
					return
				}
				continue
			}
			cc.watching = watchEnded
			if gone {
				cc.broken.Store(true)
				if cc.cancelReq != nil {
					cc.cancelReq.cancel()
				}
			}
		case watchStopping:
			cc.watching = watchEnded
			close(cc.stopped)
		case watchClosing:
			cc.watching = watchNone
		}
		cc.watchMu.Unlock()
		return
	}
}

// parkLocked parks the watcher, once the next request's bytes came,
// until it is kicked on (unparkLocked), having a worker serve that
// request first if handOver; false means it is to end. Called with
// watchMu held; returns without it.
func (cc *conn) parkLocked(handOver bool) bool {
	cc.watching = watchParked
	if cc.kick == nil {
		cc.kick = make(chan struct{}, 1)
	}
	kick := cc.kick
	cc.watchMu.Unlock()
	if handOver {
		cc.s.workers.run(cc)
	}
	<-kick
	cc.watchMu.Lock()
	defer cc.watchMu.Unlock()
	return cc.watching != watchNone
}

// rearmLocked reports whether await's wait that ended with err must go
// on: the idle deadline left on the socket (idleBy) passed, but not the
// wait it bounds. While a request is served, the request is not bounded
// by it: it is cleared. On an idle connection, the wait is due to end
// later (idleEnd): the deadline is moved there. Called with watchMu held.
func (cc *conn) rearmLocked(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	switch cc.watching {
	case watchRequest:
		if cc.idleBy.IsZero() {
			return false
		}
		cc.c.SetReadDeadline(time.Time{})
		cc.idleBy = time.Time{}
		return true
	case watchOwns:
		if cc.idleEnd.IsZero() || !time.Now().Before(cc.idleEnd) {
			return false
		}
		cc.c.SetReadDeadline(cc.idleEnd)
		cc.idleBy = cc.idleEnd
		return true
	}
	return false
}

// readOne is await's wait where there is no raw socket: a read of one
// byte, kept for the next request. gone means the client left: the end
// of stream or a failed read other than a deadline's.
func (cc *conn) readOne() (gone bool, err error) {
	n, err := cc.c.Read(cc.peeked[:])
	cc.nPeeked = n
	if n > 0 {
		return false, nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return !errors.Is(err, os.ErrDeadlineExceeded), err
}

// stopWatch stops a watcher watching a request and waits for it; no
// watcher starts after it for this request (Hijack).
func (cc *conn) stopWatch() {
	cc.watchMu.Lock()
	cc.watchOff = true
	if cc.watching != watchRequest {
		if !cc.idleBy.IsZero() {
			// The idle deadline left for a request without a body
			// (readHead) is not the caller's.
			cc.c.SetReadDeadline(time.Time{})
			cc.idleBy = time.Time{}
		}
		cc.watchMu.Unlock()
		return
	}
	cc.idleBy = time.Time{}
	cc.watching = watchStopping
	stopped := make(chan struct{})
	cc.stopped = stopped
	cc.watchMu.Unlock()
	cc.c.SetReadDeadline(aLongTimeAgo)
	<-stopped
	cc.c.SetReadDeadline(time.Time{})
}

// serverKeyValue is the http.ServerContextKey value of requests served
// here: handlers written for net/http look for it to know that a panic
// with http.ErrAbortHandler will be recovered, as handle does.
var serverKeyValue = new(http.Server)

var _ io.Reader = (*body)(nil)
