package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/upstream"
	"golang.org/x/net/http/httpguts"
)

// TestTrailersReachHTTP11Client pins issue 9 item 12: an h2 upstream sends
// trailers without announcing them, after a body of known length. An
// HTTP/1.1 client that sent TE: trailers gets a chunked body and the
// trailers; one that did not keeps the Content-Length.
func TestTrailersReachHTTP11Client(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
		w.Header().Set(http.TrailerPrefix+"X-Sum", "abc")
		w.Header().Set(http.TrailerPrefix+"X-Count", "1")
	})
	gw := newGatewayProto(t, up, upstream.H2C, upstream.QueueConfig{MaxPending: 10})
	tests := []struct {
		name, te     string
		wantTrailers bool
	}{
		{"te trailers", "trailers", true},
		{"te with others", "gzip, trailers", true},
		{"no te", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", gw)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			req := "GET / HTTP/1.1\r\nHost: x\r\n"
			if tt.te != "" {
				req += "TE: " + tt.te + "\r\nConnection: TE\r\n"
			}
			io.WriteString(c, req+"\r\n")
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(res.Body)
			if err != nil || string(body) != "hello" {
				t.Fatalf("body %q, %v", body, err)
			}
			got := res.Trailer.Get("X-Sum") == "abc" && res.Trailer.Get("X-Count") == "1"
			if got != tt.wantTrailers {
				t.Errorf("trailers %v (chunked %v), want them: %v", res.Trailer, res.TransferEncoding, tt.wantTrailers)
			}
			if !tt.wantTrailers && res.ContentLength != 5 {
				t.Errorf("Content-Length %d, want 5 kept", res.ContentLength)
			}
		})
	}
}

func TestMayHaveTrailers(t *testing.T) {
	te := http.Header{"Te": {"trailers"}}
	tests := []struct {
		name    string
		method  string
		major   int
		minor   int
		h       http.Header
		status  int
		upMajor int
		trailer http.Header
		want    bool
	}{
		{"h2 upstream", "GET", 1, 1, te, 200, 2, nil, true},
		{"announced over h1", "GET", 1, 1, te, 200, 1, http.Header{"X": nil}, true},
		{"h1 upstream, none announced", "GET", 1, 1, te, 200, 1, nil, false},
		{"client without TE", "GET", 1, 1, http.Header{}, 200, 2, nil, false},
		{"HTTP/1.0 client", "GET", 1, 0, te, 200, 2, nil, false},
		{"h2 client", "GET", 2, 0, te, 200, 2, nil, false},
		{"HEAD", "HEAD", 1, 1, te, 200, 2, nil, false},
		{"304", "GET", 1, 1, te, 304, 2, nil, false},
		{"204", "GET", 1, 1, te, 204, 2, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{Method: tt.method, ProtoMajor: tt.major, ProtoMinor: tt.minor, Header: tt.h}
			res := &http.Response{StatusCode: tt.status, ProtoMajor: tt.upMajor, Trailer: tt.trailer}
			// outHeader's test of the request's TE field.
			teTrailers := httpguts.HeaderValuesContainsToken(tt.h["Te"], "trailers")
			if got := mayHaveTrailers(r, res, teTrailers); got != tt.want {
				t.Errorf("mayHaveTrailers = %v, want %v", got, tt.want)
			}
		})
	}
}
