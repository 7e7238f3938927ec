package client

// The reader's handlers for frames that concern streams.

import (
	"net/http"
	"net/textproto"
	"strconv"

	"golang.org/x/net/http2"
)

// statusLines holds the Status strings of common codes.
var statusLines = func() map[int]string {
	m := make(map[int]string)
	for code := 100; code < 600; code++ {
		if t := http.StatusText(code); t != "" {
			m[code] = strconv.Itoa(code) + " " + t
		}
	}
	return m
}()

func statusText(code int) string {
	if s, ok := statusLines[code]; ok {
		return s
	}
	return strconv.Itoa(code)
}

// max1xx bounds the informational responses one request may receive.
const max1xx = 5

// lookup returns the stream id names, or nil when it is closed. A frame on
// a stream the client never opened is a connection error.
func (c *Conn) lookupLocked(id uint32) (*stream, error) {
	if s := c.streams[id]; s != nil {
		return s, nil
	}
	if id%2 == 0 || id >= c.nextID {
		return nil, protoErr(http2.ErrCodeProtocol, "frame on idle stream %d", id)
	}
	// A stream the client reset or finished: frames still in flight
	// are ignored.
	return nil, nil
}

// onHeaders acts on a complete header block.
func (c *Conn) onHeaders(f *headerBlock) error {
	id := f.streamID
	c.mu.Lock()
	s, err := c.lookupLocked(id)
	if s == nil {
		c.mu.Unlock()
		return err
	}
	if f.invalid {
		c.mu.Unlock()
		c.resetStream(id, http2.ErrCodeProtocol, &StreamError{StreamID: id, Code: http2.ErrCodeProtocol, Local: true})
		return nil
	}
	if f.truncated {
		c.mu.Unlock()
		c.resetStream(id, http2.ErrCodeProtocol, ErrHeaderTooLarge)
		return nil
	}
	if s.resp != nil {
		// Trailers: they end the stream and carry no pseudo-headers.
		if !f.endStream || f.pseudo > 0 || s.endRecv {
			c.mu.Unlock()
			c.resetStream(id, http2.ErrCodeProtocol, &StreamError{StreamID: id, Code: http2.ErrCodeProtocol, Local: true})
			return nil
		}
		// Kept aside: the caller's goroutine moves them into
		// resp.Trailer at EOF, as the response is its own by then.
		s.trailer = decodeHeader(f.fields, nil, nil)
		s.endRecv = true
		s.closeIfDoneLocked()
		c.mu.Unlock()
		c.signalLater(s)
		return nil
	}
	status, err := strconv.Atoi(f.status)
	if err != nil || status < 100 || status > 999 {
		c.mu.Unlock()
		c.resetStream(id, http2.ErrCodeProtocol, &StreamError{StreamID: id, Code: http2.ErrCodeProtocol, Local: true})
		return nil
	}
	if status < 200 {
		// Informational: passed to the caller's goroutine, which waits
		// for the final response anyway.
		if f.endStream || status == http.StatusSwitchingProtocols || s.n1xx >= max1xx {
			c.mu.Unlock()
			c.resetStream(id, http2.ErrCodeProtocol, &StreamError{StreamID: id, Code: http2.ErrCodeProtocol, Local: true})
			return nil
		}
		s.n1xx++
		s.info = append(s.info, info1xx{code: status, header: textproto.MIMEHeader(decodeHeader(f.fields, nil, nil))})
		if status == http.StatusContinue {
			s.continueLocked()
		}
		c.mu.Unlock()
		c.signalLater(s)
		return nil
	}
	// The response and its values live in the stream's memory, which
	// is never reused: one allocation with the stream.
	resp := &s.respMem
	*resp = http.Response{
		Status:        statusText(status),
		StatusCode:    status,
		Proto:         "HTTP/2.0",
		ProtoMajor:    2,
		ContentLength: -1,
		Request:       s.req,
	}
	var cl string
	one := false
	if s.dst != nil {
		s.fields = decodeList(f.fields, &resp.Trailer, s.fieldMem())
		cl, one = listContentLength(s.fields)
	} else {
		resp.Header = decodeHeader(f.fields, &resp.Trailer, s.vals[:])
		if v := resp.Header["Content-Length"]; len(v) == 1 {
			cl, one = v[0], true
		}
	}
	if one {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			resp.ContentLength = n
		}
	}
	s.resp = resp
	s.continueLocked()
	if f.endStream {
		s.endRecv = true
		s.closeIfDoneLocked()
		resp.ContentLength = 0
	}
	c.mu.Unlock()
	c.signalLater(s)
	return nil
}

func (c *Conn) onData(f *http2.DataFrame) error {
	id := f.StreamID
	n := f.Length // padding included: it counts against the windows
	if !c.recv.take(n) {
		return protoErr(http2.ErrCodeFlowControl, "DATA beyond the connection window")
	}
	// The connection window is returned as data arrives: each stream's
	// buffer is bounded by its own window.
	if inc := c.recv.free(int(n)); inc > 0 {
		if err := c.writeFrame(func() error { return c.fr.WriteWindowUpdate(0, uint32(inc)) }); err != nil {
			return err
		}
	}
	c.mu.Lock()
	s, err := c.lookupLocked(id)
	if s == nil {
		c.mu.Unlock()
		return err
	}
	switch {
	case s.resp == nil || s.endRecv:
		c.mu.Unlock()
		c.resetStream(id, http2.ErrCodeProtocol, &StreamError{StreamID: id, Code: http2.ErrCodeProtocol, Local: true})
		return nil
	case !s.recv.take(n):
		c.mu.Unlock()
		c.resetStream(id, http2.ErrCodeFlowControl, &StreamError{StreamID: id, Code: http2.ErrCodeFlowControl, Local: true})
		return nil
	}
	data := f.Data()
	s.recvd += int64(len(data))
	if cl := s.resp.ContentLength; cl >= 0 && s.recvd > cl && s.req.Method != "HEAD" {
		c.mu.Unlock()
		c.resetStream(id, http2.ErrCodeProtocol, ErrBodyLength)
		return nil
	}
	var inc int32
	if pad := int(n) - len(data); pad > 0 {
		inc = s.recv.free(pad)
	}
	if s.callerDone || s.abandon != nil {
		inc = s.recv.free(len(data))
	} else if len(data) > 0 {
		s.appendLocked(data)
	}
	if f.StreamEnded() {
		s.endRecv = true
		if cl := s.resp.ContentLength; cl >= 0 && s.recvd != cl && s.req.Method != "HEAD" && s.err == nil {
			s.err = ErrBodyLength
		}
		s.closeIfDoneLocked()
		inc = 0
	}
	c.mu.Unlock()
	c.signalLater(s)
	if inc > 0 {
		return c.writeFrame(func() error { return c.fr.WriteWindowUpdate(id, uint32(inc)) })
	}
	return nil
}

func (c *Conn) onReset(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	s, err := c.lookupLocked(f.StreamID)
	if s == nil {
		c.mu.Unlock()
		return err
	}
	if f.ErrCode == http2.ErrCodeNo && s.endRecv {
		// The response is complete and the server wants no more of the
		// request body (RFC 9113 8.1): not a failure.
		s.endSent = true
		s.closeIfDoneLocked()
	} else {
		s.failLocked(&StreamError{StreamID: f.StreamID, Code: f.ErrCode})
		s.removeLocked()
	}
	c.mu.Unlock()
	s.signal()
	return nil
}

func (c *Conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID == 0 {
		if !c.sendWin.add(int32(f.Increment)) {
			return protoErr(http2.ErrCodeFlowControl, "connection send window above 2^31-1")
		}
		c.sendHigh = max(c.sendHigh, c.sendWin.n)
		c.cond.Broadcast()
		return nil
	}
	s, err := c.lookupLocked(f.StreamID)
	if s == nil {
		return err
	}
	if !s.sendWin.add(int32(f.Increment)) {
		s.failLocked(&StreamError{StreamID: s.id, Code: http2.ErrCodeFlowControl, Local: true})
		s.removeLocked()
		c.mu.Unlock()
		s.signal()
		c.writeFrame(func() error { return c.fr.WriteRSTStream(s.id, http2.ErrCodeFlowControl) })
		c.mu.Lock()
		return nil
	}
	c.cond.Broadcast()
	return nil
}

func (c *Conn) onGoAway(f *http2.GoAwayFrame) {
	g := GoAway{LastStreamID: f.LastStreamID, ErrCode: f.ErrCode}
	if d := f.DebugData(); len(d) > 0 {
		// The framer reuses its buffer for the next frame.
		g.DebugData = append([]byte(nil), d...)
	}
	if c.cfg.OnGoAway != nil {
		c.cfg.OnGoAway(g)
	}
	var failed []*stream
	c.mu.Lock()
	if c.goAway == nil || g.LastStreamID < c.goAway.LastStreamID {
		c.goAway = &g
	}
	for id, s := range c.streams {
		if id > c.goAway.LastStreamID {
			s.failLocked(&GoAwayError{GoAway: *c.goAway, StreamID: id})
			s.removeLocked()
			failed = append(failed, s)
		}
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	for _, s := range failed {
		s.signal()
	}
	c.stateChanged(true)
}

// resetStream fails the stream with err, forgets it and sends RST_STREAM.
func (c *Conn) resetStream(id uint32, code http2.ErrCode, err error) {
	c.mu.Lock()
	s := c.streams[id]
	if s != nil {
		s.failLocked(err)
		s.removeLocked()
	}
	c.mu.Unlock()
	if s != nil {
		s.signal()
	}
	c.writeFrame(func() error { return c.fr.WriteRSTStream(id, code) })
}
