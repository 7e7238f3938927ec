package upstream

import (
	"net/http"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestActiveHealthTimers runs active health checks on synctest's clock: a
// check each interval, fall failures in a row take the server out, rise
// passes in a row bring it back and start its slow start then.
func TestActiveHealthTimers(t *testing.T) {
	const interval = time.Second
	const (
		ok   = http.StatusOK
		sick = http.StatusServiceUnavailable
	)
	tests := []struct {
		name       string
		fall, rise int
		expect     int   // ExpectStatus; zero: 200
		statuses   []int // the answer to check i, at i*interval
		down       []bool
	}{
		{"healthy stays in", 2, 2, 0, []int{ok, ok, ok}, []bool{false, false, false}},
		{"fall failures take it out", 2, 2, 0, []int{sick, sick, sick}, []bool{false, true, true}},
		{"a pass resets the failure streak", 2, 2, 0, []int{sick, ok, sick, ok}, []bool{false, false, false, false}},
		{"rise passes bring it back", 2, 2, 0, []int{sick, sick, ok, ok, ok}, []bool{false, true, true, false, false}},
		{"a failure resets the pass streak", 2, 2, 0, []int{sick, sick, ok, sick, ok, ok}, []bool{false, true, true, true, true, false}},
		{"fall 1, rise 3", 1, 3, 0, []int{sick, ok, ok, ok}, []bool{true, true, true, false}},
		{"another status than the expected one fails", 1, 1, http.StatusNoContent, []int{ok, http.StatusNoContent}, []bool{true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newTestBackend(t, Config{
					Protocol: H2C, Servers: []ServerConfig{{Address: "a:1"}},
					Health: HealthConfig{Enabled: true, Interval: interval, Timeout: interval, Fall: tt.fall, Rise: tt.rise, ExpectStatus: tt.expect},
				})
				s := b.Servers()[0]
				fc := installFake(t, s, tt.statuses[0], 10)
				start := time.Now()
				b.spawn(func() { b.healthLoop(b.ctx) })
				var down []bool
				var backAt time.Duration
				// Look half an interval after each check, and set the answer
				// to the next one then.
				time.Sleep(interval / 2)
				for i, status := range tt.statuses {
					if i > 0 {
						fc.setStatus(status)
						time.Sleep(interval)
					}
					synctest.Wait()
					down = append(down, s.unhealthy.Load())
					if since := s.healthySince.Load(); since != 0 && backAt == 0 {
						backAt = time.Duration(since - start.UnixNano())
					}
				}
				if !slices.Equal(down, tt.down) {
					t.Errorf("down after each check %v, want %v", down, tt.down)
				}
				// Slow start begins at the check that brought it back.
				wantBack := time.Duration(0)
				for i := 1; i < len(tt.down); i++ {
					if tt.down[i-1] && !tt.down[i] {
						wantBack = time.Duration(i) * interval
						break
					}
				}
				if backAt != wantBack {
					t.Errorf("back in rotation at %v, want %v (0: never)", backAt, wantBack)
				}
			})
		})
	}
}
