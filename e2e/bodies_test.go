package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// Bodies must pass through sluice byte for byte in both directions, over the
// h2c upstream and over the HTTP/1.1 fallback.

var upstreamsForBodies = []struct {
	name string
	cfg  func() upstream
}{
	{"h2c", func() upstream { return upstream{Protocol: "h2c", Ports: []int{tc.A, tc.B}} }},
	{"h1", func() upstream { return upstream{Protocol: "h1", Ports: []int{tc.H1}} }},
}

// POST /echo returns exactly what was sent.
func TestBodiesEchoedUnaltered(t *testing.T) {
	for _, u := range upstreamsForBodies {
		t.Run(u.name, func(t *testing.T) {
			s := startSluice(t, u.cfg().yaml())
			for _, size := range []int{0, 1 << 10, 10 << 20} {
				body := make([]byte, size)
				rand.Read(body)
				for _, client := range []string{"h1", "h2c"} {
					for _, unsized := range []bool{false, true} {
						if size == 0 && unsized {
							continue
						}
						c := h1Client()
						if client == "h2c" {
							c = h2cClient()
						}
						name := fmt.Sprintf("%s_client_%dB", client, size)
						var r io.Reader = bytes.NewReader(body)
						if unsized {
							// Hiding the length makes an HTTP/1.1 client send Transfer-Encoding: chunked.
							name += "_unsized"
							r = io.MultiReader(r)
						}
						t.Run(name, func(t *testing.T) { echoOnce(t, c, s.URL, body, r) })
					}
				}
			}
		})
	}
}

func echoOnce(t *testing.T, c *http.Client, base string, body []byte, r io.Reader) {
	req, err := http.NewRequest(http.MethodPost, base+"/echo", r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-sluice-e2e")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST /echo (%d bytes): %v", len(body), err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatalf("POST /echo (%d bytes): reading response after %d bytes: %v", len(body), n, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /echo (%d bytes): status %d", len(body), resp.StatusCode)
	}
	want := sha256.Sum256(body)
	if n != int64(len(body)) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("POST /echo: got %d bytes sha256 %x, sent %d bytes sha256 %x", n, h.Sum(nil), len(body), want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-sluice-e2e" {
		t.Errorf("echoed Content-Type = %q", ct)
	}
}

// 100 MiB streamed from Tomcat's /big arrives complete and unaltered.
func TestBigDownloadArrivesUnaltered(t *testing.T) {
	const size = 100 << 20
	for _, u := range upstreamsForBodies {
		t.Run(u.name, func(t *testing.T) {
			s := startSluice(t, u.cfg().yaml())
			start := time.Now()
			resp, err := h1Client().Get(s.URL + "/big?bytes=" + strconv.Itoa(size))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			switch cl := resp.Header.Get("Content-Length"); cl {
			case strconv.Itoa(size):
			case "":
				t.Log("no Content-Length on the response (Tomcat sent one)")
			default:
				t.Errorf("Content-Length %q, want %d", cl, size)
			}
			n, bad, err := countX(resp.Body)
			if err != nil {
				t.Fatalf("after %d bytes: %v", n, err)
			}
			if n != size || bad != 0 {
				t.Fatalf("got %d bytes (%d not 'x'), want %d", n, bad, size)
			}
			t.Logf("%d MiB in %v", size>>20, time.Since(start).Round(time.Millisecond))
		})
	}
}

func countX(r io.Reader) (n, bad int64, err error) {
	buf := make([]byte, 256<<10)
	for {
		k, err := r.Read(buf)
		for _, b := range buf[:k] {
			if b != 'x' {
				bad++
			}
		}
		n += int64(k)
		if err == io.EOF {
			return n, bad, nil
		}
		if err != nil {
			return n, bad, err
		}
	}
}
