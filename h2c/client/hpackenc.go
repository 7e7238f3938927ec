package client

// A stateless HPACK encoder in the manner of HAProxy's hpack-enc.c:
// names from the static table where it has them, values as raw literals
// "without indexing", no Huffman coding and no dynamic table. It costs
// the client almost nothing and leaves the server no table to keep;
// whether it is cheaper end to end than x/net's indexing encoder is to
// be measured against Tomcat (Config.StatelessHPACK picks it).

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
