package gatewaytest

import (
	"net/http"
	"net/http/httptest"
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
