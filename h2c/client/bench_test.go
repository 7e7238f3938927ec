package client

import (
	"context"
	"io"
	"net/http"
	"testing"
)

// BenchmarkRoundTrip compares this client with net/http's HTTP/2
// ClientConn on the same in-process h2c server: one small GET per op,
// sequential and with 64 concurrent requests. With net/http's server the
// server's allocations are counted too; the canned server allocates
// nothing per request, so there they are the client's alone.
func BenchmarkRoundTrip(b *testing.B) {
	for _, srv := range []string{"net_http_server", "canned_server"} {
		b.Run(srv, func(b *testing.B) {
			var addr string
			if srv == "canned_server" {
				addr = newCannedServer(b)
			} else {
				addr = newH2CServer(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/plain")
					w.Header().Set("Cache-Control", "no-cache")
					w.Write([]byte("hello, world"))
				}))
			}
			benchClients(b, addr)
		})
	}
}

func benchClients(b *testing.B, addr string) {
	newReq := func() *http.Request {
		req, _ := http.NewRequest("GET", "http://"+addr+"/bench", nil)
		req.Header.Set("User-Agent", "bench")
		req.Header.Set("Accept", "*/*")
		return req
	}
	clients := map[string]func(b *testing.B) http.RoundTripper{
		"sluice": func(b *testing.B) http.RoundTripper { return dialTest(b, addr, Config{}) },
		"net_http": func(b *testing.B) http.RoundTripper {
			var p http.Protocols
			p.SetUnencryptedHTTP2(true)
			tr := &http.Transport{Protocols: &p}
			cc, err := tr.NewClientConn(context.Background(), "http", addr)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { cc.Close() })
			return cc
		},
	}
	one := func(b *testing.B, rt http.RoundTripper, req *http.Request) {
		resp, err := rt.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for _, name := range []string{"sluice", "net_http"} {
		b.Run(name+"/serial", func(b *testing.B) {
			rt := clients[name](b)
			req := newReq()
			b.ReportAllocs()
			for b.Loop() {
				one(b, rt, req)
			}
		})
		b.Run(name+"/parallel64", func(b *testing.B) {
			rt := clients[name](b)
			b.ReportAllocs()
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				req := newReq()
				for pb.Next() {
					one(b, rt, req)
				}
			})
		})
	}
}
