package upstream

import (
	"testing"
	"time"
)

// TestSetDefaults: the zero values that mean "the default" take
// DefaultConfig's, and those with a meaning of their own (off, none, no
// limit) stay zero.
func TestSetDefaults(t *testing.T) {
	var c Config
	c.setDefaults()
	want := DefaultConfig()
	// Zero keeps its meaning in these.
	want.H2C.PingInterval = 0
	want.H2C.MaxBodyStreamsPerConn = 0
	want.Queue.MaxPending = 0
	want.IdleTimeout = 0
	want.Retries = 0
	want.RetryBodyLimit = 0
	want.Health.SlowStart = 0
	want.Passive.ConsecutiveFailures = 0
	want.Passive.MaxEjectedPercent = 0
	if c.Name != "" || c.Servers != nil || c.IdempotentMethods != nil {
		t.Fatalf("setDefaults set %+v", c)
	}
	c.Servers, c.IdempotentMethods = want.Servers, want.IdempotentMethods
	if c.H2C != want.H2C || c.H1 != want.H1 || c.Queue != want.Queue || c.Health != want.Health || c.Passive != want.Passive ||
		c.Protocol != want.Protocol || c.Balance != want.Balance || c.ProbeInterval != want.ProbeInterval ||
		c.ConnectTimeout != want.ConnectTimeout || c.ResponseHeaderTimeout != want.ResponseHeaderTimeout ||
		c.IdleTimeout != 0 || c.TotalTimeout != 0 || c.DrainTimeout != want.DrainTimeout || c.Discovery != want.Discovery {
		t.Errorf("setDefaults gave\n%+v\nwant\n%+v", c, want)
	}

	// Set values are kept; a max_eject_for below eject_for is raised to it.
	c = Config{Protocol: H1, H2C: H2CConfig{PingTimeout: time.Second}, Passive: PassiveConfig{EjectFor: 10 * time.Minute}}
	c.setDefaults()
	if c.Protocol != H1 || c.H2C.PingTimeout != time.Second || c.Passive.MaxEjectFor != 10*time.Minute {
		t.Errorf("setDefaults overrode set values: %+v", c)
	}
}
