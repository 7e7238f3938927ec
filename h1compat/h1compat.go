// Package h1compat is Sluice's HTTP/1.1 fallback for servers that do not
// speak h2c. Each connection carries one request at a time; the pool in
// upstream bounds their number, reuses idle ones most recently used first
// and closes them after the idle timeout. The connections themselves are
// Sluice's own (package h1compat/client); this package holds the keep-alive
// policy the pool applies to their answers. net/http's HTTP/1.1 transport
// is no longer used by Sluice: only h1compat/client's differential test
// drives it, as the reference the client is compared with.
package h1compat

import (
	"net/http"
	"strconv"
	"strings"
)

// KeepAliveSpent reports whether resp ends its connection's keep-alive:
// "Connection: close" (Tomcat's answer to its maxKeepAliveRequests-th
// request), or "Keep-Alive: max=N" with N <= 1, a server saying at most one
// more request may follow. A 101 hands the connection over and is not
// counted.
func KeepAliveSpent(resp *http.Response) bool {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return false
	}
	if resp.Close {
		return true
	}
	ka := resp.Header["Keep-Alive"]
	if len(ka) == 0 {
		return false
	}
	for rest := ka[0]; rest != ""; {
		var param string
		param, rest, _ = strings.Cut(rest, ",")
		name, value, ok := strings.Cut(param, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "max") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(value))
		return err == nil && n <= 1
	}
	return false
}
