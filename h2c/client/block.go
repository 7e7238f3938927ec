package client

// Reading response header blocks: HEADERS and CONTINUATION frames fed
// to one hpack.Decoder whose emit function is set once, into a field
// slice the connection reuses, so that a block costs no allocation
// beyond the literal strings it carries (indexed fields share the
// decoder's table strings). The limits follow x/net's readMetaFrame.

import (
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// headerBlock is the block being read; only the reader touches it.
type headerBlock struct {
	streamID   uint32
	endStream  bool
	fields     []hpack.HeaderField // regular fields, reused between blocks
	status     string              // the :status pseudo-header
	pseudo     int                 // pseudo-header fields seen
	remain     uint32              // bytes left under MaxHeaderListSize
	frames     int                 // CONTINUATION frames so far
	truncated  bool                // the list went over MaxHeaderListSize
	invalid    bool                // a malformed field: the stream is reset
	sawRegular bool
}

// maxContinuations bounds the CONTINUATION frames of one block, so that
// empty ones cannot keep the reader busy forever.
func (c *Conn) maxContinuations() int {
	return max(16, int(c.cfg.MaxHeaderListSize/1024))
}

func (c *Conn) startBlock(f *http2.HeadersFrame) error {
	b := &c.hb
	clear(b.fields)
	*b = headerBlock{
		streamID:  f.StreamID,
		endStream: f.StreamEnded(),
		fields:    b.fields[:0],
		remain:    c.cfg.MaxHeaderListSize,
	}
	c.hdec.SetEmitEnabled(true)
	return c.feedBlock(f.HeaderBlockFragment(), f.HeadersEnded())
}

func (c *Conn) continueBlock(f *http2.ContinuationFrame) error {
	b := &c.hb
	b.frames++
	if b.frames > c.maxContinuations() || b.invalid {
		return protoErr(http2.ErrCodeProtocol, "header block on stream %d: too many CONTINUATION frames", b.streamID)
	}
	return c.feedBlock(f.HeaderBlockFragment(), f.HeadersEnded())
}

func (c *Conn) feedBlock(frag []byte, end bool) error {
	b := &c.hb
	// A fragment far beyond what is left of the limit, or any fragment
	// once it is exhausted, ends the connection (CONTINUATION flood).
	if int64(len(frag)) > 2*int64(b.remain) {
		return protoErr(http2.ErrCodeProtocol, "header block on stream %d far beyond MaxHeaderListSize", b.streamID)
	}
	if _, err := c.hdec.Write(frag); err != nil {
		return protoErr(http2.ErrCodeCompression, "header block on stream %d: %v", b.streamID, err)
	}
	if !end {
		return nil
	}
	if err := c.hdec.Close(); err != nil {
		return protoErr(http2.ErrCodeCompression, "header block on stream %d: %v", b.streamID, err)
	}
	return c.onHeaders(b)
}

// emit receives each decoded field of the current block.
func (c *Conn) emit(f hpack.HeaderField) {
	b := &c.hb
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
		c.hdec.SetEmitEnabled(false)
		return
	}
	if size := f.Size(); size > b.remain {
		b.truncated = true
		b.remain = 0
		c.hdec.SetEmitEnabled(false)
		return
	} else {
		b.remain -= size
	}
	if f.Name[0] != ':' {
		b.fields = append(b.fields, f)
	}
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
