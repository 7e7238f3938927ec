package main

import (
	"strings"
	"testing"
)

func TestReadiness(t *testing.T) {
	tests := []struct {
		name      string
		listening bool
		backends  []backendState
		want      bool
		reason    string
	}{
		{"all good", true, []backendState{{"a", true}, {"b", true}}, true, ""},
		{"not listening", false, []backendState{{"a", true}}, false, "listeners"},
		{"one backend down", true, []backendState{{"a", true}, {"b", false}}, false, `backend "b"`},
		{"no backends", true, nil, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, why := readiness(tt.listening, tt.backends)
			if ok != tt.want {
				t.Fatalf("ready = %v, want %v (%v)", ok, tt.want, why)
			}
			if tt.reason != "" && !strings.Contains(strings.Join(why, ";"), tt.reason) {
				t.Errorf("reasons %v lack %q", why, tt.reason)
			}
		})
	}
}
