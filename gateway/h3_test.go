package gateway

import (
	"crypto/tls"
	"io"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/quic-go/quic-go/http3"

	"github.com/sluice-gw/sluice/upstream"
)

func TestHTTP3ReachesTheSameBackend(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto+" "+r.Header.Get("X-Forwarded-Proto"))
	})
	log := quiet()
	b := newBackend(t, upstream.Config{
		Protocol: upstream.H2C,
		Servers:  []upstream.ServerConfig{{Address: up}},
		Queue:    upstream.QueueConfig{MaxPending: 10},
	})
	m := NewMetrics(nil)
	g, err := New(Config{Routes: []Route{{Backend: "b"}}}, map[string]http.RoundTripper{"b": b}, m, log)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := LoadCerts([]CertPair{writeCert(t, t.TempDir(), "s", "localhost")})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := ListenUDP("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	s := NewH3Server(g, certs)
	go s.Serve(pc)
	t.Cleanup(func() { s.srv.Close(); pc.Close() })

	tr := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}}
	defer tr.Close()
	c := &http.Client{Transport: tr}
	resp, err := c.Get("https://" + pc.LocalAddr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The upstream hop is h2c whatever the client spoke, and carries the
	// client's scheme.
	if string(body) != "HTTP/2.0 https" {
		t.Errorf("upstream saw %q", body)
	}
	if resp.Proto != "HTTP/3.0" {
		t.Errorf("client spoke %s", resp.Proto)
	}
	if n := testutil.ToFloat64(m.clientAccepted.WithLabelValues("h3")); n != 1 {
		t.Errorf("h3 connections accepted = %v", n)
	}
}
