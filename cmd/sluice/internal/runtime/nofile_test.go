package runtime

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// The child's descriptor limit: a few dozen connections exhaust it.
const childNofile = 64

// envNofileChild names the config file of TestOutOfDescriptorsChild, which
// runs only when the parent test sets it.
const envNofileChild = "SLUICE_TEST_NOFILE_CHILD"

// TestOutOfDescriptorsChild is the gateway process of
// TestListenersSurviveRunningOutOfDescriptors: serve with RLIMIT_NOFILE
// lowered, until SIGTERM.
func TestOutOfDescriptorsChild(t *testing.T) {
	path := os.Getenv(envNofileChild)
	if path == "" {
		t.Skip("runs as the child of TestListenersSurviveRunningOutOfDescriptors")
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	lim := syscall.Rlimit{Cur: childNofile, Max: childNofile}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)), nil); err != nil {
		t.Fatal(err)
	}
}

// TestListenersSurviveRunningOutOfDescriptors: a gateway out of file
// descriptors (EMFILE) says so in /readyz and the listener metrics, and
// accepts again on listen and tls_listen once descriptors are freed. The
// TLS listener used to stop accepting for good at the first EMFILE while
// /readyz stayed 200.
func TestListenersSurviveRunningOutOfDescriptors(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	origin := gatewaytest.Origin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	dir := t.TempDir()
	cert := gatewaytest.WriteCert(t, dir, "s", "localhost")
	listen, tlsListen, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	file := filepath.Join(dir, "sluice.yaml")
	// A long read_header_timeout, so that idle connections keep their
	// descriptors until the test closes them.
	yaml := fmt.Sprintf(`listen: %q
tls_listen: %q
tls_certs: [{cert: %q, key: %q}]
admin: %q
shutdown_grace: 1s
limits: {read_header_timeout: 1m}
backends:
  b: {protocol: h2c, servers: [{address: %q}], h2c: {conns_per_server: 1}}
routes:
  - {backend: b}
`, listen, tlsListen, cert.CertFile, cert.KeyFile, admin, origin)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr gatewaytest.Buffer
	child := exec.Command(os.Args[0], "-test.run=^TestOutOfDescriptorsChild$", "-test.v")
	child.Env = append(os.Environ(), envNofileChild+"="+file)
	child.Stdout, child.Stderr = &stderr, &stderr
	gatewaytest.Start(t, "child", child, stderr.String)
	gatewaytest.WaitFor(t, 10*time.Second, "the child to serve", func() bool {
		code, _, err := adminGet(admin, "/healthz")
		return err == nil && code == 200
	})
	get := func(url string) (int, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		}}
		resp, err := c.Get(url)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get("http://" + listen + "/"); code != 200 {
		t.Fatalf("warm-up request: %d %v", code, err)
	}

	// One admin connection opened now and kept: once descriptors run out
	// the admin listener cannot accept a new one either.
	ac := dialRaw(t, admin)
	adminAsk := func(path string) (int, string) {
		ac.send(t, path)
		resp, body := ac.read(t)
		return resp.StatusCode, body
	}
	if code, body := adminAsk("/readyz"); code != 200 {
		t.Fatalf("/readyz before: %d %q", code, body)
	}

	// Exhaust the child's descriptors with idle connections to listen,
	// then queue one on tls_listen: both listeners now fail to accept.
	var held []net.Conn
	for range 2 * childNofile {
		c, err := net.Dial("tcp", listen)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	var body string
	gatewaytest.WaitFor(t, 15*time.Second, "/readyz to report listen down", func() bool {
		_, body = adminAsk("/readyz")
		return strings.Contains(body, "listener listen: accept failing")
	})
	// A descriptor can still come free after that (the warm-up
	// connection's close arriving late), and tls_listen may take it while
	// listen backs off: queue TLS connections until one is refused too.
	gatewaytest.WaitFor(t, 15*time.Second, "/readyz to report both listeners down", func() bool {
		var code int
		code, body = adminAsk("/readyz")
		if code == http.StatusServiceUnavailable &&
			strings.Contains(body, "listener listen: accept failing") && strings.Contains(body, "listener tls_listen: accept failing") {
			return true
		}
		if !strings.Contains(body, "listener tls_listen: accept failing") && len(held) < 3*childNofile {
			tc, err := net.Dial("tcp", tlsListen)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, tc)
		}
		return false
	})
	if !strings.Contains(body, "too many open files") {
		t.Errorf("/readyz %q does not name the error", body)
	}
	t.Logf("out of descriptors, /readyz: %s", strings.TrimSpace(body))
	_, metrics := adminAsk("/metrics")
	for _, l := range []string{"listen", "tls_listen"} {
		if v := metricValue(metrics, `sluice_listener_up{listener="`+l+`"}`); v != 0 {
			t.Errorf("sluice_listener_up{listener=%q} = %v, want 0", l, v)
		}
		if v := metricValue(metrics, `sluice_listener_accept_errors_total{listener="`+l+`",reason="emfile"}`); v < 1 {
			t.Errorf("sluice_listener_accept_errors_total{listener=%q,reason=emfile} = %v, want > 0", l, v)
		}
	}

	// Free the descriptors: both listeners accept again.
	for _, c := range held {
		c.Close()
	}
	gatewaytest.WaitFor(t, 15*time.Second, "/readyz to turn 200 again", func() bool {
		code, _ := adminAsk("/readyz")
		return code == 200
	})
	_, metrics = adminAsk("/metrics")
	for _, l := range []string{"listen", "tls_listen"} {
		if v := metricValue(metrics, `sluice_listener_up{listener="`+l+`"}`); v != 1 {
			t.Errorf("after freeing: sluice_listener_up{listener=%q} = %v, want 1", l, v)
		}
	}
	for _, url := range []string{"http://" + listen + "/", "https://" + tlsListen + "/"} {
		if code, err := get(url); code != 200 {
			t.Errorf("%s after freeing descriptors: %d %v", url, code, err)
		}
	}
}

// metricValue finds series in Prometheus text, or -1.
func metricValue(text, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return -1
	}
	return v
}
