package e2e

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Clients speaking h2c with prior knowledge are served on the same
// listener as HTTP/1.1.
func TestH2PriorKnowledgeSharesListenerWithHTTP1(t *testing.T) {
	s := startSluice(t, upstream{Protocol: "h2c", Ports: []int{tc.A, tc.B}}.yaml())

	t.Run("go_client", func(t *testing.T) {
		r := get(t, h2cClient(), s.URL+"/")
		if r.status != 200 || r.body != helloBody || r.proto != "HTTP/2.0" {
			t.Fatalf("h2c GET / = %d %s %q, want 200 HTTP/2.0 %q", r.status, r.proto, r.body, helloBody)
		}
	})

	t.Run("h2load", func(t *testing.T) {
		h2load, err := exec.LookPath("h2load")
		if err != nil {
			t.Fatal("h2load not found: install nghttp2-client (`make deps`)")
		}
		const total = 20000
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, h2load, "-n", strconv.Itoa(total), "-c", "50", "-m", "10", s.URL+"/").CombinedOutput()
		summary := h2loadSummary(string(out))
		t.Logf("h2load -n %d -c 50 -m 10:\n%s", total, summary)
		if err != nil {
			t.Fatalf("h2load: %v\n%s", err, tail(string(out), 3000))
		}
		m := regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`).FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("no requests: line in h2load output:\n%s", tail(string(out), 3000))
		}
		succeeded, _ := strconv.Atoi(m[4])
		failed, _ := strconv.Atoi(m[5])
		errored, _ := strconv.Atoi(m[6])
		timeout, _ := strconv.Atoi(m[7])
		if succeeded != total || failed != 0 || errored != 0 || timeout != 0 {
			t.Fatalf("h2load: %d succeeded, %d failed, %d errored, %d timeout; want %d, 0, 0, 0", succeeded, failed, errored, timeout, total)
		}
		if c := regexp.MustCompile(`status codes: (\d+) 2xx`).FindStringSubmatch(string(out)); c == nil || c[1] != strconv.Itoa(total) {
			t.Fatalf("h2load: not all %d responses were 2xx:\n%s", total, summary)
		}
	})
}

func h2loadSummary(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "finished in") || strings.HasPrefix(l, "requests:") || strings.HasPrefix(l, "status codes:") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
