package upstream

import (
	"errors"
	"net/http"
	"testing"
)

// TestSlots: a backend's slots are its servers' in rotation, by the
// protocol each was found to speak.
func TestSlots(t *testing.T) {
	cfg := Config{
		Protocol: Auto,
		Servers:  []ServerConfig{{Address: "a:1"}, {Address: "b:1"}, {Address: "c:1"}},
		H2C:      H2CConfig{ConnsPerServer: 2, MaxStreamsPerConn: 50},
		H1:       H1Config{ConnsPerServer: 8},
	}
	b := newTestBackend(t, cfg)
	srv := b.Servers()
	installFake(t, srv[0], http.StatusOK, 1) // h2c
	srv[1].cur.Store(srv[1].newPool(H1, &b.cur().cfg))
	// srv[2]: its protocol not known yet, so not in rotation.
	if got, want := b.Slots(), 100+8; got != want {
		t.Errorf("Slots = %d, want %d", got, want)
	}
	installFake(t, srv[2], http.StatusOK, 1)
	if got, want := b.Slots(), 100+8+100; got != want {
		t.Errorf("Slots with the third server detected = %d, want %d", got, want)
	}
	srv[0].unreachable(errors.New("test: down"))
	if got, want := b.Slots(), 8+100; got != want {
		t.Errorf("Slots with a server down = %d, want %d", got, want)
	}
}
