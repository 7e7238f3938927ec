package runtime

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
	"github.com/sluice-gw/sluice/upstream"
)

func TestReadiness(t *testing.T) {
	tests := []struct {
		name      string
		listening bool
		down      []string // listeners that cannot accept
		backends  []backendState
		want      bool
		reason    string
	}{
		{"all good", true, nil, []backendState{{"a", true}, {"b", true}}, true, ""},
		{"not listening", false, nil, []backendState{{"a", true}}, false, "listeners"},
		{"one backend down", true, nil, []backendState{{"a", true}, {"b", false}}, false, `backend "b"`},
		{"no backends", true, nil, nil, true, ""},
		{"listener cannot accept", true, []string{"tls_listen: accept failing: too many open files"}, []backendState{{"a", true}}, false, "listener tls_listen: accept failing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, why := readiness(tt.listening, tt.down, tt.backends)
			if ok != tt.want {
				t.Fatalf("ready = %v, want %v (%v)", ok, tt.want, why)
			}
			if tt.reason != "" && !strings.Contains(strings.Join(why, ";"), tt.reason) {
				t.Errorf("reasons %v lack %q", why, tt.reason)
			}
		})
	}
}

// adminDo sends method path to the admin listener with token, when not
// empty, as a bearer token.
func adminDo(t *testing.T, admin, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+admin+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// With admin_token set, the endpoints that show or change state need it
// and the probes and metrics do not; a drain set through the API shows in
// /stats.json and survives a reload, which may also change the token.
func TestAdminTokenAndAPIWired(t *testing.T) {
	const token, token2 = "first-token-0123456789", "second-token-0123456789"
	origin := echoOrigin(t)
	cfg, err := config.Quick(freeAddr(t), freeAddr(t), upstream.H2C, []string{origin}, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AdminToken = token
	var next atomic.Pointer[config.Config]
	r := serveWithReload(t, cfg, &next)
	drain := "/api/backends/" + config.QuickBackend + "/servers/" + origin + "/drain"
	for _, tc := range []struct {
		method, path string
		open         bool
	}{
		{"GET", "/metrics", true}, {"GET", "/healthz", true}, {"GET", "/readyz", true}, {"GET", "/", true},
		{"GET", "/stats.json", false}, {"GET", "/api/backends", false}, {"POST", "/reload", false}, {"POST", drain, false},
	} {
		code, _ := adminDo(t, r.admin, tc.method, tc.path, "", "")
		if open := code == http.StatusOK; open != tc.open {
			t.Errorf("%s %s without token: %d, want open=%v", tc.method, tc.path, code, tc.open)
		}
		if !tc.open {
			if code, body := adminDo(t, r.admin, tc.method, tc.path, token, ""); code != http.StatusOK {
				t.Errorf("%s %s with the token: %d %s", tc.method, tc.path, code, body)
			}
		}
	}
	state := func(tok string) string {
		t.Helper()
		code, body := adminDo(t, r.admin, "GET", "/api/backends", tok, "")
		var d statsDoc
		if err := json.Unmarshal([]byte(body), &d); code != http.StatusOK || err != nil || len(d.Backends) != 1 {
			t.Fatalf("/api/backends: %d %v %s", code, err, body)
		}
		return d.Backends[0].Servers[0].State
	}
	if got := state(token); got != "drain" {
		t.Errorf("after drain: state %q", got)
	}
	reloaded := *cfg
	reloaded.AdminToken = token2
	next.Store(&reloaded)
	if code, body := adminDo(t, r.admin, "POST", "/reload", token, ""); code != http.StatusOK {
		t.Fatalf("reload: %d %s", code, body)
	}
	if code, _ := adminDo(t, r.admin, "GET", "/api/backends", token, ""); code != http.StatusUnauthorized {
		t.Errorf("old token after a reload changed it: %d", code)
	}
	if got := state(token2); got != "drain" {
		t.Errorf("after reload: state %q, want drain kept", got)
	}
}
