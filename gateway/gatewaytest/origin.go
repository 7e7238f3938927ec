package gatewaytest

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Origin serves h over cleartext HTTP/1.1 and h2c (prior knowledge), the way
// Tomcat's h2c connector does, until the test ends, and returns its
// host:port.
func Origin(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// FieldNamesOrigin serves HTTP/1.1 until the test ends, answering each
// request (a head without a body) with the names of its head's fields in
// the order they came, joined by ","; it returns its host:port. Go's
// server would give a map, which keeps no order.
func FieldNamesOrigin(t testing.TB) string {
	t.Helper()
	return Listen(t, func(nc net.Conn) {
		br := bufio.NewReader(nc)
		for {
			var names []string
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if line = strings.TrimRight(line, "\r\n"); line == "" {
					break
				}
				if name, _, ok := strings.Cut(line, ":"); ok {
					names = append(names, name)
				}
			}
			b := strings.Join(names, ",")
			if _, err := fmt.Fprintf(nc, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b); err != nil {
				return
			}
		}
	}).String()
}
