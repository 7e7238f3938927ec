package client

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// TestFieldOrder: a head's fields go out in sorted key order when the
// request has a map only (User-Agent first, as net/http writes it), not
// in the map's order, which changes from request to request; and in the
// given order, with what it lacks after it sorted, through RoundTripOrder
// and PresendOrder.
func TestFieldOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, gatewaytest.FieldNamesOrigin(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	header := func() http.Header {
		h := http.Header{}
		for _, k := range []string{"Zeta", "Accept", "Cookie", "X-B", "X-A", "Mid", "Beta", "Omega", "User-Agent", "Accept-Language"} {
			h[k] = []string{"v"}
		}
		return h
	}
	tests := []struct {
		name    string
		order   []string
		presend bool
		want    string
	}{
		{name: "map", want: "Host,User-Agent,Accept,Accept-Language,Beta,Cookie,Mid,Omega,X-A,X-B,Zeta"},
		{name: "order", order: []string{"Zeta", "X-B", "User-Agent", "Omega", "Mid", "X-A", "Cookie", "Beta", "Accept-Language", "Accept"},
			want: "Host,Zeta,X-B,User-Agent,Omega,Mid,X-A,Cookie,Beta,Accept-Language,Accept"},
		{name: "order presend", presend: true, order: []string{"Zeta", "X-B", "User-Agent", "Omega", "Mid", "X-A", "Cookie", "Beta", "Accept-Language", "Accept"},
			want: "Host,Zeta,X-B,User-Agent,Omega,Mid,X-A,Cookie,Beta,Accept-Language,Accept"},
		{name: "partial order, a key gone", order: []string{"Omega", "Gone", "Cookie"},
			want: "Host,Omega,Cookie,Accept,Accept-Language,Beta,Mid,User-Agent,X-A,X-B,Zeta"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A map's order is random: repeating shows one that is not.
			for i := range 20 {
				req := newRequest(t, "GET", "http://x/", nil)
				req.Header = header()
				if tt.presend {
					if err := c.Reserve(); err != nil {
						t.Fatal(err)
					}
					if err := c.PresendOrder(req, tt.order); err != nil {
						t.Fatal(err)
					}
				}
				rt := c.RoundTrip
				if tt.order != nil {
					rt = func(req *http.Request) (*http.Response, error) { return c.RoundTripOrder(req, tt.order) }
				}
				resp, err := rt(req)
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if string(b) != tt.want {
					t.Fatalf("try %d: fields %s, want %s", i, b, tt.want)
				}
			}
		})
	}
}
