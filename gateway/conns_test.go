package gateway

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// TestClientConnectionsByProtocol: on a listener from Gateway.Listen, an
// HTTP/1.1 connection and an h2c one (handed from the HTTP/1.1 server to
// HTTP/2 by its preface) are each counted open under their protocol while
// open, accepted once, and no longer open once closed.
func TestClientConnectionsByProtocol(t *testing.T) {
	g, err := New(Config{Routes: []Route{{Backend: "b"}}}, map[string]http.RoundTripper{"b": answer(200, "ok")}, NewMetrics(nil), quiet())
	if err != nil {
		t.Fatal(err)
	}
	addr := listenAndServe(t, g, ListenerConfig{Addr: "127.0.0.1:0"})
	m := g.conns.m
	counts := func() [4]float64 {
		return [4]float64{
			testutil.ToFloat64(m.clientConns.WithLabelValues("http1")),
			testutil.ToFloat64(m.clientConns.WithLabelValues("h2c")),
			testutil.ToFloat64(m.clientAccepted.WithLabelValues("http1")),
			testutil.ToFloat64(m.clientAccepted.WithLabelValues("h2c")),
		}
	}
	waitFor := func(what string, want [4]float64) {
		t.Helper()
		gatewaytest.WaitFor(t, 5*time.Second, what, func() bool { return counts() == want })
	}

	c, br := gatewaytest.Dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if res, err := http.ReadResponse(br, nil); err != nil || res.StatusCode != 200 {
		t.Fatalf("HTTP/1.1: %v %v", res, err)
	}
	waitFor("an open HTTP/1.1 connection", [4]float64{1, 0, 1, 0})

	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	res, err := (&http.Client{Timeout: 5 * time.Second, Transport: tr}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.ProtoMajor != 2 {
		t.Fatalf("h2c request answered over %s", res.Proto)
	}
	waitFor("an open h2c connection besides", [4]float64{1, 1, 1, 1})

	c.Close()
	tr.CloseIdleConnections()
	waitFor("both closed", [4]float64{0, 0, 1, 1})
}
