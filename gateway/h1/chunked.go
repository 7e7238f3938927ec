package h1

import "bytes"

// ChunkDecoder follows a chunked body (RFC 9112 7.1) pushed to it in
// pieces of any size: size lines, data, the CRLF after each chunk's data
// and the trailer section. It refuses what a lenient parser would read
// otherwise: bare LF, a size that is not plain hex, extensions that are not
// tokens or quoted strings or that run past a small budget, data not
// followed by CRLF, malformed or oversized trailers.
type ChunkDecoder struct {
	// MaxTrailerBytes caps the trailer section, final CRLF included.
	// Zero means 8 KiB.
	MaxTrailerBytes int

	state    chunkState
	left     int64  // data bytes of the current chunk still due
	line     []byte // a size or trailer line split across Feed calls
	extBytes int    // chunk-extension bytes so far, all chunks
	trailer  []byte // the trailer section so far, for Trailers
}

type chunkState uint8

const (
	chunkSize chunkState = iota
	chunkData
	chunkCR
	chunkLF
	chunkTrailer
	chunkDone
)

// Chunk-line bounds: a size line, extensions included, and the extension
// bytes of a whole body (CVE-2023-39326 was a body made mostly of them).
const (
	maxChunkLine = 4096
	maxChunkExt  = 4096
)

// Done reports whether the body, trailers included, has ended.
func (d *ChunkDecoder) Done() bool { return d.state == chunkDone }

// Trailers returns the trailer section's lines, each ending in CRLF,
// without the final empty line; valid until the next Feed or Reset.
func (d *ChunkDecoder) Trailers() []byte { return d.trailer }

// Reset readies d for another body, keeping its buffers.
func (d *ChunkDecoder) Reset() {
	*d = ChunkDecoder{MaxTrailerBytes: d.MaxTrailerBytes, line: d.line[:0], trailer: d.trailer[:0]}
}

// Feed consumes the start of p: n bytes, of which data, a slice of p, is
// body content. Call it again with p[n:] until p is used up or Done. After
// an error, d is spent.
func (d *ChunkDecoder) Feed(p []byte) (data []byte, n int, err error) {
	switch d.state {
	case chunkData:
		k := min(int64(len(p)), d.left)
		d.left -= k
		if d.left == 0 {
			d.state = chunkCR
		}
		return p[:k], int(k), nil
	case chunkCR, chunkLF:
		want := byte('\r')
		if d.state == chunkLF {
			want = '\n'
		}
		if len(p) == 0 {
			return nil, 0, nil
		}
		if p[0] != want {
			return nil, 0, ErrChunkCRLF
		}
		if d.state == chunkCR {
			d.state = chunkLF
		} else {
			d.state = chunkSize
		}
		return nil, 1, nil
	case chunkDone:
		return nil, 0, nil
	}
	// A size line or a trailer line.
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		if err := d.lineRoom(len(p)); err != nil {
			return nil, 0, err
		}
		d.line = append(d.line, p...)
		return nil, len(p), nil
	}
	if err := d.lineRoom(i + 1); err != nil {
		return nil, 0, err
	}
	l := p[:i+1]
	if len(d.line) > 0 {
		d.line = append(d.line, l...)
		l = d.line
	}
	defer func() { d.line = d.line[:0] }()
	if len(l) < 2 || l[len(l)-2] != '\r' {
		if d.state == chunkTrailer {
			return nil, 0, ErrTrailer
		}
		return nil, 0, ErrChunkBareLF
	}
	if d.state == chunkTrailer {
		return nil, i + 1, d.trailerLine(l)
	}
	size, err := d.sizeLine(l[:len(l)-2])
	if err != nil {
		return nil, 0, err
	}
	if size == 0 {
		d.state = chunkTrailer
	} else {
		d.state, d.left = chunkData, size
	}
	return nil, i + 1, nil
}

// lineRoom checks that k more bytes fit the line being read.
func (d *ChunkDecoder) lineRoom(k int) error {
	if d.state == chunkTrailer {
		if len(d.trailer)+len(d.line)+k > d.maxTrailer() {
			return ErrTrailer
		}
		return nil
	}
	if len(d.line)+k > maxChunkLine {
		return ErrChunkLineTooLong
	}
	return nil
}

func (d *ChunkDecoder) maxTrailer() int {
	if d.MaxTrailerBytes > 0 {
		return d.MaxTrailerBytes
	}
	return 8 << 10
}

// trailerLine takes one line of the trailer section, CRLF included.
func (d *ChunkDecoder) trailerLine(l []byte) error {
	if len(l) == 2 {
		d.state = chunkDone
		return nil
	}
	if _, err := parseField(l[:len(l)-2]); err != nil {
		return ErrTrailer
	}
	d.trailer = append(d.trailer, l...)
	return nil
}

// sizeLine reads chunk-size [chunk-ext]: 1 to 15 hex digits (so that the
// size fits an int64 with room), then extensions.
func (d *ChunkDecoder) sizeLine(l []byte) (int64, error) {
	var size int64
	i := 0
	for ; i < len(l); i++ {
		v := unhex(l[i])
		if v < 0 {
			break
		}
		if i == 15 {
			return 0, ErrChunkSize
		}
		size = size<<4 | int64(v)
	}
	if i == 0 {
		return 0, ErrChunkSize
	}
	ext := l[i:]
	if len(ext) == 0 {
		return size, nil
	}
	d.extBytes += len(ext)
	if d.extBytes > maxChunkExt || !validChunkExt(ext) {
		return 0, ErrChunkExtension
	}
	return size, nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// validChunkExt checks *( BWS ";" BWS name [ BWS "=" BWS value ] ), the
// value a token or a quoted string, with trailing whitespace allowed (as
// Go's and Tomcat's readers do).
func validChunkExt(ext []byte) bool {
	for len(ext) > 0 {
		if ext = skipWS(ext); len(ext) == 0 {
			return true
		}
		if ext[0] != ';' {
			return false
		}
		ext = skipWS(ext[1:])
		n := tokenLen(ext)
		if n == 0 {
			return false
		}
		ext = skipWS(ext[n:])
		if len(ext) == 0 || ext[0] != '=' {
			continue
		}
		ext = skipWS(ext[1:])
		if n = tokenLen(ext); n > 0 {
			ext = ext[n:]
			continue
		}
		if n = quotedLen(ext); n == 0 {
			return false
		}
		ext = ext[n:]
	}
	return true
}

func skipWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

func tokenLen(b []byte) int {
	n := 0
	for n < len(b) && tokenChars[b[n]] {
		n++
	}
	return n
}

// quotedLen is the length of the quoted-string at the start of b, or 0.
func quotedLen(b []byte) int {
	if len(b) == 0 || b[0] != '"' {
		return 0
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			if i+1 == len(b) || b[i+1] < ' ' && b[i+1] != '\t' || b[i+1] == 0x7f {
				return 0
			}
			i++
		case c < ' ' && c != '\t', c == 0x7f:
			return 0
		}
	}
	return 0
}
