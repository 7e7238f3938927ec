package client

import (
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/net/http2"
)

// readLoop is the connection's only reader. It ends when a read fails or
// the server breaks the protocol, failing every stream.
func (c *Conn) readLoop() {
	defer c.exit()
	err := c.readFrames()
	c.flushSignals()
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &ce):
		// The server broke the protocol: say so before closing.
		reason := "malformed frame from server"
		if d := c.fr.ErrorDetail(); d != nil {
			reason = d.Error()
		}
		err = c.goAwayErr(connErr{code: http2.ErrCode(ce), detail: reason})
	case errors.Is(err, http2.ErrFrameTooLarge):
		err = c.goAwayErr(connErr{code: http2.ErrCodeFrameSize, detail: "frame larger than MAX_FRAME_SIZE"})
	}
	if _, ok := err.(*ConnError); !ok {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		err = &ConnError{Reason: "read", Err: err}
	}
	c.closeWith(err)
}

// protoErr ends the connection with a PROTOCOL_ERROR-like code.
func protoErr(code http2.ErrCode, format string, args ...any) error {
	return connErr{code: code, detail: fmt.Sprintf(format, args...)}
}

type connErr struct {
	code   http2.ErrCode
	detail string
}

func (e connErr) Error() string { return e.detail }

func (c *Conn) readFrames() error {
	first := true
	for {
		if c.later != nil && !c.nextFrameOf(c.later.id) {
			// The held wake-up (signalLater) waits no longer.
			c.flushSignals()
		}
		buffered := c.br.Buffered()
		fh, err := c.fr.ReadFrameHeader()
		if err != nil {
			return err
		}
		if buffered < frameHeaderLen+int(fh.Length) {
			// lastRead (for PINGs) is stamped when the frame needs a read
			// from the socket: the frames of one read arrived together,
			// and a clock read per frame shows in the reader's profile.
			c.lastRead.Store(time.Now().UnixNano())
		}
		if first {
			if fh.Type != http2.FrameSettings {
				return c.goAwayErr(protoErr(http2.ErrCodeProtocol, "first frame from server is %v, not SETTINGS", fh.Type))
			}
			first = false
		}
		if fh.Type == http2.FrameHeaders || fh.Type == http2.FrameContinuation {
			// Read here, without a frame allocated for each (block.go).
			err = c.readHeaderFrame(fh)
			if err != nil {
				return c.goAwayErr(err)
			}
			continue
		}
		f, err := c.fr.ReadFrameForHeader(fh)
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				// A malformed frame on one stream: reset it and go on.
				c.resetStream(se.StreamID, se.Code, &StreamError{StreamID: se.StreamID, Code: se.Code, Local: true})
				continue
			}
			return err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			err = c.onSettings(f)
		case *http2.DataFrame:
			err = c.onData(f)
		case *http2.RSTStreamFrame:
			err = c.onReset(f)
		case *http2.WindowUpdateFrame:
			err = c.onWindowUpdate(f)
		case *http2.PingFrame:
			switch {
			case f.IsAck() && f.Data == leakPing:
				c.leakPingAcked()
			case f.IsAck():
				c.pingAcked(f.Data)
			default:
				data := f.Data
				err = c.writeFrame(func() error { return c.fr.WritePing(true, data) })
			}
		case *http2.GoAwayFrame:
			c.onGoAway(f)
		case *http2.PushPromiseFrame:
			return c.goAwayErr(protoErr(http2.ErrCodeProtocol, "PUSH_PROMISE while push is disabled"))
		default:
			// PRIORITY and unknown frame types are ignored.
		}
		if err != nil {
			return c.goAwayErr(err)
		}
	}
}

// goAwayErr turns a protocol violation into the connection's end: it
// sends GOAWAY with the violation's code and returns the ConnError.
func (c *Conn) goAwayErr(err error) error {
	ce, ok := err.(connErr)
	if !ok {
		return err
	}
	c.writeFrame(func() error { return c.fr.WriteGoAway(0, ce.code, nil) })
	return &ConnError{Code: ce.code, Reason: ce.detail}
}

func (c *Conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	var hookNeeded bool
	c.mu.Lock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingMaxConcurrentStreams:
			hookNeeded = hookNeeded || s.Val != c.maxStreams
			c.maxStreams = s.Val
		case http2.SettingInitialWindowSize:
			// The change applies to every open stream's send window
			// (RFC 9113 6.9.2); the framer has checked the bound.
			delta := int32(s.Val) - c.peerWin
			for _, st := range c.streams {
				if !st.sendWin.add(delta) {
					return protoErr(http2.ErrCodeFlowControl, "INITIAL_WINDOW_SIZE overflows stream %d", st.id)
				}
			}
			c.peerWin = int32(s.Val)
		case http2.SettingMaxFrameSize:
			c.peerFrame = s.Val // validated by the framer
		case http2.SettingMaxHeaderListSize:
			c.peerHdrMax = s.Val
		}
		return nil
	})
	c.cond.Broadcast()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	// SETTINGS_HEADER_TABLE_SIZE needs nothing: the encoder keeps no
	// table (hpackenc.go).
	if err := c.writeFrame(c.fr.WriteSettingsAck); err != nil {
		return err
	}
	select {
	case <-c.settings:
	default:
		close(c.settings)
	}
	if hookNeeded {
		c.stateChanged(true)
	}
	return nil
}

// signalLater wakes s's caller, but not before the next frame when that
// frame, already read from the socket, is s's too: a response's HEADERS
// and its DATA read together (a small answer, END_STREAM included) then
// cost its goroutine one wake-up, not two, and the caller finds the whole
// response. Other streams' wake-ups are not held back (holding every
// wake-up of a read until its last frame cost h2c clients on Tomcat 11%
// of their requests/s). Only the reader calls it; c.later is the one
// stream held.
func (c *Conn) signalLater(s *stream) {
	if c.later != nil && c.later != s {
		c.flushSignals()
	}
	if c.nextFrameOf(s.id) {
		c.later = s
		return
	}
	c.later = nil
	c.readerSignals.Add(1)
	s.signal()
}

// flushSignals wakes the stream signalLater held, if any. Reader only.
func (c *Conn) flushSignals() {
	if s := c.later; s != nil {
		c.later = nil
		c.readerSignals.Add(1)
		s.signal()
	}
}

// nextFrameOf reports whether the next frame is in the read buffer
// whole, so that reading it will not block, and is on stream id.
func (c *Conn) nextFrameOf(id uint32) bool {
	n := c.br.Buffered()
	if n < frameHeaderLen {
		return false
	}
	h, err := c.br.Peek(frameHeaderLen)
	if err != nil {
		return false
	}
	length := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	sid := (uint32(h[5])<<24 | uint32(h[6])<<16 | uint32(h[7])<<8 | uint32(h[8])) & (1<<31 - 1)
	return n >= frameHeaderLen+length && sid == id
}

// frameHeaderLen is the length of an HTTP/2 frame header.
const frameHeaderLen = 9
