package client

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

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

// TestFirstBlockZeroesTable: the connection's first header block opens
// with a dynamic table size update to 0, the later ones do not, and the
// fields are the same.
func TestFirstBlockZeroesTable(t *testing.T) {
	c := new(Conn)
	req, _ := http.NewRequest("GET", "http://backend/p", nil)
	req.Header.Set("X-A", "1")
	b, _, err := encodeRequest(nil, req, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	first := bytes.Clone(c.headerBlock(b))
	b, _, err = encodeRequest(b, req, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	second := c.headerBlock(b)
	if len(first) == 0 || first[0] != 0x20 {
		t.Fatalf("first block % x: want a size update to 0 (20) first", first)
	}
	if !bytes.Equal(first[1:], second) {
		t.Fatalf("second block % x, want the first's fields % x alone", second, first[1:])
	}
	d := hpack.NewDecoder(4096, nil)
	d.SetAllowedMaxDynamicTableSize(0)
	for _, b := range [][]byte{first, second} {
		fs, err := d.DecodeFull(b)
		if err != nil || len(fs) != 5 || fs[4] != (hpack.HeaderField{Name: "x-a", Value: "1"}) {
			t.Fatalf("decoded %v, %v", fs, err)
		}
	}
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
			block, _, err := encodeRequest(nil, req, nil, false)
			if err != nil {
				b.Fatal(err)
			}
			if reqFields[i], err = hpack.NewDecoder(4096, nil).DecodeFull(new(Conn).headerBlock(block)); err != nil {
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
