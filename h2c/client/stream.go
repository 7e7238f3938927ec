package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/net/http2"
)

// maxStreamID is the largest client stream id; a connection that reaches
// it takes no more streams.
const maxStreamID = 1<<31 - 1

// keepBuf bounds the receive buffer a stream keeps once emptied.
const keepBuf = 32 << 10

var errStreamIDs = errors.New("h2c client: stream ids exhausted")

// stream is one request. Fields below c are guarded by c.mu.
type stream struct {
	c   *Conn
	id  uint32
	req *http.Request
	ctx context.Context
	// ctxDone is ctx's Done channel, nil when ctx is a cancelNotifier
	// (cn): its end sets ctxEnded instead (ctxWatch).
	ctxDone <-chan struct{}
	cn      cancelNotifier
	trace   *httptrace.ClientTrace
	wake    chan struct{} // capacity 1: the state below changed; set by openStream, reused by a later stream once the caller is done (finishWaits)

	resp       *http.Response // the final response, once its headers arrived
	info       []info1xx      // informational responses not yet passed on
	n1xx       int
	buf        []byte  // received DATA not yet read; at most the window
	bufp       *[]byte // the recvBufs buffer behind buf, if it is one
	off        int     // read position in buf
	recv       inflow
	sendWin    outflow
	endRecv    bool          // END_STREAM received
	endSent    bool          // END_STREAM sent, or the body abandoned
	inTable    bool          // in c.streams: open on the wire
	err        error         // why the stream failed
	callerDone bool          // the caller is finished; its slot is free
	ctxEnded   bool          // cn ended: the caller's goroutine aborts the stream
	cont       chan struct{} // closed when an Expect: 100-continue wait ends; nil without one
	// abandon, set by Body.Abandon, finishes the stream when the grace
	// ends or, reset to 0, as soon as the stream ends. Incoming DATA is
	// dropped meanwhile.
	abandon *time.Timer
	writing bool        // a goroutine writes the request body
	trailer http.Header // received trailers, complete once endRecv
	recvd   int64       // DATA bytes received, padding aside
	sent    int64       // DATA bytes sent (taken from the send windows)
	token   bool        // holds one of Config.MaxBodyStreams

	// respMem is the final response resp points to, and vals the backing
	// array of its header values when they fit, allocated with the stream
	// rather than apart. A stream is never reused, so the caller may keep
	// the response as long as it likes (it keeps the stream reachable).
	respMem http.Response
	vals    [respVals]string

	// dst, set by RoundTripList, is where the caller takes the final
	// response's header as a list: resp.Header stays nil and the fields
	// are in fields (canonical names, in the order received), backed by
	// vals when they fit (fieldMem), for the same reason.
	dst    *[][2]string
	fields [][2]string
}

// fieldMem is vals seen as name-value pairs, for a list response
// (RoundTripList), which has no use for vals otherwise: a stream stays
// in its allocation size class.
func (s *stream) fieldMem() [][2]string {
	return (*[respVals / 2][2]string)(unsafe.Pointer(&s.vals))[:]
}

// respVals is the number of response header fields whose values fit in
// the stream's own array (a typical Tomcat response has 3 to 6).
const respVals = 8

// copyTrailers moves received trailers into resp.Trailer; the caller's
// goroutine calls it once it has seen the stream's end.
func (s *stream) copyTrailers() {
	if s.trailer == nil {
		return
	}
	if s.resp.Trailer == nil {
		s.resp.Trailer = make(http.Header, len(s.trailer))
	}
	for k, v := range s.trailer {
		s.resp.Trailer[k] = v
	}
}

// cancelNotifier is a request context that tells one watcher when it
// ends, without a Done channel or context.AfterFunc's allocations
// (upstream's attempt context): see h1compat/client.CancelNotifier.
type cancelNotifier interface {
	OnCancel(w interface{ ContextEnded() }) bool
	StopOnCancel() bool
}

// headersNotifier is a request context told when the request's headers
// were written, as a trace's WroteHeaders hook is but with no hook to
// allocate (upstream's attempt context): see
// h1compat/client.HeadersNotifier.
type headersNotifier interface{ HeadersWritten() }

// ctxWatch is a stream as the watcher of its request's cancelNotifier.
type ctxWatch stream

// ContextEnded wakes the caller's goroutine, which aborts the stream (the
// reset is written from there, not from the goroutine that cancelled).
func (w *ctxWatch) ContextEnded() {
	s := (*stream)(w)
	s.c.mu.Lock()
	s.ctxEnded = true
	s.signal()
	s.c.mu.Unlock()
}

// watch learns of the end of s's context: through its Done channel, or
// from a cancelNotifier without one. Called by the caller's goroutine
// once the stream is open.
func (s *stream) watch() {
	cn, ok := s.ctx.(cancelNotifier)
	if !ok {
		s.ctxDone = s.ctx.Done()
		return
	}
	s.cn = cn
	if !cn.OnCancel((*ctxWatch)(s)) {
		s.c.mu.Lock()
		s.ctxEnded = true
		s.c.mu.Unlock()
	}
}

// unwatch stops watch's watcher once the caller is done with the stream:
// the context's end must not reset a stream abandoned to drain.
func (s *stream) unwatch() {
	if s.cn != nil {
		s.cn.StopOnCancel()
	}
}

type info1xx struct {
	code   int
	header textproto.MIMEHeader
}

func (s *stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// failLocked records err unless the stream already ended or failed.
func (s *stream) failLocked(err error) {
	if s.err == nil && !(s.endRecv && s.endSent) {
		s.err = err
	}
	s.continueLocked()
	s.c.cond.Broadcast()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	s.endedLocked()
}

func (s *stream) removeLocked() {
	s.releaseTokenLocked()
	if s.inTable {
		s.inTable = false
		delete(s.c.streams, s.id)
		if s.sent > 0 {
			s.c.openSent -= s.sent
			s.c.checkWindowLocked()
		}
	}
	s.endedLocked()
}

// endedLocked finishes an abandoned stream now that it has ended (from
// the timer's goroutine, never the reader's).
func (s *stream) endedLocked() {
	if s.abandon != nil && !s.inTable {
		s.abandon.Reset(0)
	}
}

func (s *stream) closeIfDoneLocked() {
	if s.endRecv && s.endSent {
		s.removeLocked()
		s.c.cond.Broadcast()
	}
}

func (s *stream) continueLocked() {
	if s.cont != nil {
		select {
		case <-s.cont:
		default:
			close(s.cont)
		}
	}
}

// appendLocked buffers received data (within the stream's window, so
// bounded by it).
func (s *stream) appendLocked(p []byte) {
	if s.off > 0 && len(s.buf)+len(p) > cap(s.buf) {
		n := copy(s.buf, s.buf[s.off:])
		s.buf = s.buf[:n]
		s.off = 0
	}
	if s.buf == nil && s.bufp == nil && len(p) <= recvBufSize {
		s.bufp = recvBufs.Get().(*[]byte)
		s.buf = (*s.bufp)[:0]
	}
	s.buf = append(s.buf, p...)
}

// recvBufs holds stream receive buffers between streams: a response that
// fits one costs no allocation.
const recvBufSize = 16 << 10

var recvBufs = sync.Pool{New: func() any { b := make([]byte, 0, recvBufSize); return &b }}

// releaseBufLocked returns the stream's buffer to recvBufs when it is one
// of theirs; nothing else refers to it once the caller is done.
func (s *stream) releaseBufLocked() {
	if s.bufp != nil {
		recvBufs.Put(s.bufp)
		s.bufp = nil
	}
	s.buf, s.off = nil, 0
}

// outgoingLength is the request body's length, -1 when unknown, as
// net/http reads Request.ContentLength for client requests.
func outgoingLength(req *http.Request) int64 {
	if req.Body == nil || req.Body == http.NoBody {
		return 0
	}
	if req.ContentLength != 0 {
		return req.ContentLength
	}
	return -1
}

// RoundTrip sends req on a new stream and returns once the response
// headers arrive. It uses a slot taken by Reserve if there is one, and
// otherwise waits for a free slot. The request context's httptrace hooks
// WroteHeaders and Got1xxResponse are called (from the caller's
// goroutine), and its HeadersWritten, before WroteHeaders, when it has
// one. Cancelling the context resets the stream. The response
// body must be read to EOF or closed; closing it early resets the stream
// with CANCEL (a caller that wants to spare the server a reset drains it
// first). Errors: ErrNotProcessed matches those proving the server did
// not process the request.
func (c *Conn) RoundTrip(req *http.Request) (*http.Response, error) {
	return c.roundTrip(req, nil, false)
}

// RoundTripFields is RoundTrip sending fields as the request's header,
// in their order, in place of req.Header, which it does not read: a
// caller that has the header as a list spares itself a map.
func (c *Conn) RoundTripFields(req *http.Request, fields []Field) (*http.Response, error) {
	return c.roundTrip(req, fields, true)
}

// RoundTripList is RoundTripFields giving the response's header as a
// list rather than a map: the returned response's Header is nil, and
// *respFields is set to its fields, name (canonical, as an http.Header
// key) and value, in the order the server sent them, before it returns.
// Trailers and informational responses come as they do from RoundTrip.
// A caller that writes the header out as it is (an HTTP/1.1 response
// head) spares itself building a map and copying it.
func (c *Conn) RoundTripList(req *http.Request, fields []Field, respFields *[][2]string) (*http.Response, error) {
	s, err := c.openRequest(req, fields, true, respFields)
	if err != nil {
		return nil, err
	}
	return s.awaitResponse()
}

// roundTrip is RoundTrip with the header in fields when list is set.
//
// roundTrip and awaitResponse stay on the caller's stack while the stream
// is open, below the gateway's frames: opening the stream is a helper of
// its own (openRequest), so that its locals are not in roundTrip's frame
// (see gateway's proxy.serve).
func (c *Conn) roundTrip(req *http.Request, fields []Field, list bool) (*http.Response, error) {
	s, err := c.openRequest(req, fields, list, nil)
	if err != nil {
		return nil, err
	}
	return s.awaitResponse()
}

// openRequest encodes req's header, takes a slot, opens the stream and
// writes its HEADERS, and starts the body's writer when there is a body.
//
//go:noinline
func (c *Conn) openRequest(req *http.Request, fields []Field, list bool, respFields *[][2]string) (*stream, error) {
	ctx := req.Context()
	cl := outgoingLength(req)
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}
	hb := reqBlocks.Get().(*headerBuf)
	var size uint64
	var err error
	if hb.b, size, err = encodeRequest(hb.b, req, fields, list); err != nil {
		putBlock(hb)
		closeBody()
		c.Release()
		return nil, err
	}
	capped := c.cfg.MaxBodyStreams > 0 && capsBody(req.Body, cl)
	if err := c.takeSlot(ctx, capped); err != nil {
		putBlock(hb)
		closeBody()
		return nil, err
	}
	s := &stream{c: c, req: req, ctx: ctx, trace: httptrace.ContextClientTrace(ctx), recv: newInflow(c.cfg.StreamWindow), dst: respFields, token: capped}
	expect := cl != 0 && expects100(req, fields, list)
	if expect {
		s.cont = make(chan struct{})
	}
	err = c.openStream(s, hb.b, size, cl == 0)
	putBlock(hb)
	if err != nil {
		closeBody()
		s.finish()
		return nil, err
	}
	s.watch()
	if hn, ok := ctx.(headersNotifier); ok {
		hn.HeadersWritten()
	}
	if s.trace != nil && s.trace.WroteHeaders != nil {
		s.trace.WroteHeaders()
	}
	if cl != 0 {
		c.mu.Lock()
		s.writing = true
		started := c.goLocked(func() {
			// Closing the body unblocks a writer waiting in its Read,
			// as net/http does.
			stop := context.AfterFunc(ctx, func() {
				s.abort(context.Cause(ctx))
				req.Body.Close()
			})
			defer stop()
			s.writeBody(cl, expect)
		})
		c.mu.Unlock()
		if !started {
			closeBody()
			s.abort(c.Err())
		}
	}
	return s, nil
}

// takeSlot consumes a reservation, or waits for a free slot; with body,
// it then waits for a MaxBodyStreams token too, holding the slot.
func (c *Conn) takeSlot(ctx context.Context, body bool) error {
	c.mu.Lock()
	var stop func() bool
	gaveBack := false // a slot taken, then given back: the pool may hand it out again
	defer func() {
		c.mu.Unlock()
		if stop != nil {
			stop()
		}
		if gaveBack {
			c.stateChanged(true)
		}
	}()
	// wait waits for a change; an error means the wait is over.
	wait := func() error {
		if err := c.errLocked(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		if stop == nil {
			stop = context.AfterFunc(ctx, func() {
				c.mu.Lock()
				c.cond.Broadcast()
				c.mu.Unlock()
			})
		}
		c.cond.Wait()
		return nil
	}
	if c.reserved > 0 {
		c.reserved--
	} else {
		for c.availableLocked() == 0 {
			if err := wait(); err != nil {
				return err
			}
		}
	}
	c.active++
	for body && c.bodies >= c.cfg.MaxBodyStreams {
		if err := wait(); err != nil {
			c.active--
			c.cond.Broadcast()
			gaveBack = true
			return err
		}
	}
	if body {
		c.bodies++
	}
	return nil
}

// releaseTokenLocked gives back the stream's MaxBodyStreams token.
func (s *stream) releaseTokenLocked() {
	if s.token {
		s.token = false
		s.c.bodies--
		s.c.cond.Broadcast()
	}
}

// putBlock gives hb back to reqBlocks, unless it grew too large to keep.
func putBlock(hb *headerBuf) {
	if cap(hb.b) <= maxKeptBlock {
		reqBlocks.Put(hb)
	}
}

// openStream gives s an id and writes its HEADERS: block, from
// encodeRequest, whose header list is size bytes. Ids must go out in
// order, so the id is taken under wmu.
func (c *Conn) openStream(s *stream, block []byte, size uint64, endStream bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	s.wake = c.newWakeLocked()
	err := c.errLocked()
	if ga, ok := err.(*GoAwayError); ok {
		// Never sent: not processed, whatever the last stream id.
		err = ga
	}
	if err == nil && c.nextID > maxStreamID {
		c.err = errStreamIDs
		err = errStreamIDs
	}
	if hdrMax := c.peerHdrMax; err == nil && hdrMax > 0 && size > uint64(hdrMax) {
		err = fmt.Errorf("h2c client: request headers (%d bytes) exceed the server's MAX_HEADER_LIST_SIZE %d", size, hdrMax)
	}
	if err != nil {
		c.mu.Unlock()
		return err
	}
	s.id = c.nextID
	c.nextID += 2
	c.requests++
	s.inTable = true
	s.endSent = endStream
	s.sendWin = outflow{c.peerWin}
	c.streams[s.id] = s
	frame := c.peerFrame
	c.mu.Unlock()

	if err = c.writeHeaderBlock(s.id, c.headerBlock(block), endStream, frame); err != nil {
		err = &ConnError{Reason: "write", Err: err}
		c.closeWith(err)
		c.mu.Lock()
		s.failLocked(err)
		s.removeLocked()
		c.mu.Unlock()
	}
	return err
}

// awaitResponse waits for the final response, passing informational ones
// to the trace.
func (s *stream) awaitResponse() (*http.Response, error) {
	c := s.c
	for {
		c.mu.Lock()
		if len(s.info) > 0 {
			in := s.info[0]
			s.info = s.info[1:]
			c.mu.Unlock()
			if s.trace != nil && s.trace.Got1xxResponse != nil {
				if err := s.trace.Got1xxResponse(in.code, in.header); err != nil {
					s.abort(err)
				}
			}
			continue
		}
		if resp := s.resp; resp != nil {
			done := s.endRecv && s.off == len(s.buf) && s.err == nil
			c.mu.Unlock()
			if s.dst != nil {
				// Written by the reader with resp, before it; never after.
				*s.dst = s.fields
			}
			if done {
				resp.Body = http.NoBody
				s.copyTrailers()
				s.finishWaits()
			} else {
				resp.Body = (*Body)(s)
			}
			return resp, nil
		}
		if err := s.err; err != nil {
			c.mu.Unlock()
			s.finishWaits()
			return nil, err
		}
		ended := s.ctxEnded
		c.mu.Unlock()
		if ended {
			s.abort(context.Cause(s.ctx))
			continue
		}
		s.await()
	}
}

// await parks the caller's goroutine until the stream's state may have
// changed: a plain receive when the context tells of its end by ctxEnded
// (upstream's attempts), cheaper than a select.
func (s *stream) await() {
	if s.ctxDone == nil {
		<-s.wake
		return
	}
	select {
	case <-s.wake:
	case <-s.ctxDone:
		s.abort(context.Cause(s.ctx))
	}
}

// abort fails the stream with err and resets it with CANCEL if it is
// still open.
func (s *stream) abort(err error) {
	c := s.c
	c.mu.Lock()
	open := s.inTable
	s.failLocked(err)
	s.removeLocked()
	c.mu.Unlock()
	if open {
		c.writeFrame(func() error { return c.fr.WriteRSTStream(s.id, http2.ErrCodeCancel) })
	}
}

// finish ends the caller's use of the stream, once: the slot is freed,
// and a stream still open is reset with CANCEL.
func (s *stream) finish() { s.finishOnce(false) }

// finishOnce is finish, and gives the wake channel back to the
// connection when recycleWake is set (see finishWaits).
func (s *stream) finishOnce(recycleWake bool) {
	c := s.c
	s.unwatch()
	c.mu.Lock()
	if s.callerDone {
		c.mu.Unlock()
		return
	}
	if recycleWake && s.wake != nil && len(c.wakes) < maxSpareWakes {
		select {
		case <-s.wake:
		default:
		}
		c.wakes = append(c.wakes, s.wake)
	}
	s.callerDone = true
	c.active--
	s.releaseTokenLocked()
	open := s.inTable
	if open {
		s.failLocked(ErrCanceled)
		s.removeLocked()
	}
	s.releaseBufLocked()
	c.cond.Broadcast()
	c.mu.Unlock()
	if open && s.id != 0 {
		c.writeFrame(func() error { return c.fr.WriteRSTStream(s.id, http2.ErrCodeCancel) })
	}
	c.stateChanged(false)
}

// maxSpareWakes bounds the wake channels a connection keeps for reuse.
const maxSpareWakes = 64

// newWakeLocked gives a new stream a wake channel, a spare one when the
// connection has one: an allocation fewer per request.
func (c *Conn) newWakeLocked() chan struct{} {
	if n := len(c.wakes); n > 0 {
		w := c.wakes[n-1]
		c.wakes[n-1] = nil
		c.wakes = c.wakes[:n-1]
		return w
	}
	return make(chan struct{}, 1)
}

// finishWaits is finish from the caller's goroutine on its way out of
// RoundTrip or Body.Read, once it has seen the stream's end. Only the
// caller's goroutine waits on a stream's wake channel, and after this it
// can wait on it no more (callerDone: a later Read returns at once; a
// Close meanwhile does not wait), so the channel goes back to the
// connection for the next stream, if this call is the one that finished
// the stream. A signal the reader or a timer sends to it afterwards at
// worst wakes its next owner once more, which every wait tolerates: each
// rechecks the stream's state under c.mu.
func (s *stream) finishWaits() { s.finishOnce(true) }

// Body is a stream seen as its response body: the Body of every
// response with content.
type Body stream

var errBodyClosed = errors.New("h2c client: read on closed response body")

func (b *Body) Read(p []byte) (int, error) {
	s := (*stream)(b)
	c := s.c
	for {
		c.mu.Lock()
		if s.off < len(s.buf) {
			n := copy(p, s.buf[s.off:])
			s.off += n
			if s.off == len(s.buf) {
				s.buf, s.off = s.buf[:0], 0
				if cap(s.buf) > keepBuf {
					s.buf = nil
				}
			}
			var inc int32
			if !s.endRecv && s.err == nil {
				inc = s.recv.free(n)
			}
			if s.off == len(s.buf) && s.endRecv && s.err == nil && !s.callerDone && s.abandon == nil {
				// The last bytes: EOF comes with them, sparing the
				// caller a Read (and a lock) for it.
				c.mu.Unlock()
				s.copyTrailers()
				s.finishWaits()
				return n, io.EOF
			}
			c.mu.Unlock()
			if inc > 0 {
				c.writeFrame(func() error { return c.fr.WriteWindowUpdate(s.id, uint32(inc)) })
			}
			return n, nil
		}
		switch {
		case s.callerDone || s.abandon != nil:
			c.mu.Unlock()
			return 0, errBodyClosed
		case s.endRecv && s.err == nil:
			c.mu.Unlock()
			s.copyTrailers()
			s.finishWaits()
			return 0, io.EOF
		case s.err != nil:
			err := s.err
			c.mu.Unlock()
			s.finishWaits()
			return 0, err
		}
		ended := s.ctxEnded
		c.mu.Unlock()
		if len(p) == 0 {
			return 0, nil
		}
		if ended {
			s.abort(context.Cause(s.ctx))
			continue
		}
		s.await()
	}
}

// Close ends the body; before EOF it resets the stream with CANCEL. After
// Abandon it does nothing.
func (b *Body) Close() error {
	s := (*stream)(b)
	s.c.mu.Lock()
	// A body read to its end was finished by that Read (finishWaits):
	// nothing to do, and no second lock round trip to find it out.
	done := s.abandon != nil || s.callerDone
	s.c.mu.Unlock()
	if !done {
		s.finish()
	}
	return nil
}

// Abandon ends the caller's use of the body without resetting the stream
// at once, for a server that counts resets against the connection (see
// upstream's abortGrace): the rest of the response is read and dropped,
// its window returned, and the stream is reset with CANCEL only if it has
// not ended after grace. The stream's slot stays in use until then. It
// does not block; Close is not needed afterwards.
func (b *Body) Abandon(grace time.Duration) {
	s := (*stream)(b)
	c := s.c
	s.unwatch()
	c.mu.Lock()
	if s.callerDone || s.abandon != nil {
		c.mu.Unlock()
		return
	}
	if !s.inTable {
		c.mu.Unlock()
		s.finish()
		return
	}
	// Give back the window of what is buffered, unbatched.
	s.recv.unsent += int32(len(s.buf) - s.off)
	inc := s.recv.flush()
	s.releaseBufLocked()
	s.abandon = time.AfterFunc(grace, s.finish)
	c.mu.Unlock()
	if inc > 0 {
		c.writeFrame(func() error { return c.fr.WriteWindowUpdate(s.id, uint32(inc)) })
	}
}

var bodyBufs = sync.Pool{New: func() any { b := make([]byte, maxFrame); return &b }}

// writeBody sends the request body under flow control, then its trailers
// or END_STREAM. It runs in its own goroutine, owned by the stream: it
// ends with the body, the stream or the connection.
func (s *stream) writeBody(cl int64, expect bool) {
	c := s.c
	body := s.req.Body
	defer func() {
		body.Close()
		c.mu.Lock()
		s.writing = false
		c.mu.Unlock()
	}()
	if expect {
		t := time.NewTimer(c.cfg.ExpectContinueTimeout)
		select {
		case <-s.cont:
		case <-t.C:
		}
		t.Stop()
		c.mu.Lock()
		skip := s.err != nil || (s.resp != nil && s.resp.StatusCode >= 300)
		if skip && s.err == nil {
			// The server answered without asking for the body: stop
			// here (RFC 9110 10.1.1).
			s.endSent = true
			s.closeIfDoneLocked()
		}
		open := s.inTable
		c.mu.Unlock()
		if skip {
			if open {
				s.abort(ErrCanceled)
			}
			return
		}
	}
	bp := bodyBufs.Get().(*[]byte)
	defer bodyBufs.Put(bp)
	buf := *bp
	var sent int64
	for {
		n, rerr := body.Read(buf)
		sent += int64(n)
		if cl > 0 && sent > cl {
			s.abort(fmt.Errorf("h2c client: request body longer than ContentLength %d", cl))
			return
		}
		// END_STREAM rides on the last DATA frame when the length is
		// known or the reader says EOF with its last bytes.
		last := (rerr == io.EOF || (cl > 0 && sent == cl)) && len(s.req.Trailer) == 0
		data := buf[:n]
		for len(data) > 0 {
			take := s.awaitSendWindow(len(data))
			if take == 0 {
				return
			}
			end := last && take == len(data)
			chunk := data[:take]
			if err := c.writeFrame(func() error { return c.fr.WriteData(s.id, end, chunk) }); err != nil {
				return
			}
			data = data[take:]
			if end {
				s.markSent()
				return
			}
		}
		switch {
		case rerr == io.EOF:
			if cl > 0 && sent < cl {
				s.abort(fmt.Errorf("h2c client: request body shorter than ContentLength %d", cl))
				return
			}
			s.writeEnd()
			return
		case rerr != nil:
			s.abort(fmt.Errorf("h2c client: reading request body: %w", rerr))
			return
		}
	}
}

// writeEnd sends END_STREAM, on the request's trailers if it has any.
func (s *stream) writeEnd() {
	c := s.c
	c.mu.Lock()
	open := s.inTable && s.err == nil
	frame, hdrMax := c.peerFrame, c.peerHdrMax
	c.mu.Unlock()
	if !open {
		return
	}
	var err error
	c.wmu.Lock()
	if len(s.req.Trailer) > 0 {
		var block []byte
		if block, err = c.encodeTrailers(s.req.Trailer, hdrMax); err == nil {
			err = c.writeHeaderBlock(s.id, block, true, frame)
		}
	} else {
		err = c.fr.WriteData(s.id, true, nil)
	}
	c.wmu.Unlock()
	if err != nil {
		s.abort(err)
		return
	}
	s.markSent()
}

func (s *stream) markSent() {
	c := s.c
	c.mu.Lock()
	s.endSent = true
	s.closeIfDoneLocked()
	c.mu.Unlock()
}

// awaitSendWindow waits until some of n bytes may be sent and takes them
// from the stream's and the connection's windows; 0 means the stream or
// the connection ended.
func (s *stream) awaitSendWindow(n int) int {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if s.err != nil || !s.inTable || c.err != nil {
			return 0
		}
		w := min(int32(n), s.sendWin.n, c.sendWin.n, int32(c.peerFrame))
		if w > 0 {
			s.sendWin.n -= w
			c.sendWin.n -= w
			s.sent += int64(w)
			c.openSent += int64(w)
			return int(w)
		}
		c.cond.Wait()
	}
}
