package gatewaytest

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"
)

// UpgradeOrigin serves, as Origin does, a handler that answers an
// "Upgrade: echo" request with 101 Switching Protocols, adding the extra
// header lines ("Name: value"), and then echoes bytes until the client
// leaves; other requests get their protocol (r.Proto) as the body. It
// returns the origin's host:port and the count of upgraded connections
// still open.
func UpgradeOrigin(t testing.TB, extra ...string) (addr string, open *atomic.Int64) {
	t.Helper()
	head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n"
	for _, h := range extra {
		head += h + "\r\n"
	}
	head += "\r\n"
	open = new(atomic.Int64)
	addr = Origin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			io.WriteString(w, r.Proto)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		open.Add(1)
		defer open.Add(-1)
		defer conn.Close()
		brw.WriteString(head)
		brw.Flush()
		io.Copy(conn, brw)
	}))
	return addr, open
}
