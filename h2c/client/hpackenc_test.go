package client

import (
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

func BenchmarkEncodeRequestHeaders(b *testing.B) {
	fields := [][2]string{
		{":method", "GET"}, {":scheme", "http"}, {":authority", "backend:8080"}, {":path", "/app/items?id=42"},
		{"user-agent", "Mozilla/5.0 (X11; Linux x86_64)"}, {"accept", "*/*"}, {"accept-encoding", "gzip, br"},
		{"x-forwarded-for", "203.0.113.7"}, {"x-forwarded-proto", "https"},
	}
	b.Run("stateless", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf = buf[:0]
			for _, f := range fields {
				buf = appendField(buf, f[0], f[1])
			}
		}
		b.ReportMetric(float64(len(buf)), "bytes/block")
	})
	b.Run("x_net_indexing", func(b *testing.B) {
		var hb headerBuf
		enc := hpack.NewEncoder(&hb)
		b.ReportAllocs()
		for b.Loop() {
			hb.b = hb.b[:0]
			for _, f := range fields {
				enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
		}
		b.ReportMetric(float64(len(hb.b)), "bytes/block")
	})
}
