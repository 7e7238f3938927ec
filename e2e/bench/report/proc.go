package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clkTck is USER_HZ, the unit of utime/stime in /proc/PID/stat (100 on Linux).
const clkTck = 100

type procInfo struct {
	pid, ppid int
	ticks     int64 // utime + stime
	cticks    int64 // cutime + cstime: CPU of children it has reaped
	comm      string
}

// readStat parses /proc/PID/stat. comm may contain spaces and parentheses,
// so fields are counted from the last ')'.
func readStat(pid int) (procInfo, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procInfo{}, err
	}
	return parseStat(string(b))
}

func parseStat(s string) (procInfo, error) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procInfo{}, fmt.Errorf("bad stat line")
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
	f := strings.Fields(s[end+1:])
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15,
	// cutime 16, cstime 17.
	if len(f) < 15 {
		return procInfo{}, fmt.Errorf("short stat line")
	}
	ppid, _ := strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	cut, _ := strconv.ParseInt(f[13], 10, 64)
	cst, _ := strconv.ParseInt(f[14], 10, 64)
	return procInfo{pid: pid, ppid: ppid, ticks: ut + st, cticks: cut + cst, comm: s[open+1 : end]}, nil
}

// statusKiB returns a "Vm...:  N kB" value from /proc/PID/status.
func statusKiB(pid int, key string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, key+":") {
			fs := strings.Fields(line[len(key)+1:])
			if len(fs) > 0 {
				return strconv.ParseInt(fs[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("%s not found for pid %d", key, pid)
}

// cmdProc prints "cpu_seconds<TAB>hwm_kib<TAB>rss_kib" summed over the PIDs.
// A PID that has gone away contributes nothing and is reported on stderr.
func cmdProc(args []string) error {
	var ticks, hwm, rss int64
	for _, a := range args {
		pid, err := strconv.Atoi(a)
		if err != nil {
			return fmt.Errorf("bad pid %q", a)
		}
		p, err := readStat(pid)
		if err != nil {
			fmt.Fprintf(os.Stderr, "report proc: pid %d: %v\n", pid, err)
			continue
		}
		ticks += p.ticks
		if v, err := statusKiB(pid, "VmHWM"); err == nil {
			hwm += v
		}
		if v, err := statusKiB(pid, "VmRSS"); err == nil {
			rss += v
		}
	}
	fmt.Printf("%.2f\t%d\t%d\n", float64(ticks)/clkTck, hwm, rss)
	return nil
}

func snapshot() map[int]procInfo {
	out := map[int]procInfo{}
	ents, _ := filepath.Glob("/proc/[0-9]*")
	for _, e := range ents {
		pid, err := strconv.Atoi(filepath.Base(e))
		if err != nil {
			continue
		}
		if p, err := readStat(pid); err == nil {
			out[pid] = p
		}
	}
	return out
}

// cmdSnap writes every process's pid, ppid, cpu ticks and name to a file.
func cmdSnap(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: report snap FILE")
	}
	var b strings.Builder
	for _, p := range snapshot() {
		fmt.Fprintf(&b, "%d\t%d\t%d\t%d\t%s\n", p.pid, p.ppid, p.ticks, p.cticks, strings.ReplaceAll(p.comm, "\t", " "))
	}
	return os.WriteFile(args[0], []byte(b.String()), 0o644)
}

func readSnap(path string) (map[int]procInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[int]procInfo{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.SplitN(sc.Text(), "\t", 5)
		if len(fs) < 5 {
			continue
		}
		pid, _ := strconv.Atoi(fs[0])
		ppid, _ := strconv.Atoi(fs[1])
		t, _ := strconv.ParseInt(fs[2], 10, 64)
		ct, _ := strconv.ParseInt(fs[3], 10, 64)
		out[pid] = procInfo{pid: pid, ppid: ppid, ticks: t, cticks: ct, comm: fs[4]}
	}
	return out, sc.Err()
}

// cmdOther prints the CPU seconds that processes outside the benchmark used
// between two snapshots: everything except the given PIDs, their
// descendants, and kernel threads (which carry the benchmark's own loopback
// softirq work). A process that exited between the snapshots is seen through
// its parent's cutime/cstime once the parent has reaped it (for a compiler
// run by `go test`, say); that counts its whole life, not just the window,
// so the figure is a noise indicator, not an exact account.
// The second line lists the top consumers, for the notes.
func cmdOther(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: report other BEFORE AFTER [EXCLUDED_PID...]")
	}
	before, err := readSnap(args[0])
	if err != nil {
		return err
	}
	after, err := readSnap(args[1])
	if err != nil {
		return err
	}
	excluded := map[int]bool{}
	for _, a := range args[2:] {
		if pid, err := strconv.Atoi(a); err == nil {
			excluded[pid] = true
		}
	}
	isOurs := func(pid int) bool {
		for i := 0; i < 64 && pid > 1; i++ {
			if excluded[pid] || pid == 2 {
				return true
			}
			p, ok := after[pid]
			if !ok {
				return false
			}
			if p.ppid == 2 { // kernel thread
				return true
			}
			pid = p.ppid
		}
		return false
	}
	var total int64
	type use struct {
		comm  string
		ticks int64
	}
	var top []use
	for pid, a := range after {
		if isOurs(pid) {
			continue
		}
		// Children reaped during the window count too, except PID 1's (it
		// reaps orphans, including some of ours).
		d := a.ticks
		if pid != 1 {
			d += a.cticks
		}
		if b, ok := before[pid]; ok && b.comm == a.comm {
			d -= b.ticks
			if pid != 1 {
				d -= b.cticks
			}
		}
		if d > 0 {
			total += d
			top = append(top, use{fmt.Sprintf("%s[%d]", a.comm, pid), d})
		}
	}
	for i := 0; i < len(top); i++ {
		for j := i + 1; j < len(top); j++ {
			if top[j].ticks > top[i].ticks {
				top[i], top[j] = top[j], top[i]
			}
		}
	}
	var names []string
	for i := 0; i < len(top) && i < 3; i++ {
		names = append(names, fmt.Sprintf("%s=%.1fs", top[i].comm, float64(top[i].ticks)/clkTck))
	}
	fmt.Printf("%.2f\n%s\n", float64(total)/clkTck, strings.Join(names, ","))
	return nil
}
