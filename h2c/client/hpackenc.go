package client

import "strings"

// Request headers are HPACK-encoded statelessly, in the manner of
// HAProxy's hpack-enc.c: names from the static table where it has them,
// values as raw literals "without indexing", no Huffman coding and no
// dynamic table. Measured end to end against Tomcat (BENCHMARKS.md,
// issue 10), x/net's indexing encoder made the blocks much smaller but
// saved Sluice and Tomcat together no CPU that the bench could tell from
// noise, while in the encoder itself it costs Sluice more per request
// (Huffman sizing, table lookups and evictions, more with many distinct
// clients); the stateless encoder also leaves no table to keep on
// either side of the connection.

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

// beginBlock starts a header block in dst; the caller holds wmu. The
// connection's first block sets the server's dynamic table size to 0
// (RFC 7541 6.3): a server that lowers SETTINGS_HEADER_TABLE_SIZE below
// the table size in force may require a size update in the next block
// (nghttp2 does), and with the table at 0 no lower value can come.
func (c *Conn) beginBlock(dst []byte) []byte {
	if c.tableZeroed {
		return dst
	}
	c.tableZeroed = true
	return append(dst, 0x20) // size update, 5-bit prefix, 0
}
