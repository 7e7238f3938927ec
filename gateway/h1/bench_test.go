package h1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
)

// BenchmarkServeKeepAlive: one keep-alive client, one small GET after
// another, against this server and against net/http's with the same
// handler.
func BenchmarkServeKeepAlive(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello")
	})
	for _, tt := range []struct {
		name  string
		serve func(net.Listener) func()
	}{
		{"h1", func(ln net.Listener) func() {
			s := &Server{Handler: h}
			go s.Serve(ln)
			return func() { s.Close() }
		}},
		{"net_http", func(ln net.Listener) func() {
			s := &http.Server{Handler: h}
			go s.Serve(ln)
			return func() { s.Close() }
		}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer tt.serve(ln)()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			req := []byte("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			b.ReportAllocs()
			for b.Loop() {
				c.Write(req)
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		})
	}
}
