package h2c

import (
	"testing"
	"testing/synctest"
	"time"
)

// The watcher times our PING from its write to the server's ACK, and
// ignores the server's own PINGs and our ACKs of them.
func TestWatchMeasuresPingRTT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ping := func(flags byte) []byte {
			return append([]byte{0, 0, 8, framePing, flags, 0, 0, 0, 0}, 1, 2, 3, 4, 5, 6, 7, 8)
		}
		var st ConnStats
		w := &settingsWatch{acked: make(chan struct{}), closed: make(chan struct{}), stats: &st}
		c := &watchedConn{w: w}
		var out []byte
		out = append(out, clientPreface[:24]...)
		out = append(out, 0, 0, 0, frameSettings, flagSettingsAck, 0, 0, 0, 0)
		out = append(out, ping(flagPingAck)...) // our ACK of a server PING
		c.scan(out)
		c.rd.scan(ping(0), w) // the server's PING
		if rtt, at := st.PingRTT(); rtt != 0 || !at.IsZero() {
			t.Fatalf("RTT %v at %v before any PING of ours", rtt, at)
		}
		// Our PING, split across writes after the SETTINGS ACK.
		p := ping(0)
		c.scan(p[:5])
		c.scan(p[5:])
		time.Sleep(3 * time.Millisecond)
		ack := ping(flagPingAck)
		c.rd.scan(ack[:4], w)
		c.rd.scan(ack[4:], w)
		if rtt, at := st.PingRTT(); rtt != 3*time.Millisecond || !at.Equal(time.Now()) {
			t.Errorf("RTT %v at %v, want 3ms now", rtt, at)
		}
		// A second ACK without a PING outstanding changes nothing.
		time.Sleep(time.Second)
		c.rd.scan(ping(flagPingAck), w)
		if rtt, _ := st.PingRTT(); rtt != 3*time.Millisecond {
			t.Errorf("unsolicited ACK changed the RTT to %v", rtt)
		}
	})
}
