package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// browser is headless Chromium driven over the DevTools protocol through
// --remote-debugging-pipe: commands go to the child's fd 3 and answers come
// from its fd 4, each message JSON ended by a NUL byte. No port, no
// WebSocket. One page is opened and attached in flat mode, so commands for
// it carry its sessionId.
type browser struct {
	t       testing.TB
	cmd     *exec.Cmd
	in      *os.File // our end of the child's fd 3
	outF    *os.File // our end of the child's fd 4
	out     *bufio.Reader
	next    int
	session string
}

// cdpTimeout bounds one DevTools command.
const cdpTimeout = 20 * time.Second

// startBrowser starts Chromium with one blank page; it is killed in
// t.Cleanup.
func startBrowser(t testing.TB, width, height int) *browser {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not installed: run `make deps` (Debian package chromium)")
	}
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--remote-debugging-pipe", "--user-data-dir="+t.TempDir(), fmt.Sprintf("--window-size=%d,%d", width, height))
	cmd.ExtraFiles = []*os.File{cmdR, outW} // fd 3, fd 4
	stderr := &tailBuffer{max: 64 << 10}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	cmdR.Close()
	outW.Close()
	b := &browser{t: t, cmd: cmd, in: cmdW, outF: outR, out: bufio.NewReader(outR)}
	t.Cleanup(func() {
		cmdW.Close()
		cmd.Process.Kill()
		cmd.Wait()
		outR.Close()
		if t.Failed() {
			t.Logf("chromium stderr:\n%s", tail(stderr.String(), 3000))
		}
	})
	var target struct {
		TargetID string `json:"targetId"`
	}
	b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	b.session = attached.SessionID
	return b
}

// call sends one command (to the page when session is b.session, to the
// browser when "") and decodes its result into result, skipping events.
func (b *browser) call(session, method string, params any, result any) {
	b.t.Helper()
	if err := b.callErr(session, method, params, result); err != nil {
		b.t.Fatalf("devtools %s: %v", method, err)
	}
}

func (b *browser) callErr(session, method string, params any, result any) error {
	b.next++
	id := b.next
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	if _, err := b.in.Write(append(data, 0)); err != nil {
		return err
	}
	b.outF.SetReadDeadline(time.Now().Add(cdpTimeout))
	for {
		line, err := b.out.ReadBytes(0)
		if err != nil {
			return fmt.Errorf("reading the answer: %w", err)
		}
		var reply struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(line[:len(line)-1], &reply); err != nil {
			return fmt.Errorf("%w in %q", err, line)
		}
		if reply.ID != id {
			continue // an event, or the answer to an earlier command
		}
		if reply.Error != nil {
			return errors.New(reply.Error.Message)
		}
		if result != nil {
			return json.Unmarshal(reply.Result, result)
		}
		return nil
	}
}

// navigate opens url in the page.
func (b *browser) navigate(url string) {
	b.t.Helper()
	b.call(b.session, "Page.navigate", map[string]any{"url": url}, nil)
}

// eval runs expr in the page, awaiting a promise, and decodes its value
// into out (when not nil).
func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	b.call(b.session, "Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true}, &r)
	if r.Exception != nil {
		b.t.Fatalf("page: %s: %s %s", expr, r.Exception.Text, r.Exception.Exception.Description)
	}
	if out != nil && len(r.Result.Value) > 0 {
		if err := json.Unmarshal(r.Result.Value, out); err != nil {
			b.t.Fatalf("page: %s: %v in %s", expr, err, r.Result.Value)
		}
	}
}

// waitTrue polls the boolean expression cond in the page until it holds;
// on a timeout the test fails with the page's DOM logged.
func (b *browser) waitTrue(what, cond string, timeout time.Duration) {
	b.t.Helper()
	defer func() {
		if b.t.Failed() {
			var r struct {
				Result struct {
					Value string `json:"value"`
				} `json:"result"`
			}
			b.callErr(b.session, "Runtime.evaluate", map[string]any{"expression": "document.body.innerHTML", "returnByValue": true}, &r)
			b.t.Logf("DOM while waiting for %s:\n%s", what, tail(r.Result.Value, 3000))
		}
	}()
	gatewaytest.WaitFor(b.t, timeout, what+" ("+cond+")", func() bool {
		var ok bool
		// Until the page has loaded, cond may throw: that is "not yet".
		b.eval("(() => { try { return !!("+cond+") } catch (e) { return false } })()", &ok)
		return ok
	})
}

// screenshot writes the page as PNG to path.
func (b *browser) screenshot(path string) {
	b.t.Helper()
	var shot struct {
		Data string `json:"data"`
	}
	b.call(b.session, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err == nil {
		err = os.WriteFile(path, png, 0o644)
	}
	if err != nil {
		b.t.Errorf("screenshot %s: %v", path, err)
	}
}

// jsString quotes s as a JavaScript string literal (encoding/json
// escapes U+2028 and U+2029 too).
func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}
