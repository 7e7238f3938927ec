package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/upstream"
)

// namesH2COrigin is gatewaytest.FieldNamesOrigin for h2c (prior
// knowledge): the names are
// those of the HEADERS' regular fields, in the order HPACK decoded them
// (lower case, as HTTP/2 sends them). Go's server would give a map.
func namesH2COrigin(t *testing.T) string {
	return gatewaytest.Listen(t, func(nc net.Conn) {
		br := bufio.NewReader(nc)
		if _, err := io.ReadFull(br, make([]byte, len(http2.ClientPreface))); err != nil {
			return
		}
		bw := bufio.NewWriter(nc)
		fr := http2.NewFramer(bw, br)
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		if fr.WriteSettings() != nil || bw.Flush() != nil {
			return
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					err = fr.WriteSettingsAck()
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					err = fr.WritePing(true, f.Data)
				}
			case *http2.MetaHeadersFrame:
				var names []string
				for _, hf := range f.RegularFields() {
					names = append(names, hf.Name)
				}
				b := strings.Join(names, ",")
				hb.Reset()
				enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
				enc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(b))})
				err = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: hb.Bytes(), EndHeaders: true})
				if err == nil {
					err = fr.WriteData(f.StreamID, true, []byte(b))
				}
			case *http2.GoAwayFrame:
				return
			}
			if err != nil || bw.Flush() != nil {
				return
			}
		}
	}).String()
}

// TestUpstreamFieldOrder: the server gets an HTTP/1.1 client's header
// fields in the order the client sent them, hop-by-hop ones left out and
// the gateway's forwarding fields after them; an HTTP/2 client's, which
// Go's server gives as a map, in sorted key order, not the map's, which
// changes from request to request. On both upstream protocols, for
// requests in turn and for requests queued for the one HTTP/1.1
// connection (presend).
func TestUpstreamFieldOrder(t *testing.T) {
	const (
		// Host first is the HTTP/1.1 client's; X-Forwarded-* the gateway's.
		h1Want = "Host,Zeta,User-Agent,Accept,X-B,Mid,X-A,X-Forwarded-For,X-Forwarded-Host,X-Forwarded-Proto"
		h2Want = "Host,Accept,Mid,User-Agent,X-A,X-B,Zeta,X-Forwarded-For,X-Forwarded-Host,X-Forwarded-Proto"
	)
	h1Req := "GET / HTTP/1.1\r\nHost: front\r\nZeta: 1\r\nUser-Agent: t\r\nAccept: */*\r\nX-B: 2\r\n" +
		"Connection: keep-alive, X-Hop\r\nX-Hop: h\r\nMid: 3\r\nx-a: 4\r\n\r\n"
	for _, proto := range []string{upstream.H1, upstream.H2C} {
		t.Run(proto, func(t *testing.T) {
			origin := gatewaytest.FieldNamesOrigin(t)
			if proto == upstream.H2C {
				origin = namesH2COrigin(t)
			}
			b := newBackend(t, upstream.Config{
				Protocol: proto,
				Servers:  []upstream.ServerConfig{{Address: origin}},
				H1:       upstream.H1Config{ConnsPerServer: 1},
				Queue:    upstream.QueueConfig{MaxPending: 100, Timeout: 5 * time.Second},
			})
			g, err := New(Config{Routes: []Route{{Backend: "b"}}}, map[string]http.RoundTripper{"b": b}, NewMetrics(nil), quiet())
			if err != nil {
				t.Fatal(err)
			}
			addr := listenAndServe(t, g, ListenerConfig{Addr: "127.0.0.1:0"})
			// An h2c server has no Host field: :authority comes first.
			want := func(s string) string {
				if proto == upstream.H2C {
					s = strings.ToLower(strings.TrimPrefix(s, "Host,"))
				}
				return s
			}

			t.Run("HTTP/1.1 client", func(t *testing.T) {
				var wg sync.WaitGroup
				for range 4 {
					c, br := gatewaytest.Dial(t, addr)
					wg.Go(func() {
						for i := range 10 {
							io.WriteString(c, h1Req)
							res, err := http.ReadResponse(br, nil)
							if err != nil {
								t.Error(err)
								return
							}
							got, _ := io.ReadAll(res.Body)
							if string(got) != want(h1Want) {
								t.Errorf("request %d: fields %s, want %s", i, got, want(h1Want))
								return
							}
						}
					})
				}
				wg.Wait()
			})

			t.Run("HTTP/2 client", func(t *testing.T) {
				var p http.Protocols
				p.SetUnencryptedHTTP2(true)
				tr := &http.Transport{Protocols: &p, DisableCompression: true}
				defer tr.CloseIdleConnections()
				for i := range 10 {
					req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
					for _, k := range []string{"Zeta", "User-Agent", "Accept", "X-B", "Mid", "X-A"} {
						req.Header.Set(k, "v")
					}
					res, err := tr.RoundTrip(req)
					if err != nil {
						t.Fatal(err)
					}
					got, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if res.ProtoMajor != 2 || string(got) != want(h2Want) {
						t.Fatalf("request %d: %s fields %s, want %s", i, res.Proto, got, want(h2Want))
					}
				}
			})
		})
	}
}
