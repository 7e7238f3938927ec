package client

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/http2"
)

// TestRequestRefusedBeforeStream: a request whose header cannot be sent
// (a name that is not a token, a value with a control byte, a bad Host,
// a list over the server's MAX_HEADER_LIST_SIZE) fails before any frame
// is written and takes no stream id, whoever built it: the encoder
// checks every field it sends, not only what a strict parser let in.
func TestRequestRefusedBeforeStream(t *testing.T) {
	for _, list := range []bool{false, true} {
		t.Run(modeName(list), func(t *testing.T) { testRequestRefused(t, list) })
	}
}

// modeName names a test's way of giving the header: RoundTrip's map or
// RoundTripFields' list.
func modeName(list bool) string {
	if list {
		return "list"
	}
	return "map"
}

// send runs RoundTrip, or RoundTripFields with req.Header as a list when
// list is set, in a goroutine.
func send(c *Conn, req *http.Request, list bool) chan rtResult {
	if !list {
		return goRoundTrip(c, req)
	}
	var fields []Field
	for k, vv := range req.Header {
		fields = append(fields, Field{Name: k, Values: vv})
	}
	r := *req
	r.Header = nil // not read
	ch := make(chan rtResult, 1)
	go func() {
		resp, err := c.RoundTripFields(&r, fields)
		ch <- rtResult{resp, err}
	}()
	return ch
}

func testRequestRefused(t *testing.T, list bool) {
	for _, tc := range []struct {
		name string
		mod  func(*http.Request)
		want string
	}{
		{"CRLF in a value", func(r *http.Request) { r.Header["X-A"] = []string{"a\r\nx-injected: 1"} }, "invalid value"},
		{"NUL in a value", func(r *http.Request) { r.Header["X-A"] = []string{"a\x00b"} }, "invalid value"},
		{"DEL in a known field's value", func(r *http.Request) { r.Header["User-Agent"] = []string{"ok", "a\x7f"} }, "invalid value"},
		{"bad value in a dropped field", func(r *http.Request) { r.Header["Connection"] = []string{"a\nb"} }, "invalid value"},
		{"space in a name", func(r *http.Request) { r.Header["X A"] = []string{"1"} }, "invalid header name"},
		{"colon in a name", func(r *http.Request) { r.Header["X:A"] = []string{"1"} }, "invalid header name"},
		{"empty name", func(r *http.Request) { r.Header[""] = []string{"1"} }, "invalid header name"},
		{"bad Host", func(r *http.Request) { r.Host = "a b" }, "invalid Host"},
		{"over the server's header list size", func(r *http.Request) { r.Header["X-Big"] = []string{strings.Repeat("b", 2000)} }, "MAX_HEADER_LIST_SIZE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, f := start(t, Config{}, http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: 1024})
			req := get(context.Background())
			tc.mod(req)
			err := wait(t, send(c, req, list)).err
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("RoundTrip error %v, want one saying %q", err, tc.want)
			}
			if n := c.InFlight(); n != 0 {
				t.Fatalf("InFlight %d after the refusal", n)
			}
			// The next request goes out as stream 1: no frame and no id
			// went to the refused one.
			rt := goRoundTrip(c, get(context.Background()))
			h := f.headers()
			if h.streamID != 1 {
				t.Fatalf("next request on stream %d, want 1", h.streamID)
			}
			f.writeHeaders(h.streamID, true, ":status", "204")
			if res := wait(t, rt); res.err != nil {
				t.Fatal(res.err)
			}
		})
	}
}

// TestRequestFieldsSent: what goes on the wire for a request header map
// as the gateway and net/http's servers build them: connection-specific
// fields dropped in any case, TE only as "trailers", names in lower
// case, Host as :authority, each value as it was.
func TestRequestFieldsSent(t *testing.T) {
	for _, list := range []bool{false, true} {
		t.Run(modeName(list), func(t *testing.T) { testRequestFieldsSent(t, list) })
	}
}

func testRequestFieldsSent(t *testing.T, list bool) {
	c, f := start(t, Config{})
	req, _ := http.NewRequest("POST", "http://backend/p?q=1", strings.NewReader("abc"))
	req.Host = "front.example"
	req.Header = http.Header{
		"User-Agent":        {"ua/1"},
		"Accept":            {"*/*", "text/html"},
		"X-Forwarded-For":   {"10.0.0.1"},
		"X-Custom-Thing":    {"v\tw"},
		"x-lower":           {"l"},
		"Sec-Fetch-Mode":    {"navigate"},
		"Te":                {"gzip", "Trailers"},
		"Connection":        {"keep-alive"},
		"connection":        {"x"},
		"Keep-Alive":        {"300"},
		"Upgrade":           {"websocket"},
		"Transfer-Encoding": {"chunked"},
		"Host":              {"ignored"},
		"Content-Length":    {"99"},
		"Trailer":           {"X-T"},
	}
	rt := send(c, req, list)
	h := f.headers()
	var got []string
	for _, fl := range h.fields {
		got = append(got, fl.Name+": "+fl.Value)
	}
	slices.Sort(got)
	want := []string{
		":authority: front.example", ":method: POST", ":path: /p?q=1", ":scheme: http",
		"accept: */*", "accept: text/html", "content-length: 3", "sec-fetch-mode: navigate",
		"te: trailers", "user-agent: ua/1", "x-custom-thing: v\tw", "x-forwarded-for: 10.0.0.1", "x-lower: l",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("fields sent:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	f.writeHeaders(h.streamID, true, ":status", "204")
	if res := wait(t, rt); res.err != nil {
		t.Fatal(res.err)
	}
}

// TestExpects100: Expect: 100-continue is found in either form of the
// header, whatever the case of its name and value.
func TestExpects100(t *testing.T) {
	for _, tc := range []struct {
		h    http.Header
		want bool
	}{
		{http.Header{"Expect": {"100-continue"}}, true},
		{http.Header{"Expect": {"100-Continue"}}, true},
		{http.Header{"expect": {"100-continue"}}, true},
		{http.Header{"Expect": {"other"}}, false},
		{http.Header{"Expect": {}}, false},
		{http.Header{"X-Expect": {"100-continue"}}, false},
		{http.Header{}, false},
	} {
		var fields []Field
		for k, vv := range tc.h {
			fields = append(fields, Field{Name: k, Values: vv})
		}
		// The map form is read as net/http reads it: by canonical key.
		req := &http.Request{Header: http.Header{}}
		for k, vv := range tc.h {
			req.Header[http.CanonicalHeaderKey(k)] = vv
		}
		if got := expects100(req, nil, false); got != tc.want {
			t.Errorf("map %v: %v, want %v", tc.h, got, tc.want)
		}
		if got := expects100(&http.Request{}, fields, true); got != tc.want {
			t.Errorf("list %v: %v, want %v", tc.h, got, tc.want)
		}
	}
}

// TestUserAgentSent: an empty User-Agent (the gateway's way of saying
// "none, and no default") is not sent, and of several values only the
// first goes, as net/http's HTTP/2 client does.
func TestUserAgentSent(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.Header
		want []string
	}{
		{"empty", http.Header{"User-Agent": {""}}, nil},
		{"empty lower-case", http.Header{"user-agent": {""}}, nil},
		{"one", http.Header{"User-Agent": {"ua/1"}}, []string{"ua/1"}},
		{"several", http.Header{"User-Agent": {"ua/1", "ua/2"}}, []string{"ua/1"}},
		{"empty first", http.Header{"User-Agent": {"", "ua/2"}}, nil},
	} {
		for _, list := range []bool{false, true} {
			t.Run(tc.name+"/"+modeName(list), func(t *testing.T) {
				c, f := start(t, Config{})
				req, _ := http.NewRequest("GET", "http://backend/", nil)
				req.Header = tc.h
				rt := send(c, req, list)
				h := f.headers()
				var got []string
				for _, fl := range h.fields {
					if fl.Name == "user-agent" {
						got = append(got, fl.Value)
					}
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("user-agent values sent %q, want %q", got, tc.want)
				}
				f.writeHeaders(h.streamID, true, ":status", "204")
				if res := wait(t, rt); res.err != nil {
					t.Fatal(res.err)
				}
			})
		}
	}
}
