package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// stockShutdown matches the deploy/tomcat settings that make a stopping
// Tomcat close its connectors before its webapps.
var stockShutdown = regexp.MustCompile(`\s+(gracefulStopAwaitMillis="\d+"|bindOnInit="false")`)

// startStockShutdownTomcat is a private Tomcat with Tomcat's stock
// shutdown settings: without gracefulStopAwaitMillis it stops its webapps
// while its connectors still take requests, answering 404 on open h2c
// connections, and without bindOnInit="false" it keeps accepting
// connections it will never serve.
func startStockShutdownTomcat(t *testing.T) *privateTomcat {
	t.Helper()
	pt := startPrivateTomcat(t)
	if err := pt.stopGraceful(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(pt.base, "conf", "server.xml")
	xml, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	stock := stockShutdown.ReplaceAll(xml, nil)
	if n := len(stockShutdown.FindAll(xml, -1)); n != 4 {
		t.Fatalf("server.xml: %d deploy/tomcat shutdown settings found, want gracefulStopAwaitMillis and 3 bindOnInit", n)
	}
	if err := os.WriteFile(file, stock, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pt.start(); err != nil {
		t.Fatal(err)
	}
	return pt
}

// TestStockTomcatGracefulRestartNoFailures: a Tomcat with its stock
// shutdown settings answers 404 while its webapps stop; sluice sends those
// requests to the other server (draining retries), so no client sees one.
func TestStockTomcatGracefulRestartNoFailures(t *testing.T) {
	// Instant requests only: the more requests per second, the more
	// land in the moment between the webapp stopping and the connector.
	restartWithoutFailures(t, startStockShutdownTomcat(t), func(int, int) (string, string) { return "/", helloBody })
}
