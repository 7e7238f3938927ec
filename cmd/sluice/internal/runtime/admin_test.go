package runtime

import (
	"strings"
	"testing"
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
