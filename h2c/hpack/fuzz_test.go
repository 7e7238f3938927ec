package hpack

import (
	"errors"
	"testing"

	xhpack "golang.org/x/net/http2/hpack"
)

// leadingSizeUpdates counts the dynamic table size updates a block
// starts with.
func leadingSizeUpdates(b []byte) int {
	n := 0
	for len(b) > 0 && b[0]&0xe0 == 0x20 {
		_, rest, err := readInt(5, b)
		if err != nil {
			break
		}
		b = rest
		n++
	}
	return n
}

// FuzzDecoder decodes two blocks in turn (the first in two fragments)
// with this decoder and with x/net's, which must agree: the same fields,
// or both an error. Two differences are by design (package doc): this
// decoder rejects a size update after a field, which x/net accepts while
// its table is empty, and accepts several at a block's start, where x/net
// takes a second only while its table is empty.
func FuzzDecoder(f *testing.F) {
	for _, v := range rfcVectors {
		var all []byte
		for _, b := range v.blocks {
			all = append(all, unhex(f, b.hex)...)
		}
		first := len(unhex(f, v.blocks[0].hex))
		f.Add(all, uint16(first), uint16(first/2), uint8(0))
		f.Add(all, uint16(first), uint16(1), uint8(9))
	}
	for _, h := range tomcatBlocks {
		b := unhex(f, h)
		f.Add(append(b, b...), uint16(len(b)), uint16(3), uint8(0))
	}
	f.Add([]byte{0x20, 0x3f, 0xe1, 0x1f, 0x82, 0x40, 0x01, 'a', 0x01, 'b', 0xbe}, uint16(5), uint16(2), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, cut, frag uint16, maxStr uint8) {
		at := int(cut) % (len(data) + 1)
		blocks := [][]byte{data[:at], data[at:]}
		limit := 0
		if maxStr%2 == 1 {
			limit = int(maxStr)
		}
		ours := NewDecoder(4096, limit)
		var xf []xhpack.HeaderField
		theirs := xhpack.NewDecoder(4096, func(f xhpack.HeaderField) { xf = append(xf, f) })
		theirs.SetMaxStringLength(limit)
		for i, block := range blocks {
			ours.Begin(nil, 1<<30)
			split := 0
			if i == 0 {
				split = int(frag) % (len(block) + 1)
			}
			err := ours.Write(block[:split])
			if err == nil {
				err = ours.Write(block[split:])
			}
			var got []Field
			if err == nil {
				got, _, err = ours.End()
			}
			xf = xf[:0]
			_, xerr := theirs.Write(block)
			if xerr == nil {
				xerr = theirs.Close()
			}
			switch {
			case err != nil && xerr != nil:
				return
			case errors.Is(err, ErrSizeUpdateLate) && xerr == nil:
				return
			case err == nil && xerr != nil && leadingSizeUpdates(block) >= 2:
				return
			case (err == nil) != (xerr == nil):
				t.Fatalf("block %d %x: error %v, x/net's %v", i, block, err, xerr)
			}
			if len(got) != len(xf) {
				t.Fatalf("block %d %x: %d fields, x/net %d", i, block, len(got), len(xf))
			}
			for k, g := range got {
				if g.Name != xf[k].Name || g.Value != xf[k].Value || g.Sensitive != xf[k].Sensitive {
					t.Fatalf("block %d %x field %d: %+v, x/net %+v", i, block, k, g, xf[k])
				}
			}
		}
	})
}
