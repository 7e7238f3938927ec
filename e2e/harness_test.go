// Package e2e runs the real sluice binary against a real Apache Tomcat.
//
// TestMain starts one Tomcat (deploy/tomcat/setup.sh + start.sh) for the whole
// package with three free loopback ports: A and B speak h2c, H1 is HTTP/1.1
// only. Each test starts its own sluice with startSluice and a config naming
// those ports; sluice listens on port 0 and the test reads the addresses
// it bound from its start-up log line. Everything listens on 127.0.0.1 only.
//
// The sluice binary comes from $E2E_SLUICE_BIN (set by `make e2e`); when unset it
// is built once with `go build`, and tests needing it are skipped only if that
// build fails. Tomcat failing to start fails the package: it is never skipped.
//
// File descriptors: 2,000 keep-alive clients need 2,000 fds here and as many
// in sluice. TestMain raises RLIMIT_NOFILE to the hard limit; an explicit
// Setrlimit makes children (sluice, Tomcat) inherit the raised limit too, and
// sluice, being a Go program, raises its own soft limit at start anyway.
//
// Leftovers: sluice children get Pdeathsig=SIGKILL and are killed at the end
// of TestMain; Tomcat runs under a watchdog (TOMCAT_WATCH_PID) that stops it
// within a second of this process dying, even on panic or SIGKILL.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const helloBody = "hello from tomcat\n"

// backendName is the backend every test config defines; metric assertions filter on it.
const backendName = "tomcat"

var (
	repoRoot string
	tc       *tomcatProc

	sluiceBin   string
	sluiceFatal error // E2E_SLUICE_BIN set but unusable: tests needing sluice fail

	procsMu sync.Mutex
	procs   = map[*exec.Cmd]chan struct{}{} // running sluice processes -> closed on exit
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	raiseNoFile()

	var err error
	repoRoot, err = findRepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "sluice-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	locateSluice(tmp)

	tc, err = startTomcat(filepath.Join(tmp, "tomcat"), "TOMCAT_EXAMPLES="+examplesDir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FATAL: cannot start Tomcat (the e2e suite needs it; run `make deps`): %v\n", err)
		return 1
	}
	defer tc.stop()
	defer killLeftoverSluices()

	code := m.Run()
	if code != 0 {
		tc.dumpLog(os.Stderr, 60)
	}
	return code
}

func raiseNoFile() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}

func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}

func locateSluice(tmp string) {
	if p := os.Getenv("E2E_SLUICE_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err == nil {
			var st os.FileInfo
			if st, err = os.Stat(abs); err == nil && st.Mode()&0o111 == 0 {
				err = errors.New("not executable")
			}
		}
		if err != nil {
			sluiceFatal = fmt.Errorf("E2E_SLUICE_BIN=%s: %v", p, err)
			return
		}
		sluiceBin = abs
		return
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	out := filepath.Join(tmp, "sluice")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", out, "./cmd/sluice")
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		sluiceFatal = fmt.Errorf("E2E_SLUICE_BIN is unset and `go build ./cmd/sluice` failed (%v): %s", err, tail(string(b), 1500))
		return
	}
	sluiceBin = out
}

func requireSluice(t testing.TB) {
	t.Helper()
	if sluiceFatal != nil {
		t.Fatal(sluiceFatal)
	}
}

// ---------------------------------------------------------------- ports

var (
	portsMu   sync.Mutex
	usedPorts = map[int]bool{}
)

// freePort returns a loopback port nobody listens on, never the same one
// twice in this process, for the programs that must be told a port rather
// than pick one: Tomcat (setup.sh writes its ports into server.xml, and
// the resilience tests restart it on the same ones), the embedded Tomcat
// and Prometheus. Sluice listens on port 0 instead (anyPort). It picks
// below the kernel's ephemeral range (32768-60999 here): a port from there
// can be taken as the source port of an outgoing connection, which load
// tests open by the thousand, between this check and the server's bind.
// 20000-32767 is above make bench's ports (19100-19169).
func freePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 200 {
		p := 20000 + rand.IntN(12768)
		if usedPorts[p] {
			continue
		}
		l, err := net.Listen("tcp", addr(p))
		if err != nil {
			continue
		}
		l.Close()
		usedPorts[p] = true
		return p, nil
	}
	return 0, errors.New("no free port found in 20000-32767")
}

func mustFreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// ---------------------------------------------------------------- Tomcat

type tomcatProc struct {
	base, scripts string
	env           []string // extra environment of setup.sh and start.sh
	A, B, H1      int      // A, B: h2c; H1: HTTP/1.1 only
}

func startTomcat(base string, env ...string) (*tomcatProc, error) {
	t := &tomcatProc{base: base, scripts: filepath.Join(repoRoot, "deploy", "tomcat"), env: env}
	var err error
	for _, p := range []*int{&t.A, &t.B, &t.H1} {
		if *p, err = freePort(); err != nil {
			return nil, err
		}
	}
	if err := t.script(time.Minute, "setup.sh", base, strconv.Itoa(t.A), strconv.Itoa(t.B), strconv.Itoa(t.H1)); err != nil {
		return nil, err
	}
	if err := t.script(2*time.Minute, "start.sh", base); err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

func (t *tomcatProc) script(timeout time.Duration, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(t.scripts, name)}, args...)...)
	cmd.Env = append(append(os.Environ(), t.env...), "TOMCAT_WATCH_PID="+strconv.Itoa(os.Getpid()))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", name, err, out)
	}
	return nil
}

func (t *tomcatProc) stop() {
	if err := t.script(time.Minute, "stop.sh", t.base); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
	}
}

func (t *tomcatProc) dumpLog(w io.Writer, lines int) {
	b, err := os.ReadFile(filepath.Join(t.base, "logs", "catalina.out"))
	if err != nil {
		return
	}
	fmt.Fprintf(w, "---- last %d lines of Tomcat's catalina.out ----\n%s\n", lines, lastLines(string(b), lines))
}

// ---------------------------------------------------------------- sluice

type sluiceProc struct {
	// The bound addresses (host:port) sluice logged at start: it listens
	// on port 0 and the kernel picks, so no port is chosen here and then
	// taken by someone else before sluice binds it.
	Listen string // the client-facing listener
	Admin  string // /metrics, /healthz, /readyz
	TLS    string // tls_listen, when the config has one
	URL    string // "http://" + Listen
	// Backend is the backend name in metrics: backendName, or "default"
	// in quick mode.
	Backend string
	// ConfigFile is the config sluice runs from ("" in quick mode); a test
	// may rewrite it and reload.
	ConfigFile string
	cmd        *exec.Cmd
	out        *tailBuffer
	exited     chan struct{}
}

// upstream describes the one backend ("tomcat") a test config routes "/" to.
type upstream struct {
	Protocol string // auto | h2c | h1
	Ports    []int
	H2Conns  int // h2c.conns_per_server, default 2
	H1Conns  int // h1.conns_per_server, default 64
}

func (u upstream) yaml() string {
	if u.H2Conns == 0 {
		u.H2Conns = 2
	}
	if u.H1Conns == 0 {
		u.H1Conns = 64
	}
	var b strings.Builder
	fmt.Fprintf(&b, "backends:\n  %s:\n    protocol: %s\n    balance: round_robin\n    servers:\n", backendName, u.Protocol)
	for _, p := range u.Ports {
		fmt.Fprintf(&b, "      - { address: %q, weight: 1 }\n", addr(p))
	}
	fmt.Fprintf(&b, "    h2c: { conns_per_server: %d, max_streams_per_conn: 100 }\n", u.H2Conns)
	fmt.Fprintf(&b, "    h1:  { conns_per_server: %d, idle_timeout: 90s }\n", u.H1Conns)
	b.WriteString("    queue: { max_pending: 10000, timeout: 5s }\n")
	b.WriteString("    timeouts: { connect: 2s, response_header: 30s }\n")
	fmt.Fprintf(&b, "routes:\n  - { host: \"*\", path_prefix: \"/\", backend: %s }\n", backendName)
	return b.String()
}

// anyPort is the address of every listener sluice opens in the tests: a
// loopback port the kernel picks, read back from sluice's log.
const anyPort = "127.0.0.1:0"

// listenersYAML sets listen and admin; a test config (yamlConfig below) must
// not set them. Rewritten configs keep it, so a reload sees them unchanged.
var listenersYAML = fmt.Sprintf("listen: %q\nadmin: %q\n", anyPort, anyPort)

// startSluice runs `sluice run --config FILE` with listenersYAML plus
// yamlConfig, waits for admin /readyz to answer 200, and stops the process
// in t.Cleanup (SIGTERM, then SIGKILL after 10 s). Its output is logged if
// the test failed.
func startSluice(t testing.TB, yamlConfig string) *sluiceProc {
	cfg := listenersYAML + yamlConfig
	file := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := launchSluice(t, []string{"run", "--config", file}, cfg)
	s.Backend, s.ConfigFile = backendName, file
	return s
}

// startProxy runs quick mode: `sluice proxy --listen ... --admin ... args...`.
func startProxy(t testing.TB, args ...string) *sluiceProc {
	a := append([]string{"proxy", "--listen", anyPort, "--admin", anyPort}, args...)
	s := launchSluice(t, a, strings.Join(a, " "))
	s.Backend = "default"
	return s
}

// launchSluice starts sluice with argv, reads the addresses it listens on
// from its start-up log line and waits until it is ready; cfg describes
// the run in logs.
func launchSluice(t testing.TB, argv []string, cfg string) *sluiceProc {
	t.Helper()
	requireSluice(t)
	s := &sluiceProc{
		out:    &tailBuffer{max: 1 << 20},
		exited: make(chan struct{}),
	}
	listening := &listeningLine{found: make(chan map[string]string, 1)}

	s.cmd = exec.Command(sluiceBin, argv...)
	s.cmd.Env = sluiceEnv()
	// One writer for both, so exec copies them through one pipe and lines
	// arrive whole and in order.
	out := io.MultiWriter(s.out, listening)
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start sluice: %v", err)
	}
	procsMu.Lock()
	procs[s.cmd] = s.exited
	procsMu.Unlock()
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
		procsMu.Lock()
		delete(procs, s.cmd)
		procsMu.Unlock()
	}()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("sluice config:\n%s\nsluice output (%s):\n%s", cfg, s.cmd.ProcessState, s.out.String())
		}
	})

	select {
	case addrs := <-listening.found:
		s.Listen, s.Admin, s.TLS = addrs["listen"], addrs["admin"], addrs["tls_listen"]
		s.URL = "http://" + s.Listen
	case <-s.exited:
		t.Fatalf("sluice exited during startup (%v)\nconfig:\n%s\noutput:\n%s", s.cmd.ProcessState, cfg, s.out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("sluice did not log %q within 30 s\nconfig:\n%s\noutput:\n%s", listeningMsg, cfg, s.out.String())
	}
	if err := s.waitReady(30 * time.Second); err != nil {
		t.Fatalf("sluice not ready: %v\nconfig:\n%s\noutput:\n%s", err, cfg, s.out.String())
	}
	return s
}

// listeningMsg is the message of sluice's start-up log line, which names
// the bound address of every listener: listen, tls_listen, http3 (UDP) and
// admin (metrics and the stats page).
const listeningMsg = "sluice listening"

// listeningAttr matches one address attribute of that line in slog's text
// format.
var listeningAttr = regexp.MustCompile(`\b(listen|tls_listen|http3|admin)=(\S+)`)

// listeningLine watches sluice's output for the start-up log line and sends
// its addresses, by attribute name, on found (once).
type listeningLine struct {
	found   chan map[string]string
	partial []byte // the line so far; only the one copying goroutine writes
	done    bool
}

func (l *listeningLine) Write(p []byte) (int, error) {
	if l.done {
		return len(p), nil
	}
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		if strings.Contains(line, `msg="`+listeningMsg+`"`) {
			addrs := map[string]string{}
			for _, m := range listeningAttr.FindAllStringSubmatch(line, -1) {
				addrs[m[1]] = m[2]
			}
			l.found <- addrs
			l.done, l.partial = true, nil
			break
		}
	}
	return len(p), nil
}

// sluiceEnv is this process's environment without SLUICE_* variables: sluice
// reads those as config overrides (and rejects unknown ones such as
// E2E_SLUICE_BIN), so a developer's shell must not change what a test runs.
// SLUICE_LOG_LEVEL is kept so sluice's logging can be turned up when debugging.
func sluiceEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SLUICE_") && !strings.HasPrefix(kv, "SLUICE_LOG_LEVEL=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (s *sluiceProc) waitReady(timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	last := "no answer yet"
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("sluice exited during startup: %v", s.cmd.ProcessState)
		default:
		}
		resp, err := c.Get("http://" + s.Admin + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if conn, err := net.DialTimeout("tcp", s.Listen, time.Second); err == nil {
					conn.Close()
					return nil
				} else {
					last = "readyz 200 but listener refuses: " + err.Error()
				}
			} else {
				last = "readyz answered " + resp.Status
			}
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond) // poll, keeping the last answer for the error
	}
	return fmt.Errorf("no 200 from http://%s/readyz within %v (last: %s)", s.Admin, timeout, last)
}

func (s *sluiceProc) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func killLeftoverSluices() {
	procsMu.Lock()
	left := make(map[*exec.Cmd]chan struct{}, len(procs))
	for c, ch := range procs {
		left[c] = ch
	}
	procsMu.Unlock()
	for c, ch := range left {
		_ = c.Process.Kill()
		<-ch
	}
}

// ---------------------------------------------------------------- metrics

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads admin /metrics in the Prometheus text format. It never calls
// t.Fatal, so samplers running in their own goroutine can use it.
func scrape(admin string) ([]sample, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Get("http://" + admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	var out []sample
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %v", line, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func parseSample(line string) (sample, error) {
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ \t")
	if i < 0 {
		return s, errors.New("no value")
	}
	s.name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for {
			line = strings.TrimLeft(line, " ,")
			if strings.HasPrefix(line, "}") {
				line = line[1:]
				break
			}
			eq := strings.IndexByte(line, '=')
			if eq < 0 || len(line) < eq+2 || line[eq+1] != '"' {
				return s, errors.New("bad label")
			}
			key := strings.TrimSpace(line[:eq])
			line = line[eq+2:]
			var val strings.Builder
			j := 0
			for ; j < len(line) && line[j] != '"'; j++ {
				if line[j] == '\\' && j+1 < len(line) {
					j++
					switch line[j] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(line[j])
					}
					continue
				}
				val.WriteByte(line[j])
			}
			if j == len(line) {
				return s, errors.New("unterminated label value")
			}
			s.labels[key] = val.String()
			line = line[j+1:]
		}
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return s, errors.New("no value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	s.value = v
	return s, err
}

// sumMetric adds up every sample of name whose labels include all of want,
// and reports how many samples matched (0: the series is not exported).
func sumMetric(samples []sample, name string, want map[string]string) (sum float64, n int) {
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for k, v := range want {
			if s.labels[k] != v {
				continue next
			}
		}
		sum += s.value
		n++
	}
	return sum, n
}

// scrapeMetric scrapes admin and sums name's series that match labels; n
// counts them.
func scrapeMetric(t testing.TB, admin, name string, labels map[string]string) (v float64, n int) {
	t.Helper()
	samples, err := scrape(admin)
	if err != nil {
		t.Fatalf("scrape %s: %v", admin, err)
	}
	return sumMetric(samples, name, labels)
}

// metric is the sum over matching series of name; 0 if none match. Use
// requireMetric when absence must fail rather than pass as 0.
func metric(t testing.TB, admin, name string, labels map[string]string) float64 {
	t.Helper()
	v, _ := scrapeMetric(t, admin, name, labels)
	return v
}

func requireMetric(t testing.TB, admin, name string, labels map[string]string) float64 {
	t.Helper()
	v, n := scrapeMetric(t, admin, name, labels)
	if n == 0 {
		t.Fatalf("metric %s%v is not exported by sluice (admin %s)", name, labels, admin)
	}
	return v
}

// metricPresent reports whether any series of name exists at all.
func metricPresent(t testing.TB, admin, name string) bool {
	t.Helper()
	_, n := scrapeMetric(t, admin, name, nil)
	return n > 0
}

// ---------------------------------------------------------------- sockets

// tomcatConns counts TCP sockets of a Tomcat port with ss (iproute2):
// established = Tomcat's side of live connections (sport = port);
// timeWait = TIME_WAIT sockets of that port on either side, since whichever
// end closes first keeps the TIME_WAIT, and both mean a connection was churned.
func tomcatConns(t testing.TB, port int) (established, timeWait int) {
	t.Helper()
	established, timeWait, err := tomcatConnsErr(port)
	if err != nil {
		t.Fatal(err)
	}
	return established, timeWait
}

// tomcatConnsErr is tomcatConns for goroutines that must not call t.Fatal.
func tomcatConnsErr(port int) (established, timeWait int, err error) {
	if established, err = ssCount("established", fmt.Sprintf("( sport = :%d )", port)); err != nil {
		return 0, 0, err
	}
	timeWait, err = ssCount("time-wait", fmt.Sprintf("( sport = :%d or dport = :%d )", port, port))
	return established, timeWait, err
}

func ssCount(state, filter string) (int, error) {
	out, err := exec.Command("ss", "-tanH", "state", state, filter).Output()
	if err != nil {
		return 0, fmt.Errorf("ss -tanH state %s %q: %v (is iproute2 installed? `make deps`)", state, filter, err)
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n, nil
}

// ---------------------------------------------------------------- HTTP

// h1Client speaks HTTP/1.1 only and ignores any proxy environment.
func h1Client() *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
}

// h2cClient speaks HTTP/2 with prior knowledge over cleartext, nothing else.
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: nil, Protocols: &p, DisableCompression: true}}
}

type reply struct {
	status int
	proto  string
	header http.Header
	body   string
}

func get(t testing.TB, c *http.Client, url string) reply {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return reply{resp.StatusCode, resp.Proto, resp.Header, string(b)}
}

// ---------------------------------------------------------------- misc

// tailBuffer keeps the first max/4 and the last max bytes written to it,
// so that a long log still shows how trouble started; safe for concurrent
// use.
type tailBuffer struct {
	mu      sync.Mutex
	head    []byte
	buf     bytes.Buffer
	max     int
	dropped int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if room := b.max/4 - len(b.head); room > 0 {
		k := min(room, len(p))
		b.head = append(b.head, p[:k]...)
		p = p[k:]
	}
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > b.max/4 {
		b.buf.Next(over)
		b.dropped += over
	}
	return n, nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped > 0 {
		return fmt.Sprintf("%s\n[... %d bytes dropped ...]\n%s", b.head, b.dropped, b.buf.String())
	}
	return string(b.head) + b.buf.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
