// Command fastbackend is the benchmark's minimal upstream: a net/http server
// speaking HTTP/1.1 and h2c (prior knowledge) on every address given, that
// answers "hello\n" on every path. It stands in for Tomcat when the point is
// to measure a proxy's own overhead.
//
//	fastbackend -listen 127.0.0.1:19111 -listen 127.0.0.1:19112
//
// It prints "ready" once every listener is open and exits on SIGINT/SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var addrs listFlag
	flag.Var(&addrs, "listen", "host:port to serve on (repeatable)")
	maxStreams := flag.Int("max-streams", 250, "HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS")
	flag.Parse()
	if len(addrs) == 0 {
		fmt.Fprintln(os.Stderr, "fastbackend: at least one -listen is required")
		os.Exit(2)
	}

	body := []byte("hello\n")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"text/plain"}
		h["Content-Length"] = []string{"6"}
		_, _ = w.Write(body)
	})

	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)

	var servers []*http.Server
	errc := make(chan error, len(addrs))
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			log.Fatalf("fastbackend: %v", err)
		}
		srv := &http.Server{
			Handler:           handler,
			Protocols:         &protos,
			ReadHeaderTimeout: 10 * time.Second,
			// Proxies keep their upstream connections for minutes; never be the one to close them.
			IdleTimeout: 10 * time.Minute,
			HTTP2: &http.HTTP2Config{
				MaxConcurrentStreams: *maxStreams,
			},
			ErrorLog: log.New(os.Stderr, "fastbackend: ", 0),
		}
		servers = append(servers, srv)
		go func() { errc <- srv.Serve(ln) }()
	}
	fmt.Println("ready")

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		log.Printf("fastbackend: %v, stopping", s)
	case err := <-errc:
		log.Printf("fastbackend: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(ctx)
	}
}
