package client

import "strings"

// Request headers are HPACK-encoded mostly statelessly, in the manner of
// HAProxy's hpack-enc.c: names from the static table where it has them,
// values as raw literals "without indexing", no Huffman coding. Measured
// end to end against Tomcat (BENCHMARKS.md, issue 10), x/net's indexing
// encoder made the blocks much smaller but saved Sluice and Tomcat
// together no CPU that the bench could tell from noise, while in the
// encoder itself it costs Sluice more per request (Huffman sizing, table
// lookups and evictions, more with many distinct clients).
//
// The exception is a handful of fields that the gateway sends on nearly
// every request with the same value on a connection (dynNames: the
// authority, X-Forwarded-Host, -Proto and -For). Sent as literals they
// cost the server a string decoded and allocated per field and request;
// once in its dynamic table they cost it one index byte. The encoder
// keeps a mirror of the server's table holding only these (dynTable): a
// value is inserted the second time in a row it is seen on the
// connection, and referenced while it stays, so a value that changes with
// every request (many clients' X-Forwarded-For) stays a plain literal and
// churns nothing.
// staticNames maps a name to its first index in the static table
// (RFC 7541 Appendix A).
var staticNames = func() map[string]uint64 {
	names := []string{
		":authority", ":method", ":method", ":path", ":path", ":scheme", ":scheme",
		":status", ":status", ":status", ":status", ":status", ":status", ":status",
		"accept-charset", "accept-encoding", "accept-language", "accept-ranges", "accept",
		"access-control-allow-origin", "age", "allow", "authorization", "cache-control",
		"content-disposition", "content-encoding", "content-language", "content-length",
		"content-location", "content-range", "content-type", "cookie", "date", "etag",
		"expect", "expires", "from", "host", "if-match", "if-modified-since",
		"if-none-match", "if-range", "if-unmodified-since", "last-modified", "link",
		"location", "max-forwards", "proxy-authenticate", "proxy-authorization", "range",
		"referer", "refresh", "retry-after", "server", "set-cookie",
		"strict-transport-security", "transfer-encoding", "user-agent", "vary", "via",
		"www-authenticate",
	}
	m := make(map[string]uint64, len(names))
	for i, n := range names {
		if _, ok := m[n]; !ok {
			m[n] = uint64(i + 1)
		}
	}
	return m
}()

// staticFull returns the index of a static entry worth sending as one
// indexed byte, or 0.
func staticFull(name, value string) byte {
	switch {
	case name == ":method" && value == "GET":
		return 2
	case name == ":method" && value == "POST":
		return 3
	case name == ":path" && value == "/":
		return 4
	case name == ":scheme" && value == "http":
		return 6
	case name == ":scheme" && value == "https":
		return 7
	}
	return 0
}

// appendInt appends v with an n-bit prefix; first holds the bits above
// the prefix (RFC 7541 5.1).
func appendInt(dst []byte, first byte, n uint, v uint64) []byte {
	max := uint64(1)<<n - 1
	if v < max {
		return append(dst, first|byte(v))
	}
	dst = append(dst, first|byte(max))
	v -= max
	for v >= 128 {
		dst = append(dst, byte(v&0x7f|0x80))
		v >>= 7
	}
	return append(dst, byte(v))
}

// appendString appends a raw string literal (H=0).
func appendString(dst []byte, s string) []byte {
	dst = appendInt(dst, 0, 7, uint64(len(s)))
	return append(dst, s...)
}

// reqName is what the encoder knows of a request header name: its
// lower-case form, its first index in the static table (0: none), and
// whether it is sent.
type reqName struct {
	lower  string
	static uint64
	send   uint8
	dyn    uint8 // its dynNames entry, 1-based; 0: none
}

// reqName.send values.
const (
	sendField    = iota // sent as it is
	dropField           // connection-specific, Host (sent as :authority), or set by the encoder
	sendTE              // TE: sent as "trailers" if it lists trailers
	sendFirstSet        // User-Agent: its first value, unless empty, as net/http's client does
)

// reqNames maps the request header names the encoder knows, canonical
// and in lower case, to what it does with them: one lookup per field.
// Knowing a name is knowing it valid. The others are sent as they are,
// in lower case (unknownName).
var reqNames = func() map[string]reqName {
	m := make(map[string]reqName)
	add := func(canonical string, send uint8) {
		lower := strings.ToLower(canonical)
		n := reqName{lower: lower, static: staticNames[lower], send: send}
		for i, d := range dynNames {
			if d == lower {
				n.dyn = uint8(i + 1)
			}
		}
		m[canonical], m[lower] = n, n
	}
	for k := range common {
		if k[0] >= 'A' && k[0] <= 'Z' {
			add(k, sendField)
		}
	}
	for _, k := range []string{"Connection", "Proxy-Connection", "Keep-Alive", "Transfer-Encoding",
		"Upgrade", "Host", "Content-Length", "Trailer"} {
		add(k, dropField)
	}
	add("Te", sendTE)
	// The gateway sets an empty User-Agent for a client that sent none,
	// so that net/http's transports add no Go default; sent, it would
	// cost the server an empty field.
	add("User-Agent", sendFirstSet)
	return m
}()

// appendIndexedName appends a field whose name n the encoder knows.
func appendIndexedName(dst []byte, n reqName, value string) []byte {
	if n.static != 0 {
		dst = appendInt(dst, 0, 4, n.static) // literal without indexing, indexed name
	} else {
		dst = append(dst, 0)
		dst = appendString(dst, n.lower)
	}
	return appendString(dst, value)
}

// appendField appends one field, stateless.
func appendField(dst []byte, name, value string) []byte {
	if i := staticFull(name, value); i != 0 {
		return append(dst, 0x80|i)
	}
	if i, ok := staticNames[name]; ok {
		dst = appendInt(dst, 0, 4, i) // literal without indexing, indexed name
	} else {
		dst = append(dst, 0)
		dst = appendString(dst, name)
	}
	return appendString(dst, value)
}

// dynNames are the names the encoder may keep in the server's dynamic
// table, by reqName.dyn (1-based; 0: never).
var dynNames = [...]string{":authority", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-for"}

const (
	dynAuthority = 1 + iota
	dynXFHost
	dynXFProto
	dynXFFor
)

const (
	// dynTableCap is the dynamic table size the encoder sets (at most the
	// server's SETTINGS_HEADER_TABLE_SIZE): room for a few hosts' entries,
	// and a bound on the table's linear search.
	dynTableCap = 1024
	// dynValueMax bounds the values worth indexing; longer ones are sent
	// as literals.
	dynValueMax = 64
	// defaultTableSize is HPACK's table size before any setting.
	defaultTableSize = 4096
)

// dynField is a field encodeRequest leaves to the connection's encoder
// (dynTable.appendField): which dynNames entry, and its value.
type dynField struct {
	name  uint8
	value string
}

// dynFields are the fields of one request left to the connection's
// encoder, and where the pseudo-header fields end in its block.
type dynFields struct {
	n         int
	f         [len(dynNames)]dynField
	pseudoEnd int
}

// add leaves name's value to the connection's encoder, unless a field of
// that name is already left (a repeated field keeps its place as a
// literal, after the first: same-name fields keep their order).
func (d *dynFields) add(name uint8, value string) bool {
	if len(value) > dynValueMax {
		return false
	}
	for i := 0; i < d.n; i++ {
		if d.f[i].name == name {
			return false
		}
	}
	d.f[d.n] = dynField{name, value}
	d.n++
	return true
}

// dynEntry is one entry of the server's dynamic table.
type dynEntry struct {
	name  uint8
	value string // owned: cloned from the request on insertion
}

// dynTable mirrors the server's HPACK dynamic table (RFC 7541 2.3.2, 4),
// into which only this encoder inserts, and holds the encoder's state:
// the size in force and the last value seen per name. The connection's
// wmu guards it: blocks are encoded in the order they are written.
type dynTable struct {
	ents    []dynEntry // oldest first
	size    uint32     // RFC 7541 4.1: names, values and 32 per entry
	max     uint32     // the size in force, set by the last size update sent
	started bool       // a block has been begun (the first carries a size update)
	// last holds the last value seen per name, to insert a value the
	// second time in a row it comes; lastLen -1: none, or too long.
	last    [len(dynNames)][dynValueMax]byte
	lastLen [len(dynNames)]int8
}

func entrySize(name uint8, value string) uint32 {
	return uint32(len(dynNames[name-1]) + len(value) + 32)
}

// begin starts a header block in dst: with a table size update when the
// block is the connection's first, or when the server's limit (peerMax,
// its SETTINGS_HEADER_TABLE_SIZE) fell below the size in force. The size
// set never grows: a larger size sent before the server has our
// SETTINGS ACK would exceed the limit it still enforces, and a server
// that lowers its SETTINGS_HEADER_TABLE_SIZE below the size in force may
// require an update in the next block (nghttp2 does).
func (t *dynTable) begin(dst []byte, peerMax uint32) []byte {
	want := min(peerMax, dynTableCap)
	if t.started && want >= t.max {
		return dst
	}
	if !t.started {
		t.started = true
		for i := range t.lastLen {
			t.lastLen[i] = -1
		}
	} else {
		want = min(want, t.max)
	}
	t.max = want
	t.evict(0)
	return appendInt(dst, 0x20, 5, uint64(want))
}

// evict drops the oldest entries until one of size n fits (RFC 7541 4.4).
func (t *dynTable) evict(n uint32) {
	k := 0
	for k < len(t.ents) && t.size+n > t.max {
		t.size -= entrySize(t.ents[k].name, t.ents[k].value)
		t.ents[k] = dynEntry{}
		k++
	}
	if k > 0 {
		t.ents = append(t.ents[:0], t.ents[k:]...)
	}
}

// find returns the index of the entry holding name and value (0: none),
// and of the newest entry holding name (0: none).
func (t *dynTable) find(name uint8, value string) (full, named uint64) {
	for i := len(t.ents) - 1; i >= 0; i-- {
		e := &t.ents[i]
		if e.name != name {
			continue
		}
		idx := uint64(62 + len(t.ents) - 1 - i)
		if named == 0 {
			named = idx
		}
		if e.value == value {
			return idx, named
		}
	}
	return 0, named
}

// seenLast reports whether value is the last one seen for name, and
// records it as the last.
func (t *dynTable) seenLast(name uint8, value string) bool {
	i := name - 1
	if n := int(t.lastLen[i]); n == len(value) && string(t.last[i][:n]) == value {
		return true
	}
	t.lastLen[i] = int8(copy(t.last[i][:], value))
	return false
}

// appendField appends f: one index byte when the table holds it,
// inserted when it comes a second time in a row, else a literal without
// indexing (its name from the static or the dynamic table when they
// have it).
func (t *dynTable) appendField(dst []byte, f dynField) []byte {
	full, named := t.find(f.name, f.value)
	if full != 0 {
		return appendInt(dst, 0x80, 7, full)
	}
	name := named
	if f.name == dynAuthority {
		name = 1 // the static table's
	}
	if es := entrySize(f.name, f.value); es <= t.max/4 && t.seenLast(f.name, f.value) {
		// Literal with incremental indexing. The name's index is read
		// by the server before the insertion can evict it.
		dst = appendLiteralName(dst, 0x40, 6, name, f.name)
		dst = appendString(dst, f.value)
		t.evict(es)
		t.ents = append(t.ents, dynEntry{name: f.name, value: strings.Clone(f.value)})
		t.size += es
		return dst
	}
	dst = appendLiteralName(dst, 0, 4, name, f.name)
	return appendString(dst, f.value)
}

// appendLiteralName opens a literal field of representation first (n-bit
// index prefix): its name by index when idx is not 0, else as a string.
func appendLiteralName(dst []byte, first byte, n uint, idx uint64, name uint8) []byte {
	if idx != 0 {
		return appendInt(dst, first, n, idx)
	}
	return appendString(append(dst, first), dynNames[name-1])
}

// requestBlock assembles a request's header block in dst under wmu: the
// table size update when one is due, the authority, the other
// pseudo-header fields, the other fields left to the encoder, then the
// rest of lit (encodeRequest's literal part, d.pseudoEnd splitting it).
func (t *dynTable) requestBlock(dst, lit []byte, d *dynFields, peerMax uint32) []byte {
	dst = t.begin(dst[:0], peerMax)
	for i := 0; i < d.n; i++ {
		if d.f[i].name == dynAuthority {
			dst = t.appendField(dst, d.f[i])
		}
	}
	dst = append(dst, lit[:d.pseudoEnd]...)
	for i := 0; i < d.n; i++ {
		if d.f[i].name != dynAuthority {
			dst = t.appendField(dst, d.f[i])
		}
	}
	return append(dst, lit[d.pseudoEnd:]...)
}
