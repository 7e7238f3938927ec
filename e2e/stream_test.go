package e2e

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
)

// A 100 MiB upload echoed back by Tomcat streams through sluice both ways at
// once: sluice's peak resident memory must stay far below the body size.
func TestBigUploadStreamsWithBoundedMemory(t *testing.T) {
	const size = 100 << 20
	const maxPeakRSS = 80 << 20
	for _, u := range upstreamsForBodies {
		t.Run(u.name, func(t *testing.T) {
			s := startSluice(t, u.cfg().yaml())
			for _, client := range []string{"h1", "h2c"} {
				t.Run(client+"_client", func(t *testing.T) {
					c := h1Client()
					if client == "h2c" {
						c = h2cClient()
					}
					sent := sha256.New()
					src := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{1}), size), sent)
					req, err := http.NewRequest(http.MethodPost, s.URL+"/echo", src)
					if err != nil {
						t.Fatal(err)
					}
					req.ContentLength = size
					req.Header.Set("Content-Type", "application/octet-stream")
					resp, err := c.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					got := sha256.New()
					n, err := io.Copy(got, resp.Body)
					if err != nil || n != size {
						t.Fatalf("echoed %d bytes, err %v; want %d", n, err, size)
					}
					if string(got.Sum(nil)) != string(sent.Sum(nil)) {
						t.Fatal("echoed body differs from the upload")
					}
				})
			}
			peak := peakRSS(t, s.cmd.Process.Pid)
			t.Logf("sluice peak RSS %d MiB after 2 x 100 MiB echoed", peak>>20)
			if peak > maxPeakRSS {
				t.Errorf("sluice peak RSS %d MiB: bodies are being held in memory", peak>>20)
			}
		})
	}
}

// peakRSS reads VmHWM, the peak resident set size, of a process.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
