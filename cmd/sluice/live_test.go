package main

import "testing"

// limits.h2_max_resets_per_second 0 means off, which the gateway spells as
// a negative limit (its zero is the default).
func TestResetLimitMapping(t *testing.T) {
	for in, want := range map[int]int{0: -1, 1: 1, 100: 100, 5000: 5000} {
		if got := resetLimit(in); got != want {
			t.Errorf("resetLimit(%d) = %d, want %d", in, got, want)
		}
	}
}
