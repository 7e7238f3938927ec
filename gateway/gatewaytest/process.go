package gatewaytest

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Start starts cmd, a child process the test needs (a server, Tomcat,
// Prometheus), named name in messages, and stops it when the test ends:
// SIGTERM, then SIGKILL if it has not exited within 10 s. If the test
// failed, it then logs output(), the child's output. exited closes once
// the child has exited.
func Start(t testing.TB, name string, cmd *exec.Cmd, output func() string) (exited <-chan struct{}) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, output())
		}
	})
	return done
}
