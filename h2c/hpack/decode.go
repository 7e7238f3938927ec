// Package hpack decodes HPACK header blocks (RFC 7541) for Sluice's
// HTTP/2 connections. It has no sockets in it: the connection feeds it
// the fragments of each block, from one HEADERS frame and its
// CONTINUATION frames, and gets the block's fields back.
//
// Who owns what: a Decoder belongs to the one goroutine that reads a
// connection (a connection has one decoder, as it has one dynamic table).
// The fields it hands out are the caller's to keep: their strings are
// never written again. Literal strings of one block share one buffer
// allocated for the block, a literal value equal to the last one of the
// same static-table name (a response's Date while it stays the same
// second, a Content-Length that does not change) is the same string
// again, and indexed fields share the tables' strings, so that a block
// costs at most one allocation for its literals whatever their number,
// and none when they repeat. The dynamic table's strings are its own
// (one allocation per entry), so a long-lived entry keeps no block's
// buffer alive; a value kept for reuse keeps alive the block buffer it
// is in (at most arenaMax bytes, for each static-table name).
//
// It follows golang.org/x/net/http2/hpack's Decoder, against which it is
// fuzzed (FuzzDecoder), with two differences: a dynamic table size update
// is accepted only before a block's first field (RFC 7541 4.2), and
// Huffman decoding reuses x/net's.
package hpack

import (
	"errors"
	"fmt"
	"unsafe"

	xhpack "golang.org/x/net/http2/hpack"
)

// Field is one decoded header field. Sensitive reports a field the
// server sent "never indexed" (RFC 7541 6.2.3), which a proxy forwards
// the same way.
type Field struct {
	Name, Value string
	Sensitive   bool
}

// Errors. Every decoding error is a COMPRESSION_ERROR for the
// connection (RFC 9113 4.3): the table can no longer be trusted.
var (
	// ErrStringLength: a name or value longer than the decoder's limit.
	ErrStringLength = errors.New("hpack: string too long")
	// ErrTruncated: the block ended inside a field.
	ErrTruncated = errors.New("hpack: truncated header block")
	// ErrSizeUpdateLate: a dynamic table size update after a block's
	// first field (RFC 7541 4.2).
	ErrSizeUpdateLate = errors.New("hpack: dynamic table size update after a field")
	// ErrSizeUpdateTooLarge: a dynamic table size update above the size
	// the decoder advertised.
	ErrSizeUpdateTooLarge = errors.New("hpack: dynamic table size update too large")
)

// IndexError is an index beyond the static and dynamic tables, or 0.
type IndexError uint64

func (e IndexError) Error() string { return fmt.Sprintf("hpack: invalid index %d", uint64(e)) }

var (
	// errInvalid: a representation that fits no pattern of RFC 7541 6.
	errInvalid = errors.New("hpack: invalid encoding")
	// errOverflow: an integer with more continuation bytes than x/net
	// accepts (9).
	errOverflow = errors.New("hpack: integer overflow")
	// errNeedMore: the field goes on in the next fragment (internal).
	errNeedMore = errors.New("hpack: need more data")
)

// keepSave bounds the buffer for incomplete fields kept between blocks:
// a larger one, left by a huge field, goes to the garbage collector.
const keepSave = 16 << 10

// internLen bounds the values kept for reuse between blocks.
const internLen = 64

// Decoder decodes the header blocks of one connection in turn.
type Decoder struct {
	table  dynTable
	maxStr int // 0: unlimited

	// The block being decoded.
	fields    []Field // the caller's, appended to
	remain    uint64  // header list bytes left under the limit
	truncated bool    // a field went over the limit; later ones are decoded for the table only
	started   bool    // a field has been decoded: size updates are over
	save      []byte  // an incomplete field left by the last fragment, owned
	left      int     // input bytes left at the field being decoded

	// arena is the free tail of the buffer the block's literal strings
	// are copied into; strings handed out are views of bytes before it.
	arena []byte
	huff  huffBuf // Huffman output before it is copied out
	// intern holds the last literal value of each static table name, to
	// hand out again when the next one is the same; internEnc its
	// encoding, so that the same bytes need no decoding.
	intern    [staticLen + 1]string
	internEnc [staticLen + 1]hstring
}

// NewDecoder returns a decoder whose dynamic table holds at most
// tableSize bytes, the SETTINGS_HEADER_TABLE_SIZE the connection
// advertises (4096 unless it sends another), and whose names and values
// are at most maxString bytes long (0: unlimited).
func NewDecoder(tableSize uint32, maxString int) *Decoder {
	d := &Decoder{maxStr: maxString}
	d.table.limit = uint64(tableSize)
	d.table.maxSize = uint64(tableSize)
	return d
}

// Begin starts a header block: its fields are appended to dst while the
// header list's size (RFC 9113 6.5.2) stays within limit. Fields beyond
// it are decoded for the dynamic table's sake and dropped.
func (d *Decoder) Begin(dst []Field, limit uint32) {
	d.fields = dst
	d.remain = uint64(limit)
	d.truncated = false
	d.started = false
	d.save = d.save[:0]
	d.arena = nil
}

// Remain reports how many bytes of the header list's limit are left
// after the fields decoded so far; 0 once it was exceeded.
func (d *Decoder) Remain() uint32 { return uint32(d.remain) }

// Write decodes the complete fields of the next fragment of the block,
// keeping an incomplete last field for the next. Any error ends the
// connection.
func (d *Decoder) Write(frag []byte) error {
	buf := frag
	if len(d.save) > 0 {
		d.save = append(d.save, frag...)
		buf = d.save
	}
	for len(buf) > 0 {
		d.left = len(buf)
		rest, err := d.field(buf)
		if err == errNeedMore {
			break
		}
		if err != nil {
			return err
		}
		buf = rest
	}
	if len(buf) > 0 && d.maxStr > 0 && len(buf) > 2*(d.maxStr+8) {
		// Strings are checked against the limit before they are
		// complete; this bounds what an incomplete field can hold.
		return ErrStringLength
	}
	// buf may alias d.save: copy down, never append to itself.
	d.save = append(d.save[:0], buf...)
	return nil
}

// End finishes the block and returns its fields (dst of Begin, appended
// to) and whether some were dropped for the limit.
func (d *Decoder) End() ([]Field, bool, error) {
	fields := d.fields
	d.fields = nil
	d.arena = nil
	incomplete := len(d.save) > 0
	d.save = d.save[:0]
	if cap(d.save) > keepSave {
		d.save = nil
	}
	if incomplete {
		return nil, false, ErrTruncated
	}
	return fields, d.truncated, nil
}

// Decode decodes a complete block, as Begin, Write and End.
func (d *Decoder) Decode(dst []Field, block []byte, limit uint32) ([]Field, bool, error) {
	d.Begin(dst, limit)
	if err := d.Write(block); err != nil {
		d.End()
		return nil, false, err
	}
	return d.End()
}

// field decodes the representation at the start of p (RFC 7541 6) and
// returns what follows it, or errNeedMore when p holds only part of it.
func (d *Decoder) field(p []byte) ([]byte, error) {
	b := p[0]
	switch {
	case b&0x80 != 0: // indexed field
		i, rest, err := readInt(7, p)
		if err != nil {
			return p, err
		}
		f, ok := d.at(i)
		if !ok {
			return p, IndexError(i)
		}
		d.started = true
		return rest, d.emit(Field{Name: f.Name, Value: f.Value})
	case b&0xc0 == 0x40: // literal with incremental indexing
		return d.literal(p, 6, true, false)
	case b&0xf0 == 0: // literal without indexing
		return d.literal(p, 4, false, false)
	case b&0xf0 == 0x10: // literal never indexed
		return d.literal(p, 4, false, true)
	case b&0xe0 == 0x20: // dynamic table size update
		if d.started {
			return p, ErrSizeUpdateLate
		}
		v, rest, err := readInt(5, p)
		if err != nil {
			return p, err
		}
		if v > d.table.limit {
			return p, ErrSizeUpdateTooLarge
		}
		d.table.setMaxSize(v)
		return rest, nil
	}
	return p, errInvalid
}

// at returns the entry with index i in the static and dynamic tables.
func (d *Decoder) at(i uint64) (Field, bool) {
	if i == 0 {
		return Field{}, false
	}
	if i <= uint64(staticLen) {
		return staticTable[i], true
	}
	return d.table.at(i - uint64(staticLen))
}

// literal decodes a literal field whose name index has an n-bit prefix.
func (d *Decoder) literal(p []byte, n byte, index, sensitive bool) ([]byte, error) {
	nameIdx, rest, err := readInt(n, p)
	if err != nil {
		return p, err
	}
	var name, value hstring
	var f Field
	if nameIdx > 0 {
		e, ok := d.at(nameIdx)
		if !ok {
			return p, IndexError(nameIdx)
		}
		f.Name = e.Name
	} else if name, rest, err = d.readString(rest); err != nil {
		return p, err
	}
	if value, rest, err = d.readString(rest); err != nil {
		return p, err
	}
	// The whole field is here: from now on it is consumed.
	d.started = true
	f.Sensitive = sensitive
	if d.truncated && !index {
		// Past the limit and not for the table: its strings are not
		// needed (their lengths were checked), as x/net skips them.
		return rest, nil
	}
	if index {
		// The table's copy: one allocation for name and value.
		if nameIdx == 0 {
			if f.Name, f.Value, err = d.ownPair(name, value); err != nil {
				return p, err
			}
		} else if f.Value, err = d.own(value); err != nil {
			return p, err
		}
		d.table.add(Field{Name: f.Name, Value: f.Value})
		return rest, d.emit(f)
	}
	if nameIdx == 0 {
		if f.Name, err = d.view(name); err != nil {
			return p, err
		}
	}
	if nameIdx > 0 && nameIdx <= uint64(staticLen) && nameIdx != setCookie {
		f.Value, err = d.interned(nameIdx, value)
	} else {
		f.Value, err = d.view(value)
	}
	if err != nil {
		return p, err
	}
	return rest, d.emit(f)
}

// setCookie is the static index of set-cookie, whose values differ from
// one response to the next: not worth keeping.
const setCookie = 55

// emit appends f to the block's fields unless the list went over its
// limit.
func (d *Decoder) emit(f Field) error {
	if d.maxStr > 0 && (len(f.Name) > d.maxStr || len(f.Value) > d.maxStr) {
		return ErrStringLength
	}
	if d.truncated {
		return nil
	}
	if s := f.size(); s <= d.remain {
		d.remain -= s
		d.fields = append(d.fields, f)
	} else {
		d.truncated = true
		d.remain = 0
	}
	return nil
}

// hstring is an undecoded string literal: its bytes in the input.
type hstring struct {
	b    []byte
	huff bool
}

// readString reads a string literal (RFC 7541 5.2) without decoding it.
func (d *Decoder) readString(p []byte) (hstring, []byte, error) {
	if len(p) == 0 {
		return hstring{}, p, errNeedMore
	}
	huff := p[0]&0x80 != 0
	n, rest, err := readInt(7, p)
	if err != nil {
		return hstring{}, p, err
	}
	if d.maxStr > 0 && n > uint64(d.maxStr) {
		return hstring{}, p, ErrStringLength
	}
	if uint64(len(rest)) < n {
		return hstring{}, p, errNeedMore
	}
	return hstring{b: rest[:n], huff: huff}, rest[n:], nil
}

// raw returns s's decoded bytes, valid until the next call.
func (d *Decoder) raw(s hstring) ([]byte, error) {
	if !s.huff {
		return s.b, nil
	}
	d.huff.b = d.huff.b[:0]
	if _, err := xhpack.HuffmanDecode(&d.huff, s.b); err != nil {
		return nil, err
	}
	if d.maxStr > 0 && len(d.huff.b) > d.maxStr {
		return nil, ErrStringLength
	}
	return d.huff.b, nil
}

// view returns s decoded, as a view of the block's arena.
func (d *Decoder) view(s hstring) (string, error) {
	b, err := d.raw(s)
	if err != nil {
		return "", err
	}
	return d.toArena(b), nil
}

// toArena copies b into the block's arena and returns the copy.
func (d *Decoder) toArena(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(d.arena)-len(d.arena) < len(b) {
		// One buffer for the block's literals, sized for what is left
		// of the input (Huffman codes are at least 5 bits), within
		// reason; a string that does not fit gets one of its own.
		d.arena = make([]byte, 0, max(len(b), min(d.left*8/5, arenaMax)))
	}
	start := len(d.arena)
	d.arena = append(d.arena, b...)
	v := d.arena[start:len(d.arena):len(d.arena)]
	d.arena = d.arena[len(d.arena):]
	return unsafe.String(unsafe.SliceData(v), len(v))
}

// arenaMax bounds a block's buffer for literals, and so the memory an
// interned value can keep alive.
const arenaMax = 4096

// interned returns s decoded: the same string as the last value of
// static name i when it reads the same, else a view of the block's arena,
// kept for the next (it keeps at most arenaMax bytes alive).
func (d *Decoder) interned(i uint64, s hstring) (string, error) {
	if len(s.b) > internLen {
		return d.view(s)
	}
	enc := &d.internEnc[i]
	if enc.huff == s.huff && string(enc.b) == string(s.b) {
		return d.intern[i], nil
	}
	b, err := d.raw(s)
	if err != nil {
		return "", err
	}
	if d.intern[i] != string(b) {
		d.intern[i] = d.toArena(b)
	}
	enc.b = append(enc.b[:0], s.b...)
	enc.huff = s.huff
	return d.intern[i], nil
}

// own returns s decoded in memory of its own, for the dynamic table.
func (d *Decoder) own(s hstring) (string, error) {
	b, err := d.raw(s)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// ownPair returns name and value decoded in one allocation.
func (d *Decoder) ownPair(name, value hstring) (string, string, error) {
	nb, err := d.raw(name)
	if err != nil {
		return "", "", err
	}
	n := len(nb)
	buf := make([]byte, n, n+len(value.b)*8/5+1)
	copy(buf, nb)
	vb, err := d.raw(value)
	if err != nil {
		return "", "", err
	}
	buf = append(buf, vb...)
	s := unsafe.String(unsafe.SliceData(buf), len(buf))
	return s[:n], s[n:], nil
}

// huffBuf collects HuffmanDecode's output.
type huffBuf struct{ b []byte }

func (h *huffBuf) Write(p []byte) (int, error) {
	h.b = append(h.b, p...)
	return len(p), nil
}

// readInt reads an integer with an n-bit prefix (RFC 7541 5.1). Like
// x/net's, it takes at most 9 continuation bytes; values that large are
// rejected by their users.
func readInt(n byte, p []byte) (uint64, []byte, error) {
	if len(p) == 0 {
		return 0, p, errNeedMore
	}
	mask := uint64(1)<<n - 1
	i := uint64(p[0]) & mask
	if i < mask {
		return i, p[1:], nil
	}
	var m uint
	for k := 1; k < len(p); k++ {
		b := p[k]
		i += uint64(b&0x7f) << m
		if b&0x80 == 0 {
			return i, p[k+1:], nil
		}
		m += 7
		if m >= 63 {
			return 0, p, errOverflow
		}
	}
	return 0, p, errNeedMore
}
