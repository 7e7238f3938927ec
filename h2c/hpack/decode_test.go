package hpack

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"unsafe"

	xhpack "golang.org/x/net/http2/hpack"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fieldsOf(kv ...string) []Field {
	var fs []Field
	for i := 0; i < len(kv); i += 2 {
		fs = append(fs, Field{Name: kv[i], Value: kv[i+1]})
	}
	return fs
}

func sameFields(a, b []Field) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type vectorBlock struct {
	hex       string
	want      []Field
	tableSize uint64
}

var (
	c3want = [][]Field{
		fieldsOf(":method", "GET", ":scheme", "http", ":path", "/", ":authority", "www.example.com"),
		fieldsOf(":method", "GET", ":scheme", "http", ":path", "/", ":authority", "www.example.com", "cache-control", "no-cache"),
		fieldsOf(":method", "GET", ":scheme", "https", ":path", "/index.html", ":authority", "www.example.com", "custom-key", "custom-value"),
	}
	c5want = [][]Field{
		fieldsOf(":status", "302", "cache-control", "private", "date", "Mon, 21 Oct 2013 20:13:21 GMT", "location", "https://www.example.com"),
		fieldsOf(":status", "307", "cache-control", "private", "date", "Mon, 21 Oct 2013 20:13:21 GMT", "location", "https://www.example.com"),
		fieldsOf(":status", "200", "cache-control", "private", "date", "Mon, 21 Oct 2013 20:13:22 GMT", "location", "https://www.example.com",
			"content-encoding", "gzip", "set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"),
	}
)

// rfcVectors are RFC 7541 Appendix C's examples: each sequence of blocks
// goes through one decoder, with the table size it leaves after each.
var rfcVectors = []struct {
	name      string
	tableSize uint32
	blocks    []vectorBlock
}{
	{"C.2.1 literal with indexing", 4096, []vectorBlock{{"400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572", fieldsOf("custom-key", "custom-header"), 55}}},
	{"C.2.2 literal without indexing", 4096, []vectorBlock{{"040c 2f73 616d 706c 652f 7061 7468", fieldsOf(":path", "/sample/path"), 0}}},
	{"C.2.3 literal never indexed", 4096, []vectorBlock{{"1008 7061 7373 776f 7264 0673 6563 7265 74", []Field{{Name: "password", Value: "secret", Sensitive: true}}, 0}}},
	{"C.2.4 indexed", 4096, []vectorBlock{{"82", fieldsOf(":method", "GET"), 0}}},
	{"C.3 requests without Huffman", 4096, []vectorBlock{
		{"8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", c3want[0], 57},
		{"8286 84be 5808 6e6f 2d63 6163 6865", c3want[1], 110},
		{"8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65", c3want[2], 164},
	}},
	{"C.4 requests with Huffman", 4096, []vectorBlock{
		{"8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", c3want[0], 57},
		{"8286 84be 5886 a8eb 1064 9cbf", c3want[1], 110},
		{"8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf", c3want[2], 164},
	}},
	{"C.5 responses without Huffman", 256, []vectorBlock{
		{"4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", c5want[0], 222},
		{"4803 3330 37c1 c0bf", c5want[1], 222},
		{"88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31", c5want[2], 215},
	}},
	{"C.6 responses with Huffman", 256, []vectorBlock{
		{"4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3", c5want[0], 222},
		{"4883 640e ffc1 c0bf", c5want[1], 222},
		{"88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07", c5want[2], 215},
	}},
}

// TestRFC7541Vectors decodes Appendix C's blocks whole and split into
// fragments at every byte.
func TestRFC7541Vectors(t *testing.T) {
	for _, tc := range rfcVectors {
		t.Run(tc.name, func(t *testing.T) {
			for split := 0; ; split++ {
				d := NewDecoder(tc.tableSize, 0)
				longest := 0
				for i, vb := range tc.blocks {
					block := unhex(t, vb.hex)
					longest = max(longest, len(block))
					at := min(split, len(block))
					d.Begin(nil, 1<<20)
					if err := d.Write(block[:at]); err != nil {
						t.Fatalf("split %d block %d: %v", split, i, err)
					}
					if err := d.Write(block[at:]); err != nil {
						t.Fatalf("split %d block %d: %v", split, i, err)
					}
					got, truncated, err := d.End()
					if err != nil || truncated {
						t.Fatalf("split %d block %d: %v %v", split, i, truncated, err)
					}
					if !sameFields(got, vb.want) {
						t.Fatalf("split %d block %d:\n got %+v\nwant %+v", split, i, got, vb.want)
					}
					if d.table.size != vb.tableSize {
						t.Fatalf("split %d block %d: table size %d, want %d", split, i, d.table.size, vb.tableSize)
					}
				}
				if split > longest {
					break
				}
			}
		})
	}
}

// TestDecodeErrors: every malformed block is an error, which the
// connection turns into COMPRESSION_ERROR.
func TestDecodeErrors(t *testing.T) {
	huffBad := xhpack.AppendHuffmanString(nil, "a")
	huffBad[len(huffBad)-1] &^= 1 // padding must be all ones
	for _, tc := range []struct {
		name   string
		block  []byte
		maxStr int
		want   error
	}{
		{"index 0", []byte{0x80}, 0, IndexError(0)},
		{"index past the tables", []byte{0x80 | 62}, 0, IndexError(62)},
		{"literal name index past the tables", []byte{0x40 | 62, 0}, 0, IndexError(62)},
		{"integer overflow", append([]byte{0xff}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), 0, errOverflow},
		{"huge index", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0x0f}, 0, IndexError(127 + 0x7f + 0x7f<<7 + 0x7f<<14 + 0x7f<<21 + 0x0f<<28)},
		{"size update after a field", []byte{0x82, 0x20}, 0, ErrSizeUpdateLate},
		{"size update above the advertised size", []byte{0x3f, 0xe2, 0x1f}, 0, ErrSizeUpdateTooLarge}, // 4097
		{"truncated integer", []byte{0x82, 0xff}, 0, ErrTruncated},
		{"truncated string", []byte{0x00, 0x03, 'a', 'b'}, 0, ErrTruncated},
		{"string longer than the limit", []byte{0x00, 0x05, 'a', 'b', 'c', 'd', 'e', 0x00}, 4, ErrStringLength},
		{"Huffman string longer than the limit once decoded", append([]byte{0x0f, 0x1c, 0x80 | byte(len(xhpack.AppendHuffmanString(nil, "aaaaaa")))}, xhpack.AppendHuffmanString(nil, "aaaaaa")...), 5, ErrStringLength},
		{"bad Huffman padding", append([]byte{0x0f, 0x1c, 0x80 | byte(len(huffBad))}, huffBad...), 0, xhpack.ErrInvalidHuffman},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(4096, tc.maxStr)
			_, _, err := d.Decode(nil, tc.block, 1<<20)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

// TestSizeUpdates: updates at a block's start resize the table (to 0
// empties it), within the advertised size.
func TestSizeUpdates(t *testing.T) {
	d := NewDecoder(4096, 0)
	if _, _, err := d.Decode(nil, unhex(t, "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"), 1<<20); err != nil {
		t.Fatal(err)
	}
	// Two updates (0, then 4096) and the entry is gone.
	got, _, err := d.Decode(nil, []byte{0x20, 0x3f, 0xe1, 0x1f, 0x82}, 1<<20)
	if err != nil || !sameFields(got, fieldsOf(":method", "GET")) {
		t.Fatalf("%+v %v", got, err)
	}
	if d.table.n != 0 || d.table.maxSize != 4096 {
		t.Fatalf("table: %d entries, max size %d", d.table.n, d.table.maxSize)
	}
	if _, _, err := d.Decode(nil, []byte{0x80 | 62}, 1<<20); !errors.Is(err, IndexError(62)) {
		t.Fatalf("evicted entry: %v", err)
	}
}

// TestEviction: the table keeps the newest entries within its size, the
// oldest going first, through many insertions (the ring wraps).
func TestEviction(t *testing.T) {
	d := NewDecoder(256, 0)
	var block []byte
	for i := range 100 {
		block = block[:0]
		v := strings.Repeat(string(rune('a'+i%26)), 10+i%30)
		block = append(block, 0x40|byte(19)) // accept: v, indexed
		block = append(block, byte(len(v)))
		block = append(block, v...)
		if _, _, err := d.Decode(nil, block, 1<<20); err != nil {
			t.Fatal(err)
		}
		f, ok := d.at(62)
		if !ok || f.Value != v || d.table.size > 256 {
			t.Fatalf("insertion %d: newest %+v %v, size %d", i, f.Value, ok, d.table.size)
		}
		var sum uint64
		for k := 1; k <= d.table.n; k++ {
			e, _ := d.table.at(uint64(k))
			sum += e.size()
		}
		if sum != d.table.size {
			t.Fatalf("insertion %d: entries sum to %d, size says %d", i, sum, d.table.size)
		}
	}
	// An entry larger than the table empties it.
	big := strings.Repeat("x", 300)
	block = append([]byte{0x40 | 19, 0x7f, byte(300-127-128) | 0x80, 0x01}, big...)
	if _, _, err := d.Decode(nil, block, 1<<20); err != nil {
		t.Fatal(err)
	}
	if d.table.n != 0 || d.table.size != 0 {
		t.Fatalf("after an oversized entry: %d entries, size %d", d.table.n, d.table.size)
	}
}

// TestListLimit: fields past the header list limit are dropped and the
// block reported truncated, but indexed ones still enter the table.
func TestListLimit(t *testing.T) {
	d := NewDecoder(4096, 0)
	block := unhex(t, "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d") // C.3.1
	got, truncated, err := d.Decode(nil, block, 42+43+38)
	if err != nil || !truncated || !sameFields(got, c3want[0][:3]) {
		t.Fatalf("%+v %v %v", got, truncated, err)
	}
	if d.Remain() != 0 {
		t.Fatalf("Remain %d after the limit", d.Remain())
	}
	if f, ok := d.at(62); !ok || f.Value != "www.example.com" {
		t.Fatalf("the dropped field's entry: %+v %v", f, ok)
	}
}

// tomcatBlocks are response header blocks Tomcat 10.1.60 sent on one h2c
// connection for GET /hello (recorded 2026-12-02): every block starts
// with a table size update to 4096, Content-Type is indexed after the
// first, Content-Length and Date are literals "never indexed" (Tomcat
// indexes neither), the Date Huffman-coded. The first response, one of
// the same second, one of the next second.
var tomcatBlocks = []string{
	"3fe11f885f87497ca58ae819aa1f0d0231381f1296e4593e940094be52282009c500edc65ab806d4c5a37f",
	"3fe11f88be1f0d0231381f1296e4593e940094be52282009c500edc65ab806d4c5a37f",
	"3fe11f88be1f0d0231381f1296e4593e940094be52282009c500edc65ab80714c5a37f",
}

func tomcatWant(date string) []Field {
	return []Field{
		{Name: ":status", Value: "200"},
		{Name: "content-type", Value: "text/plain"},
		{Name: "content-length", Value: "18", Sensitive: true},
		{Name: "date", Value: date, Sensitive: true},
	}
}

// TestInterning: a literal value equal to the last one of its static
// name is handed out again, not decoded into new memory.
func TestInterning(t *testing.T) {
	d := NewDecoder(4096, 0)
	dates := []string{"Wed, 02 Dec 2026 07:34:05 GMT", "Wed, 02 Dec 2026 07:34:05 GMT", "Wed, 02 Dec 2026 07:34:06 GMT"}
	var prev []Field
	for i, h := range tomcatBlocks {
		got, _, err := d.Decode(nil, unhex(t, h), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if !sameFields(got, tomcatWant(dates[i])) {
			t.Fatalf("block %d: %+v", i, got)
		}
		if i == 1 && unsafe.StringData(got[3].Value) != unsafe.StringData(prev[3].Value) {
			t.Fatalf("block %d: Date decoded again", i)
		}
		prev = got
	}
}

// TestDecodeAllocs pins what a Tomcat response block costs: nothing, its
// literals being the same as the previous response's; one string when
// the Date moves to the next second.
func TestDecodeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, tc := range []struct {
		name string
		next int
		want float64
	}{{"same second", 1, 0}, {"next second", 2, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			first, same, next := unhex(t, tomcatBlocks[0]), unhex(t, tomcatBlocks[1]), unhex(t, tomcatBlocks[tc.next])
			d := NewDecoder(4096, 0)
			dst := make([]Field, 0, 8)
			d.Decode(dst, first, 1<<20)
			// Two blocks a run: with the next second's, the Date changes
			// twice.
			n := testing.AllocsPerRun(100, func() {
				d.Decode(dst[:0], same, 1<<20)
				d.Decode(dst[:0], next, 1<<20)
			}) / 2
			if n != tc.want {
				t.Errorf("%.1f allocations per block, want %v", n, tc.want)
			}
		})
	}
}

// BenchmarkDecodeTomcatResponse decodes Tomcat's response blocks in turn
// with this decoder and with x/net's.
func BenchmarkDecodeTomcatResponse(b *testing.B) {
	var blocks [][]byte
	for _, h := range tomcatBlocks {
		blocks = append(blocks, unhex(b, h))
	}
	for _, tc := range []struct {
		name   string
		blocks [][]byte
	}{{"same second", [][]byte{blocks[1], blocks[1]}}, {"each second", blocks[1:]}} {
		b.Run("sluice/"+tc.name, func(b *testing.B) {
			d := NewDecoder(4096, 0)
			dst := make([]Field, 0, 8)
			d.Decode(dst, blocks[0], 1<<20)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				d.Decode(dst[:0], tc.blocks[i%2], 1<<20)
				i++
			}
		})
		b.Run("x-net/"+tc.name, func(b *testing.B) {
			dst := make([]xhpack.HeaderField, 0, 8)
			d := xhpack.NewDecoder(4096, func(f xhpack.HeaderField) { dst = append(dst, f) })
			d.Write(blocks[0])
			d.Close()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				dst = dst[:0]
				d.Write(tc.blocks[i%2])
				d.Close()
				i++
			}
		})
	}
}

// TestChangingLiteralsShareOneBuffer: literal values that differ from
// the last ones (ETag, Last-Modified, Location of each response) cost
// one allocation for the block, not one each.
func TestChangingLiteralsShareOneBuffer(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	block := func(v string) []byte {
		var b []byte
		for _, idx := range []byte{34, 44, 46} { // etag, last-modified, location
			b = append(b, 0x0f, idx-15, byte(len(v)))
			b = append(b, v...)
		}
		return b
	}
	a, b := block("\"v1-aaaa\""), block("\"v2-bbbb\"")
	d := NewDecoder(4096, 0)
	dst := make([]Field, 0, 8)
	n := testing.AllocsPerRun(100, func() {
		d.Decode(dst[:0], a, 1<<20)
		d.Decode(dst[:0], b, 1<<20)
	}) / 2
	if n != 1 {
		t.Errorf("%.1f allocations per block, want 1", n)
	}
	got, _, _ := d.Decode(nil, a, 1<<20)
	if !sameFields(got, fieldsOf("etag", "\"v1-aaaa\"", "last-modified", "\"v1-aaaa\"", "location", "\"v1-aaaa\"")) {
		t.Fatalf("%+v", got)
	}
}

// TestFieldsOutliveTheirInput: the fields handed out stay as they were
// when the input buffer is reused (as the connection reuses its frame
// buffer) and later blocks are decoded.
func TestFieldsOutliveTheirInput(t *testing.T) {
	d := NewDecoder(4096, 0)
	buf := make([]byte, 0, 256)
	var kept [][]Field
	var want [][]Field
	for i, h := range append(append([]string{}, tomcatBlocks...), rfcVectors[6].blocks[0].hex, rfcVectors[7].blocks[1].hex) {
		buf = append(buf[:0], unhex(t, h)...)
		got, _, err := d.Decode(nil, buf, 1<<20)
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		kept = append(kept, got)
		// A deep copy of what was handed out.
		var c []Field
		for _, f := range got {
			c = append(c, Field{Name: strings.Clone(f.Name), Value: strings.Clone(f.Value), Sensitive: f.Sensitive})
		}
		want = append(want, c)
		for k := range buf {
			buf[k] = 0xff
		}
	}
	for i := range kept {
		if !sameFields(kept[i], want[i]) {
			t.Fatalf("block %d changed: %+v, was %+v", i, kept[i], want[i])
		}
	}
}
