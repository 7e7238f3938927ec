package hpack

// The static table (RFC 7541 Appendix A) and the dynamic table (RFC 7541
// 2.3.2, 4).

// staticTable is indexed from 1; staticTable[0] is unused.
var staticTable = [...]Field{
	{},
	{Name: ":authority"},
	{Name: ":method", Value: "GET"},
	{Name: ":method", Value: "POST"},
	{Name: ":path", Value: "/"},
	{Name: ":path", Value: "/index.html"},
	{Name: ":scheme", Value: "http"},
	{Name: ":scheme", Value: "https"},
	{Name: ":status", Value: "200"},
	{Name: ":status", Value: "204"},
	{Name: ":status", Value: "206"},
	{Name: ":status", Value: "304"},
	{Name: ":status", Value: "400"},
	{Name: ":status", Value: "404"},
	{Name: ":status", Value: "500"},
	{Name: "accept-charset"},
	{Name: "accept-encoding", Value: "gzip, deflate"},
	{Name: "accept-language"},
	{Name: "accept-ranges"},
	{Name: "accept"},
	{Name: "access-control-allow-origin"},
	{Name: "age"},
	{Name: "allow"},
	{Name: "authorization"},
	{Name: "cache-control"},
	{Name: "content-disposition"},
	{Name: "content-encoding"},
	{Name: "content-language"},
	{Name: "content-length"},
	{Name: "content-location"},
	{Name: "content-range"},
	{Name: "content-type"},
	{Name: "cookie"},
	{Name: "date"},
	{Name: "etag"},
	{Name: "expect"},
	{Name: "expires"},
	{Name: "from"},
	{Name: "host"},
	{Name: "if-match"},
	{Name: "if-modified-since"},
	{Name: "if-none-match"},
	{Name: "if-range"},
	{Name: "if-unmodified-since"},
	{Name: "last-modified"},
	{Name: "link"},
	{Name: "location"},
	{Name: "max-forwards"},
	{Name: "proxy-authenticate"},
	{Name: "proxy-authorization"},
	{Name: "range"},
	{Name: "referer"},
	{Name: "refresh"},
	{Name: "retry-after"},
	{Name: "server"},
	{Name: "set-cookie"},
	{Name: "strict-transport-security"},
	{Name: "transfer-encoding"},
	{Name: "user-agent"},
	{Name: "vary"},
	{Name: "via"},
	{Name: "www-authenticate"},
}

// staticLen is the number of entries in the static table.
const staticLen = len(staticTable) - 1

// entryOverhead is what an entry adds to the table's size beside its
// name and value (RFC 7541 4.1), and a field to a header list's size
// (RFC 9113 6.5.2).
const entryOverhead = 32

// size is f's size in a dynamic table or a header list.
func (f Field) size() uint64 { return uint64(len(f.Name)) + uint64(len(f.Value)) + entryOverhead }

// dynTable is the dynamic table: a ring of entries, newest last. Its
// entries' strings are its own (never views of a block's input or of
// the memory fields are handed out in), so that a long-lived entry
// pins nothing else.
type dynTable struct {
	ents    []Field // ring storage; len(ents) is its capacity
	first   int     // index in ents of the oldest entry
	n       int     // entries in the table
	size    uint64  // sum of the entries' sizes
	maxSize uint64  // the current maximum size, set by size updates
	limit   uint64  // the largest maxSize a size update may set: the size the decoder advertised
}

// at returns the entry with dynamic index i (1 is the newest).
func (t *dynTable) at(i uint64) (Field, bool) {
	if i == 0 || i > uint64(t.n) {
		return Field{}, false
	}
	return t.ents[(t.first+t.n-int(i))%len(t.ents)], true
}

// add inserts f, evicting the oldest entries to make room. An entry
// larger than the table empties it and is not inserted (RFC 7541 4.4).
func (t *dynTable) add(f Field) {
	s := f.size()
	t.evict(t.maxSize - min(s, t.maxSize))
	if s > t.maxSize {
		return
	}
	if t.n == len(t.ents) {
		// Every entry takes at least entryOverhead bytes, so the ring
		// never needs more than maxSize/entryOverhead+1 slots; it grows
		// by doubling up to that.
		ents := make([]Field, max(8, min(2*len(t.ents), int(t.limit/entryOverhead)+1)))
		for k := range t.n {
			ents[k] = t.ents[(t.first+k)%len(t.ents)]
		}
		t.ents, t.first = ents, 0
	}
	t.ents[(t.first+t.n)%len(t.ents)] = f
	t.n++
	t.size += s
}

// evict drops the oldest entries until the table's size is at most max.
func (t *dynTable) evict(max uint64) {
	for t.size > max {
		e := &t.ents[t.first]
		t.size -= e.size()
		*e = Field{}
		t.first = (t.first + 1) % len(t.ents)
		t.n--
	}
}

// setMaxSize applies a dynamic table size update.
func (t *dynTable) setMaxSize(v uint64) {
	t.maxSize = v
	t.evict(v)
}
