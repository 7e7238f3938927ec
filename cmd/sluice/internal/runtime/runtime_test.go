package runtime

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
	"github.com/sluice-gw/sluice/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/upstream"
)

// serve runs a Runtime for cfg until ctx is done, then shuts it down, as
// main does without its signals.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, load func() (*config.Config, error)) error {
	r, err := New(cfg, Options{Logger: log, Load: load})
	if err != nil {
		return err
	}
	err = r.Run(ctx)
	r.Shutdown(context.Background())
	return err
}

// newRuntime opens a Runtime in front of an origin, on free ports.
func newRuntime(t *testing.T) (*Runtime, *config.Config) {
	t.Helper()
	cfg, err := config.Quick(freeAddr(t), freeAddr(t), upstream.H2C, []string{echoOrigin(t)}, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r, cfg
}

// listenable reports whether addr can be bound, i.e. nothing holds it.
func listenable(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// TestShutdownWithoutRun: a Runtime that never served releases its
// listeners on Shutdown, and is done: Run and Shutdown again say so.
func TestShutdownWithoutRun(t *testing.T) {
	r, cfg := newRuntime(t)
	if listenable(cfg.Listen) || listenable(cfg.Admin) {
		t.Fatal("New did not bind listen and admin")
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if !listenable(cfg.Listen) || !listenable(cfg.Admin) {
		t.Error("listen or admin still bound after Shutdown")
	}
	if err := r.Run(context.Background()); !errors.Is(err, errShutDown) {
		t.Errorf("Run after Shutdown = %v, want %v", err, errShutDown)
	}
	if err := r.Shutdown(context.Background()); !errors.Is(err, errShutDown) {
		t.Errorf("second Shutdown = %v, want %v", err, errShutDown)
	}
}

// TestShutdownEndsRun: Shutdown, not only Run's context, makes Run return,
// and every listener is released once Shutdown has returned.
func TestShutdownEndsRun(t *testing.T) {
	r, cfg := newRuntime(t)
	ran := make(chan error, 1)
	go func() { ran <- r.Run(context.Background()) }()
	gatewaytest.WaitFor(t, 5*time.Second, "the admin listener to serve", func() bool {
		code, _, err := adminGet(cfg.Admin, "/readyz")
		return err == nil && code == http.StatusOK
	})
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-ran; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if !listenable(cfg.Listen) || !listenable(cfg.Admin) {
		t.Error("listen or admin still bound after Shutdown")
	}
}

// TestNewClosesWhatItOpened: when a later listener cannot be opened, New
// fails naming it and releases the ones it had opened.
func TestNewClosesWhatItOpened(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg, err := config.Quick(freeAddr(t), taken.Addr().String(), upstream.H2C, []string{echoOrigin(t)}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, Options{}); err == nil || !strings.HasPrefix(err.Error(), "admin listen "+cfg.Admin) {
		t.Fatalf("New = %v, want an admin listen error", err)
	}
	if !listenable(cfg.Listen) {
		t.Error("listen still bound after New failed")
	}
}
