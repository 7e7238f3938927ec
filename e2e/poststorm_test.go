package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestPostStorm: a thousand concurrent POSTs with bodies of 1, 8 and 40 KB,
// funnelled onto Sluice's four h2c connections to a Tomcat set up from
// deploy/tomcat, are all answered, and Tomcat lives through them.
//
// Tomcat gives a stream with a body a receive buffer of twice its
// initialWindowSize, and that window is its connection window too, given
// back only as its handlers read bodies. With the 1 MiB window shipped
// before, 200 such streams a connector ran its 512 MB heap out
// (OutOfMemoryError in seconds). With a small window, and bodies sent
// after their HEADERS as streams took credit, all of Tomcat's threads sat
// in handlers waiting for bodies that other streams' unread bytes held
// back, until its read timeout ("Timeout waiting to read data from
// client"): Sluice now sends a body held whole in memory with its HEADERS,
// once the connection's window holds all of it.
func TestPostStorm(t *testing.T) {
	requireSluice(t)
	tc := startPrivateTomcat(t)
	s := startSluice(t, upstream{Protocol: "h2c", Ports: []int{tc.A, tc.B}}.yaml())
	dir := t.TempDir()
	for _, size := range []int{1000, 8000, 40000} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			file := filepath.Join(dir, strconv.Itoa(size))
			if err := os.WriteFile(file, bytes.Repeat([]byte("b"), size), 0o644); err != nil {
				t.Fatal(err)
			}
			h2loadAll(t, 20000, "-c", "100", "-m", "10", "-d", file, s.URL+"/echo")
		})
	}
	pid, err := tc.pid()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("Tomcat (pid %d) is gone: %v", pid, err)
	}
	log, err := os.ReadFile(filepath.Join(tc.base, "logs", "catalina.out"))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"java.lang.OutOfMemoryError", "Timeout waiting to read data from client"} {
		if n := strings.Count(string(log), bad); n > 0 {
			t.Errorf("catalina.out: %q %d times", bad, n)
		}
	}
}
