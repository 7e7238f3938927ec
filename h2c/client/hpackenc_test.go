package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// FuzzStatelessHPACK: what the stateless encoder writes, x/net's decoder
// reads back unchanged.
func FuzzStatelessHPACK(f *testing.F) {
	f.Add(":method", "GET", "x-custom", "v")
	f.Add(":path", "/a/b?c=d", "user-agent", strings.Repeat("u", 300))
	f.Add("content-length", "12", "", "")
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2 string) {
		in := [][2]string{{n1, v1}, {n2, v2}, {n1, v1}}
		var block []byte
		for _, kv := range in {
			block = appendField(block, kv[0], kv[1])
		}
		var out [][2]string
		d := hpack.NewDecoder(4096, func(f hpack.HeaderField) { out = append(out, [2]string{f.Name, f.Value}) })
		if _, err := d.Write(block); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if len(out) != len(in) {
			t.Fatalf("decoded %d fields, want %d", len(out), len(in))
		}
		for i := range in {
			if out[i] != in[i] {
				t.Fatalf("field %d: %q, want %q", i, out[i], in[i])
			}
		}
	})
}

// benchRequest is a request as the gateway forwards what wrk sends: Host
// and the X-Forwarded-* fields.
func benchRequest(xff string) *http.Request {
	req, _ := http.NewRequest("GET", "http://127.0.0.1:20521/", nil)
	req.Header = http.Header{
		"X-Forwarded-For":   {xff},
		"X-Forwarded-Host":  {"127.0.0.1:20521"},
		"X-Forwarded-Proto": {"http"},
		"X-A":               {"1"},
	}
	return req
}

// encodeBlock encodes req as openRequest and openStream do.
func encodeBlock(t testing.TB, c *Conn, req *http.Request) []byte {
	t.Helper()
	return bytes.Clone(c.headerBlock(encodeRequestLit(t, req)))
}

// wantFields are benchRequest's fields as the server decodes them.
func wantFields(xff string) map[string]string {
	return map[string]string{":method": "GET", ":scheme": "http", ":authority": "127.0.0.1:20521", ":path": "/",
		"x-forwarded-for": xff, "x-forwarded-host": "127.0.0.1:20521", "x-forwarded-proto": "http", "x-a": "1"}
}

func checkFields(t *testing.T, fs []hpack.HeaderField, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	pseudo := true
	for _, f := range fs {
		if _, dup := got[f.Name]; dup {
			t.Fatalf("%s twice in %v", f.Name, fs)
		}
		if f.IsPseudo() != pseudo && !pseudo {
			t.Fatalf("pseudo-header field %s after a regular one: %v", f.Name, fs)
		}
		pseudo = f.IsPseudo()
		got[f.Name] = f.Value
	}
	if !maps.Equal(got, want) {
		t.Fatalf("decoded %v, want %v", got, want)
	}
}

// TestRepeatedFieldsIndexed: the connection's first block sets the
// table size (dynTableCap); the authority and the X-Forwarded-* fields
// go as literals the first time, are inserted into the server's dynamic
// table the second, and are one index byte each from the third on,
// while a value that changes with every request (X-Forwarded-For of
// many clients) stays a literal without indexing. Every block decodes,
// with one decoder as the server's, to the request's fields, pseudo-header
// fields first.
func TestRepeatedFieldsIndexed(t *testing.T) {
	c := new(Conn)
	d := hpack.NewDecoder(4096, nil)
	var blocks [][]byte
	for i := range 4 {
		b := encodeBlock(t, c, benchRequest("10.0.0.1"))
		fs, err := d.DecodeFull(b)
		if err != nil {
			t.Fatalf("block %d % x: %v", i, b, err)
		}
		checkFields(t, fs, wantFields("10.0.0.1"))
		blocks = append(blocks, b)
	}
	if blocks[0][0] != 0x3f || blocks[0][1] != 0xe1 || blocks[0][2] != 0x07 {
		t.Fatalf("first block % x: want a size update to %d (3f e1 07) first", blocks[0], dynTableCap)
	}
	if blocks[1][0]&0xe0 == 0x20 {
		t.Fatalf("second block % x opens with a size update", blocks[1])
	}
	// 82 86 84 (GET, http, "/"), 4 indexed fields, x-a: 1 (7 bytes).
	for _, b := range blocks[2:] {
		if len(b) != 3+4+7 {
			t.Fatalf("block % x: want 14 bytes", b)
		}
	}
	// Without the table: a block per request the size of the second
	// minus its index-adding bits, the same every time.
	n := 0
	for i := range 50 {
		b := encodeBlock(t, c, benchRequest(fmt.Sprintf("10.1.0.%03d", i)))
		fs, err := d.DecodeFull(b)
		if err != nil {
			t.Fatal(err)
		}
		checkFields(t, fs, wantFields(fmt.Sprintf("10.1.0.%03d", i)))
		if i > 0 && len(b) != n {
			t.Fatalf("block %d is %d bytes, the one before %d: a changing value was indexed", i, len(b), n)
		}
		n = len(b)
	}
	if len(c.henc.ents) != 4 {
		t.Fatalf("%d entries in the table, want the 4 of the first requests", len(c.henc.ents))
	}
}

// TestTableSizeFollowsServer: a server's SETTINGS_HEADER_TABLE_SIZE below
// the encoder's size brings a size update in the next block and no
// indexing at 0; the size never grows again.
func TestTableSizeFollowsServer(t *testing.T) {
	c := new(Conn)
	d := hpack.NewDecoder(4096, nil)
	decode := func(b []byte) {
		t.Helper()
		fs, err := d.DecodeFull(b)
		if err != nil {
			t.Fatalf("% x: %v", b, err)
		}
		checkFields(t, fs, wantFields("10.0.0.1"))
	}
	for range 3 {
		decode(encodeBlock(t, c, benchRequest("10.0.0.1")))
	}
	c.peerTable.Store(0 + 1)
	d.SetAllowedMaxDynamicTableSize(0)
	b := encodeBlock(t, c, benchRequest("10.0.0.1"))
	if b[0] != 0x20 {
		t.Fatalf("block % x after SETTINGS_HEADER_TABLE_SIZE 0: want a size update to 0 first", b)
	}
	decode(b)
	for range 3 {
		b = encodeBlock(t, c, benchRequest("10.0.0.1"))
		if b[0]&0xe0 == 0x20 || len(c.henc.ents) != 0 {
			t.Fatalf("block % x, %d entries: want no size update and no entry", b, len(c.henc.ents))
		}
		decode(b)
	}
	c.peerTable.Store(4096 + 1)
	if b = encodeBlock(t, c, benchRequest("10.0.0.1")); b[0]&0xe0 == 0x20 {
		t.Fatalf("block % x: the size grew again", b)
	}
	decode(b)
}

// FuzzDynamicHPACK: whatever the sequence of requests (a few hosts and
// client addresses, values too long to index, repeated X-Forwarded-For
// values) and of lowered table sizes, x/net's decoder, holding the
// server's table, reads back every request's fields.
func FuzzDynamicHPACK(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 2, 3, 0x80, 4, 5, 0x81, 6})
	f.Add([]byte{7, 7, 7, 15, 15, 0x90, 7, 7})
	f.Fuzz(func(t *testing.T, steps []byte) {
		c := new(Conn)
		d := hpack.NewDecoder(4096, nil)
		for _, s := range steps {
			if s&0x80 != 0 {
				// The server lowers its table size.
				v := uint32(s&0x7f) * 16
				if v > c.peerTableSize() {
					continue
				}
				c.peerTable.Store(v + 1)
				d.SetAllowedMaxDynamicTableSize(v)
				continue
			}
			host := fmt.Sprintf("h%d.example:80", s&3)
			xff := fmt.Sprintf("10.0.0.%d", s>>2&3)
			if s&0x10 != 0 {
				xff = strings.Repeat("x", 70)
			}
			req, _ := http.NewRequest("GET", "http://"+host+"/p", nil)
			req.Header = http.Header{"X-Forwarded-For": {xff}, "X-Forwarded-Host": {host}, "X-Forwarded-Proto": {"http"}}
			if s&0x20 != 0 {
				req.Header["X-Forwarded-Proto"] = []string{"http", "https"}
			}
			var dyn dynFields
			lit, _, err := encodeRequest(nil, req, nil, false, &dyn)
			if err != nil {
				t.Fatal(err)
			}
			b := c.headerBlock(lit, &dyn)
			fs, err := d.DecodeFull(b)
			if err != nil {
				t.Fatalf("% x: %v", b, err)
			}
			var got []string
			for _, f := range fs {
				got = append(got, f.Name+": "+f.Value)
			}
			want := []string{":method: GET", ":scheme: http", ":authority: " + host, ":path: /p",
				"x-forwarded-for: " + xff, "x-forwarded-host: " + host}
			for _, v := range req.Header["X-Forwarded-Proto"] {
				want = append(want, "x-forwarded-proto: "+v)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("decoded %q, want %q", got, want)
			}
			var size uint32
			for _, e := range c.henc.ents {
				size += entrySize(e.name, e.value)
			}
			if size != c.henc.size || size > c.henc.max {
				t.Fatalf("table size %d, counted %d, max %d", c.henc.size, size, c.henc.max)
			}
		}
	})
}

// BenchmarkEncodeRequest compares this package's stateless encoder with
// x/net's indexing one (which the client used before, see hpackenc.go)
// on the fields of requests as Sluice forwards them: "bench" is what wrk
// sends through the gateway (Host and the X-Forwarded-* fields it adds),
// "browser" a browser's page request from one client,
// "browser_1000_clients" the same from 1,000 clients taking turns (each
// its own address and session cookie). Only the encoding of the fields
// is timed, not the walk over the request that produces them, which is
// the same for both. bytes/req is the mean block size, what the server
// decodes per request.
func BenchmarkEncodeRequest(b *testing.B) {
	browser := http.Header{
		"User-Agent":                {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"},
		"Accept":                    {"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"},
		"Accept-Language":           {"en-US,en;q=0.9,de;q=0.8"},
		"Accept-Encoding":           {"gzip, deflate, br"},
		"Referer":                   {"http://127.0.0.1/app/catalog/index.html"},
		"Cookie":                    {"JSESSIONID=8F3A1C2B9D4E5F60718293A4B5C6D7E8; _ga=GA1.1.1234567890.1700000000; theme=dark; lang=en"},
		"Sec-Fetch-Dest":            {"document"},
		"Sec-Fetch-Mode":            {"navigate"},
		"Sec-Fetch-Site":            {"same-origin"},
		"Upgrade-Insecure-Requests": {"1"},
	}
	forwarded := func(h http.Header, client int) http.Header {
		out := http.Header{
			"X-Forwarded-For":   {fmt.Sprintf("10.1.%d.%d", client/250, client%250)},
			"X-Forwarded-Host":  {"shop.example.com"},
			"X-Forwarded-Proto": {"http"},
		}
		for k, vv := range h {
			out[k] = vv
		}
		if client > 0 && out["Cookie"] != nil {
			out["Cookie"] = []string{fmt.Sprintf("JSESSIONID=%032X; _ga=GA1.1.%d.1700000000; theme=dark; lang=en", client, 1234567890+client)}
		}
		if out["User-Agent"] == nil {
			out["User-Agent"] = []string{""}
		}
		return out
	}
	workloads := []struct {
		name    string
		clients int
		h       http.Header
	}{
		{"bench", 1, http.Header{}},
		{"browser", 1, browser},
		{"browser_1000_clients", 1000, browser},
	}
	for _, w := range workloads {
		// The fields encodeRequest sends for each request.
		reqFields := make([][]hpack.HeaderField, w.clients)
		for i := range reqFields {
			req, _ := http.NewRequest("GET", "http://shop.example.com/app/catalog/item?id=42", nil)
			req.Header = forwarded(w.h, i)
			var dyn dynFields
			block, _, err := encodeRequest(nil, req, nil, false, &dyn)
			if err != nil {
				b.Fatal(err)
			}
			if reqFields[i], err = hpack.NewDecoder(4096, nil).DecodeFull(new(Conn).headerBlock(block, &dyn)); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(w.name+"/stateless", func(b *testing.B) {
			var buf []byte
			var n, total int
			b.ReportAllocs()
			for b.Loop() {
				buf = buf[:0]
				for _, f := range reqFields[n%len(reqFields)] {
					buf = appendField(buf, f.Name, f.Value)
				}
				n++
				total += len(buf)
			}
			b.ReportMetric(float64(total)/float64(n), "bytes/req")
		})
		b.Run(w.name+"/x_net_indexing", func(b *testing.B) {
			var hb headerBuf
			enc := hpack.NewEncoder(&hb)
			var n, total int
			b.ReportAllocs()
			for b.Loop() {
				hb.b = hb.b[:0]
				for _, f := range reqFields[n%len(reqFields)] {
					enc.WriteField(f)
				}
				n++
				total += len(hb.b)
			}
			b.ReportMetric(float64(total)/float64(n), "bytes/req")
		})
	}
}

// teeConn records what the client writes.
type teeConn struct {
	net.Conn
	mu  sync.Mutex
	out []byte
}

func (c *teeConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.out = append(c.out, p...)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// TestIndexedFieldsOnTheWire: against net/http's HTTP/2 server, requests
// as the gateway forwards them, 50 at a time on one connection, each
// reach the handler with their own fields (a block encoded against the
// dynamic table out of order would fail the connection with
// COMPRESSION_ERROR, or give a request another's fields), and on the
// wire each is one HEADERS frame, END_STREAM set, of at most 20 bytes
// once the connection's first requests have put the repeated fields in
// the server's table (105 bytes before, as Tomcat saw them in
// BENCHMARKS.md).
func TestIndexedFieldsOnTheWire(t *testing.T) {
	addr := newH2CServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s|%s|%s", r.Host, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-Proto"))
	}))
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tee := &teeConn{Conn: nc}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := NewConn(ctx, tee, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.Close(); <-c.Done() }()
	const workers, each = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Two of the workers are clients of their own, changing
			// X-Forwarded-For; the others share one address.
			xff := "127.0.0.1"
			for i := range each {
				if w < 2 {
					xff = fmt.Sprintf("10.%d.0.%d", w, i)
				}
				req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
				fields := []Field{{"X-Forwarded-For", []string{xff}}, {"X-Forwarded-Host", []string{addr}}, {"X-Forwarded-Proto", []string{"http"}}}
				resp, err := c.RoundTripFields(req, fields)
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := addr + "|" + xff + "|" + addr + "|http"; err != nil || string(body) != want {
					errs <- fmt.Errorf("answer %q, %v; want %q", body, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	tee.mu.Lock()
	out := bytes.Clone(tee.out)
	tee.mu.Unlock()
	fr := http2.NewFramer(nil, bytes.NewReader(out[len(http2.ClientPreface):]))
	var heads, small, others int
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			heads++
			if !f.StreamEnded() || !f.HeadersEnded() {
				t.Fatalf("HEADERS of stream %d without END_STREAM or END_HEADERS", f.StreamID)
			}
			if len(f.HeaderBlockFragment()) <= 20 {
				small++
			}
		case *http2.SettingsFrame, *http2.WindowUpdateFrame:
			if f.Header().StreamID != 0 {
				others++
			}
		default:
			others++
		}
	}
	if heads != workers*each || others != 0 {
		t.Fatalf("%d HEADERS frames and %d others for %d requests, want one HEADERS each", heads, others, workers*each)
	}
	// The first few blocks carry literals, and so do the two changing
	// clients' (their X-Forwarded-For).
	if want := workers*each - 2*each - 10; small < want {
		t.Fatalf("%d blocks of at most 20 bytes, want at least %d", small, want)
	}
}

// TestTableSizeSmallestSetting: a server that lowers its
// SETTINGS_HEADER_TABLE_SIZE to 0 and raises it again before the next
// request gets a size update to 0 in that request's block (RFC 7541
// 4.2: the smallest size in the interval), and no indexing after.
func TestTableSizeSmallestSetting(t *testing.T) {
	c, f := start(t, Config{})
	// A block before: the update comes mid-connection. (Not written:
	// the fake server's decoder is not consulted here.)
	c.wmu.Lock()
	c.headerBlock(encodeRequestLit(t, benchRequest("10.0.0.1")))
	c.wmu.Unlock()
	for _, v := range []uint32{0, 4096} {
		if err := f.fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: v}); err != nil {
			t.Fatal(err)
		}
		f.next(func(r rframe) bool { return r.typ == http2.FrameSettings && r.ack })
	}
	if got := c.peerTableSize(); got != 0 {
		t.Fatalf("peerTableSize %d after SETTINGS_HEADER_TABLE_SIZE 0 then 4096, want 0", got)
	}
	c.wmu.Lock()
	b := bytes.Clone(c.headerBlock(encodeRequestLit(t, benchRequest("10.0.0.1"))))
	c.wmu.Unlock()
	if b[0] != 0x20 {
		t.Fatalf("block % x: want a size update to 0 first", b)
	}
}

// encodeRequestLit is encodeRequest's literal part and its fields left to
// the connection's encoder.
func encodeRequestLit(t testing.TB, req *http.Request) ([]byte, *dynFields) {
	t.Helper()
	d := new(dynFields)
	lit, _, err := encodeRequest(nil, req, nil, false, d)
	if err != nil {
		t.Fatal(err)
	}
	return lit, d
}
