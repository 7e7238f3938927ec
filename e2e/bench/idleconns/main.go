// Command idleconns opens N client connections to a proxy, sends one request
// on each (HTTP/1.1 keep-alive, or h2c prior knowledge), reads the response,
// and then holds every connection open and idle. The benchmark measures the
// proxy's RSS before and while they are held.
//
//	idleconns -target 127.0.0.1:19121 -n 10000 [-proto h1|h2] [-src 127.0.0.2,127.0.0.3]
//
// Output on stdout, one line each:
//
//	ready open=N failed=M seconds=S      all dials and first requests are done
//	alive K/N                            on SIGTERM/SIGINT: connections still open, then exit
//
// With -hold D it also exits on its own after D (default 10m) so that it can
// never outlive a crashed benchmark driver for long.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func main() {
	target := flag.String("target", "127.0.0.1:8080", "proxy host:port")
	n := flag.Int("n", 10000, "connections to open")
	proto := flag.String("proto", "h1", "h1 (HTTP/1.1 keep-alive) or h2 (h2c prior knowledge)")
	srcList := flag.String("src", "", "comma-separated local IPs to dial from, round robin (for more than ~28k connections)")
	conc := flag.Int("concurrency", 200, "dials in flight at once")
	path := flag.String("path", "/", "request path")
	timeout := flag.Duration("timeout", 10*time.Second, "per-connection dial+request timeout")
	hold := flag.Duration("hold", 10*time.Minute, "exit on our own after this long")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("idleconns: ")

	if *proto != "h1" && *proto != "h2" {
		log.Fatalf("-proto must be h1 or h2")
	}
	raiseNofile(uint64(*n) + 1024)

	var dialers []*net.Dialer
	for _, s := range strings.Split(*srcList, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		ip := net.ParseIP(s)
		if ip == nil {
			log.Fatalf("bad -src address %q", s)
		}
		dialers = append(dialers, &net.Dialer{Timeout: *timeout, LocalAddr: &net.TCPAddr{IP: ip}})
	}
	if len(dialers) == 0 {
		dialers = []*net.Dialer{{Timeout: *timeout}}
	}

	conns := make([]net.Conn, *n)
	var failed atomic.Int64
	var firstErr sync.Once
	start := time.Now()
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				c, err := open(dialers[i%len(dialers)], *target, *proto, *path, *timeout)
				if err != nil {
					failed.Add(1)
					firstErr.Do(func() { log.Printf("first failure (conn %d): %v", i, err) })
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := 0; i < *n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	open := *n - int(failed.Load())
	fmt.Printf("ready open=%d failed=%d seconds=%.1f\n", open, failed.Load(), time.Since(start).Seconds())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case <-time.After(*hold):
		log.Printf("hold time %v is over", *hold)
	}

	// A connection the proxy closed reads EOF at once; a live idle one times out.
	alive := 0
	var buf [1]byte
	for _, c := range conns {
		if c == nil {
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		_, err := c.Read(buf[:])
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			alive++
		}
		_ = c.Close()
	}
	fmt.Printf("alive %d/%d\n", alive, open)
}

func open(d *net.Dialer, target, proto, path string, timeout time.Duration) (net.Conn, error) {
	c, err := d.Dial("tcp", target)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	if proto == "h1" {
		err = requestH1(c, target, path)
	} else {
		err = requestH2(c, target, path)
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

func requestH1(c net.Conn, host, path string) error {
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sluice-bench-idleconns\r\n\r\n", path, host); err != nil {
		return err
	}
	br := bufio.NewReaderSize(c, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if resp.Close {
		return errors.New("server closed the connection after the first response")
	}
	if br.Buffered() > 0 {
		return errors.New("unexpected bytes after the response")
	}
	return nil
}

// requestH2 speaks just enough HTTP/2: preface, SETTINGS, one GET on stream 1,
// acknowledging the server's SETTINGS and PINGs until that stream ends.
func requestH2(c net.Conn, host, path string) error {
	bw := bufio.NewWriterSize(c, 1024)
	if _, err := io.WriteString(bw, http2.ClientPreface); err != nil {
		return err
	}
	fr := http2.NewFramer(bw, bufio.NewReaderSize(c, 4096))
	if err := fr.WriteSettings(); err != nil {
		return err
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", host}, {":path", path}, {"user-agent", "sluice-bench-idleconns"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	status := ""
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == ":status" {
			status = f.Value
		}
	})
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					return err
				}
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				if err := fr.WritePing(true, f.Data); err != nil {
					return err
				}
			}
		case *http2.GoAwayFrame:
			return fmt.Errorf("GOAWAY %v", f.ErrCode)
		case *http2.RSTStreamFrame:
			return fmt.Errorf("RST_STREAM %v", f.ErrCode)
		case *http2.HeadersFrame:
			if _, err := dec.Write(f.HeaderBlockFragment()); err != nil {
				return err
			}
			if f.StreamEnded() {
				return h2done(bw, status)
			}
		case *http2.DataFrame:
			if f.StreamEnded() {
				return h2done(bw, status)
			}
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
}

func h2done(bw *bufio.Writer, status string) error {
	if err := bw.Flush(); err != nil {
		return err
	}
	if status != "200" {
		return fmt.Errorf("status %q", status)
	}
	return nil
}

func raiseNofile(want uint64) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return
	}
	if rl.Cur >= want {
		return
	}
	if rl.Max < want {
		nl := syscall.Rlimit{Cur: want, Max: want}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl) == nil {
			return
		}
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		log.Printf("cannot raise RLIMIT_NOFILE: %v", err)
	}
	if rl.Cur < want {
		log.Printf("RLIMIT_NOFILE is %d, below the %d needed", rl.Cur, want)
	}
}
