package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestStatsReport(t *testing.T) {
	a, b := newStats(), newStats()
	for i := 1; i <= 4; i++ {
		a.add(200, nil, time.Duration(i)*time.Millisecond)
	}
	b.add(502, nil, time.Millisecond)
	b.add(0, errors.New("boom"), time.Millisecond)
	b.add(0, errors.New("boom"), time.Millisecond)
	a.merge(b)
	got := a.report(2 * time.Second)
	for _, want := range []string{
		"requests/s: 2.00\n", "completed: 4\n", "failed: 3\n",
		"p50_ms: 2.000\n", "p99_ms: 4.000\n", "status: 200=4 502=1\n", "error: 2 boom\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}
