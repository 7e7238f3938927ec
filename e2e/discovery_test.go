package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/upstream/dnsclient"
)

// DNS discovery against a real DNS server: Debian's dnsmasq on a loopback
// port, serving A records from a hosts file (reread on SIGHUP) and SRV
// records, for three private Tomcats bound to 127.0.0.2, 127.0.0.3 and
// 127.0.0.4 on the same ports.

const discoveryName = "tomcat.test"

// dnsmasq runs `dnsmasq --no-daemon` on a loopback port, answering for
// the test domain only, from its hosts file, with a TTL of 1s.
type dnsmasq struct {
	Addr  string // 127.0.0.1:port
	hosts string // the addn-hosts file
	cmd   *exec.Cmd
	out   *tailBuffer
	done  chan struct{}
}

func startDnsmasq(t *testing.T, srvHosts ...string) *dnsmasq {
	t.Helper()
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		bin = "/usr/sbin/dnsmasq"
		if _, err := os.Stat(bin); err != nil {
			t.Fatal("dnsmasq not installed: run `make deps` (Debian package dnsmasq-base)")
		}
	}
	dir := t.TempDir()
	d := &dnsmasq{Addr: addr(mustFreePort(t)), hosts: filepath.Join(dir, "hosts"), out: &tailBuffer{max: 16 << 10}, done: make(chan struct{})}
	if err := os.WriteFile(d.hosts, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Started as root, dnsmasq would switch to its own user, which cannot
	// read the test's temporary directory: it keeps the current user.
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(d.Addr, ":")
	args := []string{"--no-daemon", "--conf-file=/dev/null", "--port=" + port, "--listen-address=127.0.0.1", "--bind-interfaces",
		"--no-resolv", "--no-hosts", "--addn-hosts=" + d.hosts, "--local=/test/", "--local-ttl=1",
		"--pid-file=" + filepath.Join(dir, "dnsmasq.pid"), "--user=" + u.Username, "--log-facility=-"}
	for _, s := range srvHosts {
		args = append(args, "--srv-host="+s)
	}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("dnsmasq: %v", err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("dnsmasq %s output:\n%s", strings.Join(args, " "), d.out.String())
		}
	})
	// SIGHUP before dnsmasq handles it would kill it: wait for answers.
	c := &dnsclient.Client{Servers: []string{d.Addr}, Timeout: time.Second}
	gatewaytest.WaitFor(t, 10*time.Second, "dnsmasq to answer", func() bool {
		_, err := c.LookupHost(context.Background(), discoveryName)
		return err == nil || errors.Is(err, dnsclient.ErrNotFound)
	})
	t.Logf("dnsmasq on %s", d.Addr)
	return d
}

func (d *dnsmasq) stop() {
	d.cmd.Process.Kill()
	<-d.done
}

// setHosts rewrites the hosts file so that tomcat.test, and tN.tomcat.test
// for 127.0.0.N, resolve to ips, sends SIGHUP and waits until dnsmasq
// answers with them.
func (d *dnsmasq) setHosts(t *testing.T, ips ...string) {
	t.Helper()
	var b strings.Builder
	for _, ip := range ips {
		fmt.Fprintf(&b, "%s %s t%s.%s\n", ip, discoveryName, ip[strings.LastIndexByte(ip, '.')+1:], discoveryName)
	}
	if err := os.WriteFile(d.hosts, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	c := &dnsclient.Client{Servers: []string{d.Addr}, Timeout: time.Second}
	want := slices.Sorted(slices.Values(ips))
	gatewaytest.WaitFor(t, 10*time.Second, fmt.Sprintf("dnsmasq to answer %v", ips), func() bool {
		ans, err := c.LookupHost(context.Background(), discoveryName)
		var got []string
		for _, e := range ans.Endpoints {
			got = append(got, e.Addr.String())
		}
		slices.Sort(got)
		return err == nil && slices.Equal(got, want)
	})
}

// startTomcatsOn starts one private Tomcat per address, all on the same
// three ports, in parallel, and stops them in t.Cleanup.
func startTomcatsOn(t *testing.T, addrs ...string) (portA, portB int) {
	t.Helper()
	ports := [3]int{mustFreePort(t), mustFreePort(t), mustFreePort(t)}
	began := time.Now()
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		tp := &tomcatProc{base: filepath.Join(t.TempDir(), "tomcat"), scripts: filepath.Join(repoRoot, "deploy", "tomcat"),
			env: []string{"TOMCAT_ADDRESS=" + a}, A: ports[0], B: ports[1], H1: ports[2]}
		t.Cleanup(func() {
			if t.Failed() {
				var b strings.Builder
				tp.dumpLog(&b, 30)
				t.Logf("Tomcat on %s:\n%s", a, b.String())
			}
			tp.stop()
		})
		wg.Go(func() {
			p := strconv.Itoa
			if err := tp.script(time.Minute, "setup.sh", tp.base, p(tp.A), p(tp.B), p(tp.H1)); err != nil {
				errs[i] = err
				return
			}
			errs[i] = tp.script(2*time.Minute, "start.sh", tp.base)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Tomcat on %s: %v", addrs[i], err)
		}
	}
	t.Logf("Tomcats on %v up in %v: h2c on ports %d and %d", addrs, time.Since(began).Round(time.Millisecond), ports[0], ports[1])
	return ports[0], ports[1]
}

// getDiscoveryStats is /stats.json, with its one backend's discovery.
func getDiscoveryStats(t *testing.T, admin string) statsNow {
	t.Helper()
	d := getStats(t, admin)
	if len(d.Backends) != 1 || d.Backends[0].Discovery == nil {
		t.Fatalf("stats.json has no discovering backend: %+v", d.Backends)
	}
	return d
}

// serversAre reports whether the backend's servers, draining ones
// included, are exactly want, each with a connection open, as Sluice
// sees it and as the Tomcats see it (ss: established connections to each
// wanted server, none to the others of all).
func serversAre(t *testing.T, admin string, all, want []string) bool {
	t.Helper()
	d := getDiscoveryStats(t, admin)
	var got []string
	for _, s := range d.Backends[0].Servers {
		if s.Connections == 0 || s.State != "up" {
			return false
		}
		got = append(got, s.Address)
	}
	slices.Sort(got)
	if !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		return false
	}
	for _, a := range all {
		ap := netip.MustParseAddrPort(a)
		n, err := ssCount("established", fmt.Sprintf("( dst %s and dport = :%d )", ap.Addr(), ap.Port()))
		if err != nil {
			t.Fatal(err)
		}
		if (n > 0) != slices.Contains(want, a) {
			return false
		}
	}
	return true
}

// TestDNSDiscovery: a backend that finds its Tomcats in DNS follows
// dnsmasq's answers at their TTL (1s, under a 30s interval) while 1,000
// keep-alive clients run: 2 servers, 3, 1, 2 again, without a failed
// request, the connections following. SRV records give addresses and
// ports. With the DNS server gone the servers stay.
func TestDNSDiscovery(t *testing.T) {
	portA, portB := startTomcatsOn(t, "127.0.0.2", "127.0.0.3", "127.0.0.4")
	srv := func(n, port int) string {
		return fmt.Sprintf("_http._tcp.%s,t%d.%s,%d,0,10", discoveryName, n, discoveryName, port)
	}
	dns := startDnsmasq(t, srv(2, portA), srv(3, portA), srv(4, portB))
	dns.setHosts(t, "127.0.0.2", "127.0.0.3")
	on := func(port int, hosts ...string) []string {
		var out []string
		for _, h := range hosts {
			out = append(out, fmt.Sprintf("%s:%d", h, port))
		}
		return out
	}
	all := on(portA, "127.0.0.2", "127.0.0.3", "127.0.0.4")

	t.Run("A records under load", func(t *testing.T) {
		s := startSluice(t, fmt.Sprintf(`backends:
  %s:
    protocol: h2c
    discovery: { dns: %s, port: %d, interval: 30s, resolver: %q }
routes:
  - { host: "*", path_prefix: "/", backend: %s }
`, backendName, discoveryName, portA, dns.Addr, backendName))
		done := make(chan *loadResult, 1)
		go func() {
			done <- runLoad(t, s.URL, loadSpec{Clients: 1000, Duration: 20 * time.Second, KeepAlive: true})
		}()
		steps := [][]string{
			{"127.0.0.2", "127.0.0.3"},
			{"127.0.0.2", "127.0.0.3", "127.0.0.4"},
			{"127.0.0.2"},
			{"127.0.0.2", "127.0.0.3"},
		}
		began := time.Now()
		for i, hosts := range steps {
			if i > 0 {
				dns.setHosts(t, hosts...)
			}
			changed := time.Now()
			// Within a few TTLs, far under the 30s interval.
			gatewaytest.WaitFor(t, 10*time.Second, fmt.Sprintf("servers %v with connections", hosts), func() bool {
				return serversAre(t, s.Admin, all, on(portA, hosts...))
			})
			t.Logf("%5.1fs: servers %v, connections followed in %v", time.Since(began).Seconds(), hosts,
				time.Since(changed).Round(10*time.Millisecond))
			time.Sleep(3 * time.Second)
		}
		res := <-done
		res.requireClean(t)

		labels := map[string]string{"backend": s.Backend}
		if n := requireMetric(t, s.Admin, "sluice_backend_servers", labels); n != 2 {
			t.Errorf("sluice_backend_servers = %v, want 2", n)
		}
		ok := requireMetric(t, s.Admin, "sluice_discovery_resolutions_total", map[string]string{"backend": s.Backend, "result": "ok"})
		if ok < 10 {
			t.Errorf("%v good resolutions in 20s at a TTL of 1s", ok)
		}
		samples, err := scrape(s.Admin)
		if err != nil {
			t.Fatal(err)
		}
		if _, n := sumMetric(samples, "sluice_upstream_connections", map[string]string{"server": all[2]}); n != 0 {
			t.Errorf("removed server %s still has %d sluice_upstream_connections series", all[2], n)
		}
	})

	t.Run("SRV records", func(t *testing.T) {
		dns.setHosts(t, "127.0.0.2", "127.0.0.3")
		s := startSluice(t, fmt.Sprintf(`backends:
  %s:
    protocol: h2c
    discovery: { dns: _http._tcp.%s, type: srv, interval: 30s, resolver: %q }
routes:
  - { host: "*", path_prefix: "/", backend: %s }
`, backendName, discoveryName, dns.Addr, backendName))
		// t4's record is on port B; t4 does not resolve yet.
		srvAll := append(on(portA, "127.0.0.2", "127.0.0.3"), on(portB, "127.0.0.4")...)
		gatewaytest.WaitFor(t, 10*time.Second, "the SRV targets that resolve", func() bool {
			return serversAre(t, s.Admin, srvAll, on(portA, "127.0.0.2", "127.0.0.3"))
		})
		done := make(chan *loadResult, 1)
		go func() {
			done <- runLoad(t, s.URL, loadSpec{Clients: 200, Duration: 8 * time.Second, KeepAlive: true})
		}()
		time.Sleep(2 * time.Second)
		dns.setHosts(t, "127.0.0.2", "127.0.0.4")
		gatewaytest.WaitFor(t, 10*time.Second, "t3 gone and t4 on its SRV port", func() bool {
			return serversAre(t, s.Admin, srvAll, append(on(portA, "127.0.0.2"), on(portB, "127.0.0.4")...))
		})
		(<-done).requireClean(t)

		// The DNS server gone: resolutions fail, are shown and
		// counted, and the servers stay.
		dns.stop()
		gatewaytest.WaitFor(t, 10*time.Second, "a failed resolution on the stats page", func() bool {
			return getDiscoveryStats(t, s.Admin).Backends[0].Discovery.Failures >= 2
		})
		d := getDiscoveryStats(t, s.Admin).Backends[0].Discovery
		t.Logf("discovery with dnsmasq stopped: %+v", *d)
		if d.Servers != 2 || d.LastError == "" {
			t.Errorf("discovery stats %+v", *d)
		}
		if n := requireMetric(t, s.Admin, "sluice_discovery_resolutions_total", map[string]string{"backend": s.Backend, "result": "error"}); n < 2 {
			t.Errorf("%v failed resolutions counted", n)
		}
		runLoad(t, s.URL, loadSpec{Clients: 100, Duration: 2 * time.Second, KeepAlive: true}).requireClean(t)
		// The stats page, rendered by Chromium, says so.
		browser, err := exec.LookPath("chromium")
		if err != nil {
			t.Fatal("chromium not installed: run `make deps` (Debian package chromium)")
		}
		dom, err := exec.Command(browser, append(chromiumFlags(t, 1100, 700, 3000), "--dump-dom", "http://"+s.Admin+"/")...).Output()
		if err != nil {
			t.Fatalf("chromium --dump-dom: %v", err)
		}
		line := regexp.MustCompile(`data-k="discovery">([^<]*)<span class="down">([^<]*)</span>`).FindStringSubmatch(string(dom))
		if line == nil || !strings.Contains(line[1], "_http._tcp."+discoveryName+": 2 servers") || !strings.Contains(line[2], "failed in a row") {
			t.Errorf("the stats page shows no failing discovery: %q", line)
		} else {
			t.Logf("stats page: %s%s", line[1], line[2])
		}
		if !serversAre(t, s.Admin, srvAll, append(on(portA, "127.0.0.2"), on(portB, "127.0.0.4")...)) {
			t.Error("servers changed with the DNS server gone")
		}
	})
}
