package adminapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/upstream"
)

// fakeControl runs one backend, "tomcat", with servers a:1 and b:2.
type fakeControl struct {
	servers map[string]*upstream.ServerStats
}

func newFakeControl() *fakeControl {
	return &fakeControl{servers: map[string]*upstream.ServerStats{
		"a:1": {Address: "a:1", State: "up", Weight: 1},
		"b:2": {Address: "b:2", State: "up", Weight: 1},
	}}
}

func (f *fakeControl) find(backend, server string) (*upstream.ServerStats, error) {
	if backend != "tomcat" {
		return nil, fmt.Errorf("%w %q", ErrUnknownBackend, backend)
	}
	ss, ok := f.servers[server]
	if !ok {
		return nil, fmt.Errorf("%w %q", upstream.ErrUnknownServer, server)
	}
	return ss, nil
}

func (f *fakeControl) SetDrain(backend, server string, drain bool) (upstream.ServerStats, error) {
	ss, err := f.find(backend, server)
	if err != nil {
		return upstream.ServerStats{}, err
	}
	ss.Drained, ss.State = drain, "up"
	if drain {
		ss.State = upstream.StateDrain
	}
	return *ss, nil
}

func (f *fakeControl) SetWeight(backend, server string, weight int) (upstream.ServerStats, error) {
	ss, err := f.find(backend, server)
	if err != nil {
		return upstream.ServerStats{}, err
	}
	if weight < 1 || weight > upstream.MaxWeight {
		return upstream.ServerStats{}, fmt.Errorf("%w: %d", upstream.ErrWeightRange, weight)
	}
	ss.Weight = weight
	return *ss, nil
}

var statsStub = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, `{"backends":[]}`)
})

func TestRoutesAndBodies(t *testing.T) {
	const srv = "/api/backends/tomcat/servers/a:1/"
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string // in the body
		allow              string
	}{
		{"GET", "/api/backends", "", 200, `{"backends":[]}`, ""},
		{"HEAD", "/api/backends", "", 200, "", ""},
		{"POST", "/api/backends", "", 405, `"error":"method POST not allowed; use GET, HEAD"`, "GET, HEAD"},
		{"POST", srv + "drain", "", 200, `"state":"drain","drained":true`, ""},
		{"POST", srv + "enable", "", 200, `"state":"up","drained":false`, ""},
		{"GET", srv + "drain", "", 405, `"error":"method GET not allowed; use POST"`, "POST"},
		{"DELETE", srv + "weight", "", 405, `not allowed`, "POST"},
		{"POST", srv + "weight", `{"weight": 50}`, 200, `"backend":"tomcat","address":"a:1"`, ""},
		{"POST", srv + "weight", `{"weight": 1000}`, 200, `"weight":1000`, ""},
		{"POST", srv + "weight", `{"weight": 0}`, 400, `weight out of range: 0`, ""},
		{"POST", srv + "weight", `{"weight": 1001}`, 400, `weight out of range`, ""},
		{"POST", srv + "weight", `{"weight": -3}`, 400, `weight out of range`, ""},
		{"POST", srv + "weight", `{"weight": 2.5}`, 400, `body must be {\"weight\": N}`, ""},
		{"POST", srv + "weight", `{"weight": "5"}`, 400, `body must be`, ""},
		{"POST", srv + "weight", `{"wieght": 5}`, 400, `unknown field \"wieght\"`, ""},
		{"POST", srv + "weight", `{}`, 400, `no weight`, ""},
		{"POST", srv + "weight", ``, 400, `empty body`, ""},
		{"POST", srv + "weight", `{"weight": 5} {"weight": 6}`, 400, `data after the JSON object`, ""},
		{"POST", srv + "weight", `{"weight": 5`, 400, `body must be`, ""},
		{"POST", srv + "weight", `{"weight": ` + strings.Repeat("1", 2000) + `}`, 400, `body must be`, ""},
		{"POST", "/api/backends/nope/servers/a:1/drain", "", 404, `"error":"unknown backend \"nope\""`, ""},
		{"POST", "/api/backends/tomcat/servers/c:3/enable", "", 404, `"error":"unknown server \"c:3\""`, ""},
		{"POST", "/api/backends/tomcat/servers/c:3/weight", `{"weight": 2}`, 404, `unknown server`, ""},
		{"POST", srv + "restart", "", 404, `no such API endpoint`, ""},
		{"GET", "/api/nothing", "", 404, `no such API endpoint`, ""},
	} {
		t.Run(tc.method+" "+tc.path+" "+tc.body, func(t *testing.T) {
			h := Handler(newFakeControl(), statsStub)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.want) {
				t.Errorf("%d %s, want %d with %s", w.Code, w.Body, tc.status, tc.want)
			}
			if got := w.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			if tc.status != 200 {
				var e errorDoc
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Errorf("error answer is not {\"error\": ...}: %s", w.Body)
				}
				if ct := w.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
			}
		})
	}
}

// The state an action sets is the one the next answers report.
func TestActionsChangeState(t *testing.T) {
	f := newFakeControl()
	h := Handler(f, statsStub)
	post := func(path, body string) serverDoc {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/api/backends/tomcat/servers/b:2/"+path, strings.NewReader(body)))
		var d serverDoc
		if err := json.Unmarshal(w.Body.Bytes(), &d); w.Code != 200 || err != nil {
			t.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		return d
	}
	if d := post("drain", ""); !d.Drained || d.Backend != "tomcat" || d.Address != "b:2" {
		t.Errorf("drain: %+v", d)
	}
	if d := post("weight", `{"weight":7}`); d.Weight != 7 || !d.Drained {
		t.Errorf("weight: %+v", d)
	}
	if !f.servers["b:2"].Drained || f.servers["a:1"].Drained {
		t.Errorf("control state %+v %+v", *f.servers["a:1"], *f.servers["b:2"])
	}
	if d := post("enable", ""); d.Drained || d.Weight != 7 {
		t.Errorf("enable: %+v", d)
	}
}

// withLocal marks r as arriving on local, as http.Server does.
func withLocal(r *http.Request, local string) *http.Request {
	addr, err := net.ResolveTCPAddr("tcp", local)
	if err != nil {
		panic(err)
	}
	return r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, addr))
}

func TestGuard(t *testing.T) {
	const token = "s3cret-token-0123456789"
	for _, tc := range []struct {
		name          string
		token         string
		local, host   string
		method        string
		header        map[string]string
		status        int
		authenticate  string // WWW-Authenticate
		reachesHandle bool
	}{
		{"token", token, "10.0.0.5:9001", "10.0.0.5:9001", "POST", map[string]string{"Authorization": "Bearer " + token}, 200, "", true},
		{"token, scheme in lower case", token, "10.0.0.5:9001", "x", "GET", map[string]string{"Authorization": "bearer " + token}, 200, "", true},
		{"no header", token, "10.0.0.5:9001", "x", "GET", nil, 401, `Bearer realm="sluice admin"`, false},
		{"wrong token", token, "10.0.0.5:9001", "x", "POST", map[string]string{"Authorization": "Bearer nope"}, 401, `Bearer realm="sluice admin", error="invalid_token"`, false},
		{"token prefix", token, "10.0.0.5:9001", "x", "POST", map[string]string{"Authorization": "Bearer " + token[:10]}, 401, `Bearer realm="sluice admin", error="invalid_token"`, false},
		{"token and more", token, "10.0.0.5:9001", "x", "POST", map[string]string{"Authorization": "Bearer " + token + "x"}, 401, `Bearer realm="sluice admin", error="invalid_token"`, false},
		{"basic scheme", token, "10.0.0.5:9001", "x", "POST", map[string]string{"Authorization": "Basic " + token}, 401, `Bearer realm="sluice admin"`, false},
		{"empty bearer", token, "10.0.0.5:9001", "x", "POST", map[string]string{"Authorization": "Bearer "}, 401, `Bearer realm="sluice admin"`, false},
		{"token needed on loopback too once set", token, "127.0.0.1:9001", "127.0.0.1:9001", "POST", nil, 401, `Bearer realm="sluice admin"`, false},
		{"loopback, no token", "", "127.0.0.1:9001", "127.0.0.1:9001", "POST", nil, 200, "", true},
		{"loopback v6, localhost", "", "[::1]:9001", "localhost:9001", "POST", nil, 200, "", true},
		{"DNS rebinding", "", "127.0.0.1:9001", "evil.example:9001", "POST", nil, 403, "", false},
		{"no token off loopback", "", "10.0.0.5:9001", "127.0.0.1:9001", "GET", nil, 403, "", false},
		{"cross-site POST", "", "127.0.0.1:9001", "127.0.0.1:9001", "POST", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "", false},
		{"cross-origin POST", token, "127.0.0.1:9001", "127.0.0.1:9001", "POST", map[string]string{"Authorization": "Bearer " + token, "Origin": "http://evil.example"}, 403, "", false},
		{"same-origin POST from the page", token, "127.0.0.1:9001", "127.0.0.1:9001", "POST", map[string]string{"Authorization": "Bearer " + token, "Sec-Fetch-Site": "same-origin"}, 200, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reached := false
			g := &Guard{Token: func() string { return tc.token }}
			h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }))
			r := withLocal(httptest.NewRequest(tc.method, "/api/backends", nil), tc.local)
			r.Host = tc.host
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status || reached != tc.reachesHandle {
				t.Errorf("%d (handler reached %v) %s, want %d (%v)", w.Code, reached, w.Body, tc.status, tc.reachesHandle)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tc.authenticate {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.authenticate)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9001": true, "127.1.2.3": true, "[::1]:9001": true, "localhost:9001": true, "LOCALHOST": true,
		"0.0.0.0:9001": false, ":9001": false, "[::]:9001": false, "10.0.0.1:9001": false, "example.com:9001": false,
		"localhost.example.com:1": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
}

// Backends acts on the backend it finds by name, through the API.
func TestBackendsControl(t *testing.T) {
	b, err := upstream.New(upstream.Config{Name: "tomcat", Protocol: upstream.H2C,
		Servers: []upstream.ServerConfig{{Address: "127.0.0.1:1"}, {Address: "127.0.0.1:2"}}},
		upstream.NewMetrics(nil), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	h := Handler(Backends(func() []*upstream.Backend { return []*upstream.Backend{b} }), statsStub)
	for _, tc := range []struct {
		path, body string
		status     int
		want       string
	}{
		{"/api/backends/tomcat/servers/127.0.0.1:2/drain", "", 200, `"drained":true`},
		{"/api/backends/tomcat/servers/127.0.0.1%3A1/weight", `{"weight": 9}`, 200, `"address":"127.0.0.1:1"`},
		{"/api/backends/other/servers/127.0.0.1:2/drain", "", 404, `unknown backend \"other\"`},
		{"/api/backends/tomcat/servers/127.0.0.1:3/enable", "", 404, `unknown server \"127.0.0.1:3\" in backend \"tomcat\"`},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", tc.path, strings.NewReader(tc.body)))
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("POST %s: %d %s, want %d with %s", tc.path, w.Code, w.Body, tc.status, tc.want)
		}
	}
	for _, ss := range b.Stats().Servers {
		if want := ss.Address == "127.0.0.1:2"; ss.Drained != want {
			t.Errorf("%s drained %v", ss.Address, ss.Drained)
		}
		if want := map[string]int{"127.0.0.1:1": 9, "127.0.0.1:2": 1}[ss.Address]; ss.Weight != want {
			t.Errorf("%s weight %d, want %d", ss.Address, ss.Weight, want)
		}
	}
}
