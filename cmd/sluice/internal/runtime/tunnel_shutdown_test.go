package runtime

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// TestShutdownClosesTunnelsAfterGrace: http.Server.Shutdown does not see
// hijacked connections, so serve itself gives a WebSocket what is left of
// shutdown_grace, then closes it, and only then returns and closes the
// backends.
func TestShutdownClosesTunnelsAfterGrace(t *testing.T) {
	origin, _ := gatewaytest.UpgradeOrigin(t)
	const grace = 2 * time.Second
	r := startServe(t, origin, func(c *config.Config) { c.ShutdownGrace = grace })
	c := dialRaw(t, r.listen)
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(c.br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", res, err)
	}
	echo := func(msg string) error {
		if _, err := io.WriteString(c, msg); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		_, err := io.ReadFull(c.br, got)
		return err
	}
	if err := echo("before"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r.cancel()
	gatewaytest.WaitFor(t, 5*time.Second, "the listener to close", func() bool {
		code, _, _ := adminGet(r.admin, "/readyz")
		return code != http.StatusOK
	})
	if err := echo("during the grace period"); err != nil {
		t.Fatalf("tunnel cut %v into a %v grace period: %v", time.Since(start), grace, err)
	}
	if !c.closedByPeer(grace + 5*time.Second) {
		t.Fatal("tunnel still open after the grace period")
	}
	if d := time.Since(start); d < grace*9/10 {
		t.Errorf("tunnel cut after %v, before the %v grace period", d, grace)
	}
	if !r.returned(5 * time.Second) {
		t.Error("serve did not return after cutting the tunnel")
	}
}
