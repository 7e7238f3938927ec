package client

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/http2"
)

// leakLog collects OnWindowLeak calls.
type leakLog struct {
	mu    sync.Mutex
	calls []WindowLeak
}

func (l *leakLog) add(w WindowLeak) {
	l.mu.Lock()
	l.calls = append(l.calls, w)
	l.mu.Unlock()
}

func (l *leakLog) get() []WindowLeak {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]WindowLeak(nil), l.calls...)
}

func post(n int) *http.Request {
	req, _ := http.NewRequest("POST", "http://backend/upload", bytes.NewReader(make([]byte, n)))
	return req
}

// TestWindowLeak: a server that keeps the connection credit of request
// bodies on streams it has ended is reported once, after the grace, and
// the connection takes no new streams from the suspicion on; one that
// returns it, at once, in batches or late within the grace, or that keeps
// only the credit of streams still open, is not, and the connection stays
// in service.
func TestWindowLeak(t *testing.T) {
	// Three 8 KiB bodies (24 KiB, under half the 64 KiB window) and one
	// of 32 KiB: 56 KiB, over half only with the last.
	bodies := []int{8 << 10, 8 << 10, 8 << 10, 32 << 10}
	for _, tc := range []struct {
		name string
		// credit is what the server returns with WINDOW_UPDATE after
		// reading a body, given what it holds unreturned.
		credit func(held int) int
		// lateReturn: the server returns everything it held this long
		// after the last stream ended (0: never).
		lateReturn time.Duration
		// keepOpen: the bodies' streams stay open (no response).
		keepOpen bool
		want     bool
	}{
		{name: "returns each body", credit: func(held int) int { return held }},
		{name: "returns at half the window", credit: func(held int) int {
			if held >= 65535/2 {
				return held
			}
			return 0
		}},
		{name: "keeps all", credit: func(int) int { return 0 }, want: true},
		{name: "returns late within the grace", credit: func(int) int { return 0 }, lateReturn: windowLeakGrace / 2},
		{name: "keeps open streams' credit", credit: func(int) int { return 0 }, keepOpen: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var log leakLog
				c, f := start(t, Config{OnWindowLeak: log.add})
				held := 0
				var open []chan rtResult
				for _, n := range bodies {
					rt := goRoundTrip(c, post(n))
					id := f.headers().streamID
					f.readData(id, n)
					held += n
					if inc := tc.credit(held); inc > 0 {
						f.fr.WriteWindowUpdate(0, uint32(inc))
						held -= inc
					}
					if tc.keepOpen {
						open = append(open, rt)
						continue
					}
					f.writeHeaders(id, true, ":status", "200")
					if res := wait(t, rt); res.err != nil {
						t.Fatal(res.err)
					} else {
						res.resp.Body.Close()
					}
				}
				if tc.keepOpen {
					// A stream that ends, its credit returned, while
					// the others hold theirs: the check runs.
					rt := goRoundTrip(c, post(1000))
					id := f.headers().streamID
					f.readData(id, 1000)
					f.fr.WriteWindowUpdate(0, 1000)
					f.writeHeaders(id, true, ":status", "200")
					wait(t, rt).resp.Body.Close()
				}
				synctest.Wait()
				suspected := c.Available() == 0
				start := time.Now()
				if tc.lateReturn > 0 {
					time.Sleep(tc.lateReturn)
					f.fr.WriteWindowUpdate(0, uint32(held))
					held = 0
				}
				time.Sleep(windowLeakGrace - time.Since(start) - time.Millisecond)
				synctest.Wait()
				if got := log.get(); len(got) != 0 {
					t.Fatalf("OnWindowLeak before the grace ended: %+v", got)
				}
				time.Sleep(time.Hour)
				synctest.Wait()
				got := log.get()
				if !tc.want {
					if len(got) != 0 {
						t.Fatalf("OnWindowLeak called: %+v", got)
					}
					if suspected != (tc.lateReturn > 0) {
						t.Errorf("no new streams during the grace: %v, want %v", suspected, tc.lateReturn > 0)
					}
					if c.Available() == 0 {
						t.Fatal("connection out of service without a leak")
					}
					c.Close()
					for _, rt := range open {
						wait(t, rt)
					}
					return
				}
				want := WindowLeak{Leaked: 56 << 10, Granted: 65535, Window: 65535 - 56<<10}
				if len(got) != 1 || got[0] != want {
					t.Fatalf("OnWindowLeak calls %+v, want one %+v", got, want)
				}
				if !suspected || c.Available() != 0 {
					t.Fatalf("leaking connection takes new streams (during the grace: %v; after: %d)", !suspected, c.Available())
				}
			})
		})
	}
}

// TestWindowLeakTimerStopsWithConn: a connection closed during the grace
// reports nothing, and its timer does not outlive it.
func TestWindowLeakTimerStopsWithConn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log leakLog
		c, f := start(t, Config{OnWindowLeak: log.add})
		for _, n := range []int{8 << 10, 8 << 10, 8 << 10, 32 << 10} {
			rt := goRoundTrip(c, post(n))
			id := f.headers().streamID
			f.readData(id, n)
			f.writeHeaders(id, true, ":status", "200")
			wait(t, rt).resp.Body.Close()
		}
		synctest.Wait()
		c.mu.Lock()
		armed := c.leakTimer != nil
		c.mu.Unlock()
		if !armed {
			t.Fatal("no confirmation pending after the leak")
		}
		c.Close()
		<-c.Done()
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := log.get(); len(got) != 0 {
			t.Fatalf("OnWindowLeak after Close: %+v", got)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.leakTimer != nil {
			t.Fatal("leak timer kept after Close")
		}
	})
}

// TestWindowLeakNotOnGoServer: Go's HTTP/2 server returns the credit of
// bodies its handlers read, and of bodies they ignore; neither is taken
// for a leak, with the window it grants by default and with a small one.
func TestWindowLeakNotOnGoServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		read bool
	}{{"handler reads the body", true}, {"handler ignores the body", false}} {
		t.Run(tc.name, func(t *testing.T) {
			addr := newH2CServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.read {
					io.Copy(io.Discard, r.Body)
				}
				w.Write([]byte("ok"))
			}))
			var log leakLog
			c := dialTest(t, addr, Config{OnWindowLeak: log.add})
			for range 200 {
				resp, err := c.RoundTrip(post(8 << 10))
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			time.Sleep(windowLeakGrace + 50*time.Millisecond)
			if got := log.get(); len(got) != 0 {
				t.Fatalf("OnWindowLeak called: %+v", got)
			}
		})
	}
}

// TestWindowLeakPing: a suspected leak is settled by the ACK of the PING
// the client sends, without waiting for the grace: confirmed when the
// server still keeps the credit, cleared when a WINDOW_UPDATE came first.
func TestWindowLeakPing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		credit bool // the server returns the credit before its ACK
	}{{"kept", false}, {"returned before the ACK", true}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var log leakLog
				c, f := start(t, Config{OnWindowLeak: log.add})
				held := 0
				for _, n := range []int{8 << 10, 8 << 10, 8 << 10, 32 << 10} {
					rt := goRoundTrip(c, post(n))
					id := f.headers().streamID
					f.readData(id, n)
					held += n
					f.writeHeaders(id, true, ":status", "200")
					wait(t, rt).resp.Body.Close()
				}
				start := time.Now()
				p := f.next(isType(http2.FramePing))
				if p.ack || p.ping != leakPing {
					t.Fatalf("PING %+v, want the leak check's", p)
				}
				if c.Available() != 0 {
					t.Fatal("new streams taken while the leak is suspected")
				}
				if tc.credit {
					f.fr.WriteWindowUpdate(0, uint32(held))
				}
				f.fr.WritePing(true, p.ping)
				synctest.Wait()
				if time.Since(start) != 0 {
					t.Fatalf("settled after %v", time.Since(start))
				}
				got := log.get()
				if tc.credit {
					if len(got) != 0 || c.Available() == 0 {
						t.Fatalf("credit returned: OnWindowLeak %+v, Available %d", got, c.Available())
					}
				} else if len(got) != 1 || got[0].Leaked != int64(held) {
					t.Fatalf("OnWindowLeak %+v, want one of %d bytes", got, held)
				}
				// The timer is gone: nothing more later.
				time.Sleep(time.Hour)
				synctest.Wait()
				if n := len(log.get()); n != len(got) {
					t.Fatalf("OnWindowLeak called again after the ACK (%d calls)", n)
				}
			})
		})
	}
}
