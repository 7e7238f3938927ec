package client

// Reading response header blocks: HEADERS and CONTINUATION frames are
// read from the socket's buffer here rather than by x/net's Framer (which
// allocates a frame for each), and their fragments fed to the
// connection's HPACK decoder (h2c/hpack), whose fields go into a slice
// the connection reuses. The limits follow x/net's readMetaFrame.

import (
	"io"
	"strings"

	"github.com/sluice-gw/sluice/h2c/hpack"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// headerBlock is the block being read; only the reader touches it.
type headerBlock struct {
	streamID   uint32
	endStream  bool
	buf        []hpack.Field // the decoded fields, storage reused between blocks
	fields     []hpack.Field // the regular fields, once checked: buf less the pseudo-headers
	status     string        // the :status pseudo-header
	pseudo     int           // pseudo-header fields seen
	frames     int           // CONTINUATION frames so far
	truncated  bool          // the list went over MaxHeaderListSize
	invalid    bool          // a malformed field: the stream is reset
	sawRegular bool
}

// maxContinuations bounds the CONTINUATION frames of one block, so that
// empty ones cannot keep the reader busy forever.
func (c *Conn) maxContinuations() int {
	return max(16, int(c.cfg.MaxHeaderListSize/1024))
}

// readHeaderFrame reads the payload of a HEADERS or CONTINUATION frame
// whose header the framer has read (and checked: its length, and that
// CONTINUATION frames follow their HEADERS on the same stream).
func (c *Conn) readHeaderFrame(fh http2.FrameHeader) error {
	if cap(c.hpay) < int(fh.Length) {
		// Grown to the largest frame seen, at most maxFrame (the
		// framer checked the length).
		c.hpay = make([]byte, fh.Length)
	}
	p := c.hpay[:fh.Length]
	if _, err := io.ReadFull(c.br, p); err != nil {
		return err
	}
	if fh.StreamID == 0 {
		return protoErr(http2.ErrCodeProtocol, "%v frame with stream ID 0", fh.Type)
	}
	// END_HEADERS is the same flag on both frames.
	end := fh.Flags.Has(http2.FlagHeadersEndHeaders)
	if fh.Type == http2.FrameContinuation {
		return c.continueBlock(p, end)
	}
	pad := 0
	if fh.Flags.Has(http2.FlagHeadersPadded) {
		if len(p) < 1 {
			return protoErr(http2.ErrCodeFrameSize, "HEADERS frame on stream %d too short for its padding", fh.StreamID)
		}
		pad, p = int(p[0]), p[1:]
	}
	if fh.Flags.Has(http2.FlagHeadersPriority) {
		if len(p) < 5 {
			return protoErr(http2.ErrCodeFrameSize, "HEADERS frame on stream %d too short for its priority", fh.StreamID)
		}
		p = p[5:]
	}
	if pad > len(p) {
		return protoErr(http2.ErrCodeProtocol, "HEADERS frame on stream %d: padding longer than the payload", fh.StreamID)
	}
	return c.startBlock(fh.StreamID, fh.Flags.Has(http2.FlagHeadersEndStream), p[:len(p)-pad], end)
}

func (c *Conn) startBlock(id uint32, endStream bool, frag []byte, end bool) error {
	b := &c.hb
	clear(b.buf) // the last block's strings are not kept alive
	*b = headerBlock{
		streamID:  id,
		endStream: endStream,
		buf:       b.buf[:0],
	}
	c.hdec.Begin(b.buf, c.cfg.MaxHeaderListSize)
	return c.feedBlock(frag, end)
}

func (c *Conn) continueBlock(frag []byte, end bool) error {
	b := &c.hb
	b.frames++
	if b.frames > c.maxContinuations() {
		return protoErr(http2.ErrCodeProtocol, "header block on stream %d: too many CONTINUATION frames", b.streamID)
	}
	return c.feedBlock(frag, end)
}

func (c *Conn) feedBlock(frag []byte, end bool) error {
	b := &c.hb
	// A fragment far beyond what is left of the limit, or any fragment
	// once it is exhausted, ends the connection (CONTINUATION flood).
	if int64(len(frag)) > 2*int64(c.hdec.Remain()) {
		return protoErr(http2.ErrCodeProtocol, "header block on stream %d far beyond MaxHeaderListSize", b.streamID)
	}
	if err := c.hdec.Write(frag); err != nil {
		return protoErr(http2.ErrCodeCompression, "header block on stream %d: %v", b.streamID, err)
	}
	if !end {
		return nil
	}
	fields, truncated, err := c.hdec.End()
	if err != nil {
		return protoErr(http2.ErrCodeCompression, "header block on stream %d: %v", b.streamID, err)
	}
	b.buf, b.truncated = fields, truncated
	b.check()
	return c.onHeaders(b)
}

// check validates the block's fields (RFC 9113 8.2.1, 8.3: valid names
// and values, the only pseudo-header :status, before the regular
// fields) and leaves the regular ones in fields.
func (b *headerBlock) check() {
	for _, f := range b.buf {
		if !httpguts.ValidHeaderFieldValue(f.Value) {
			b.invalid = true
		}
		if strings.HasPrefix(f.Name, ":") {
			if b.sawRegular || f.Name != ":status" || b.pseudo > 0 {
				b.invalid = true
			}
			b.pseudo++
			b.status = f.Value
		} else {
			b.sawRegular = true
			if !validWireName(f.Name) {
				b.invalid = true
			}
		}
		if b.invalid {
			return
		}
	}
	// Valid blocks have their pseudo-headers first.
	b.fields = b.buf[b.pseudo:]
}

// validWireName reports a field name HTTP/2 allows: a token without
// upper-case letters.
func validWireName(name string) bool {
	if len(name) == 0 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !httpguts.IsTokenRune(rune(name[i])) || ('A' <= name[i] && name[i] <= 'Z') {
			return false
		}
	}
	return true
}
