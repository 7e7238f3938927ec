package h1compat

import (
	"net/http"
	"testing"
)

func TestKeepAliveSpent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		close  bool
		ka     string
		want   bool
	}{
		{"plain", 200, false, "", false},
		{"connection_close", 200, true, "", true},
		{"max_0", 200, false, "timeout=5, max=0", true},
		{"max_1", 200, false, "timeout=5, max=1", true},
		{"max_2", 200, false, "timeout=5, max=2", false},
		{"max_first_spaced", 200, false, " MAX = 1 ,timeout=5", true},
		{"timeout_only", 200, false, "timeout=20", false},
		{"bad_max", 200, false, "max=x", false},
		{"switching_protocols", 101, true, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.status, Close: tc.close, Header: http.Header{}}
			if tc.ka != "" {
				resp.Header.Set("Keep-Alive", tc.ka)
			}
			if got := KeepAliveSpent(resp); got != tc.want {
				t.Errorf("KeepAliveSpent(status %d, close %v, Keep-Alive %q) = %v, want %v", tc.status, tc.close, tc.ka, got, tc.want)
			}
		})
	}
}
