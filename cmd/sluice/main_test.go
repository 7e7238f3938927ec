package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const validConfig = `
backends:
  tomcat:
    servers:
      - { address: "10.0.0.11:8080", weight: 2 }
routes:
  - { host: "*", path_prefix: "/", backend: tomcat }
`

const invalidConfig = `
listn: ":8080"
backends:
  tomcat:
    protocol: h3
    servers:
      - { address: "10.0.0.11" }
routes:
  - { backend: nope }
`

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCLI(environ []string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut, environ)
	return code, out.String(), errOut.String()
}

// No case here may reach serve: each stops at the command line, the
// config or the logger.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yaml", validConfig)
	bad := writeFile(t, dir, "bad.yaml", invalidConfig)
	missing := filepath.Join(dir, "missing.yaml")
	haproxy18 := filepath.Join("internal", "haproxyimport", "testdata", "haproxy18.cfg")

	tests := []struct {
		name       string
		args       []string
		env        []string
		code       int
		stdout     []string // substrings expected on stdout
		stderr     []string // substrings expected on stderr
		noStdout   bool
		exactLines bool // stderr lines must each be one of stderr
	}{
		{name: "check valid", args: []string{"check", "--config", good}, code: 0,
			stdout: []string{"listen: :8080\n", "admin: 127.0.0.1:9001\n", "    protocol: auto\n", "      - address: 10.0.0.11:8080\n        weight: 2\n", "      timeout: 5s\n", "    probe_interval: 1m\n"}},
		{name: "check applies env", args: []string{"check", "-config", good}, env: []string{"SLUICE_LISTEN=:9090", "SLUICE_BACKENDS__TOMCAT__QUEUE__TIMEOUT=750ms"}, code: 0,
			stdout: []string{"listen: :9090\n", "timeout: 750ms\n"}},
		{name: "check invalid", args: []string{"check", "--config", bad}, code: 1, noStdout: true, exactLines: true,
			stderr: []string{
				bad + `: backends.tomcat.protocol: must be one of auto, h2c, h1, got "h3"`,
				bad + `: backends.tomcat.servers[0].address: missing port in address "10.0.0.11"`,
				bad + `: listn: unknown key (did you mean listen?)`,
				bad + `: routes[0].backend: no backend named "nope" (have tomcat)`,
			}},
		{name: "check env error", args: []string{"check", "--config", good}, env: []string{"SLUICE_BACKENDS__TOMCAT__H2C__CONNS_PER_SERVER=99"}, code: 1,
			stderr: []string{"env SLUICE_BACKENDS__TOMCAT__H2C__CONNS_PER_SERVER: backends.tomcat.h2c.conns_per_server: must be between 1 and 64"}},
		{name: "check missing file", args: []string{"check", "--config", missing}, code: 1, noStdout: true, stderr: []string{"sluice: read config: open " + missing}},
		{name: "run missing file", args: []string{"run", "--config", missing}, code: 1, stderr: []string{"sluice: read config: open " + missing}},
		{name: "run invalid", args: []string{"run", "--config", bad}, code: 1, stderr: []string{"sluice: " + bad + ": listn: unknown key"}},
		{name: "run bad log level", args: []string{"run", "--config", good}, env: []string{"SLUICE_LOG_LEVEL=loud"}, code: 1, stderr: []string{`sluice: SLUICE_LOG_LEVEL="loud": want debug, info, warn or error`}},
		{name: "run stray argument", args: []string{"run", good}, code: 2, stderr: []string{"unexpected argument", "usage: sluice run"}},
		{name: "run unknown flag", args: []string{"run", "--conf", good}, code: 2, stderr: []string{"flag provided but not defined: -conf", "usage: sluice run"}},
		{name: "run help", args: []string{"run", "-h"}, code: 0, stderr: []string{"usage: sluice run [--config FILE]", "-config FILE"}},

		{name: "import-haproxy", args: []string{"import-haproxy", haproxy18}, code: 0,
			stdout: []string{"listen: :80\n", "    tomcats:\n", "      - address: 10.0.0.11:8080\n", "backend: tomcats\n"},
			stderr: []string{haproxy18 + ":19: option http-server-close: becomes the funnel: ", haproxy18 + ":26: timeout client 1m: not translated: ", "1 routes, 13 directives not translated"}},
		{name: "import-haproxy no file", args: []string{"import-haproxy"}, code: 2, noStdout: true, stderr: []string{"one HAProxy configuration file is required", "usage: sluice import-haproxy"}},
		{name: "import-haproxy missing file", args: []string{"import-haproxy", missing}, code: 1, noStdout: true, stderr: []string{"sluice: open " + missing}},
		{name: "import-haproxy nothing to translate", args: []string{"import-haproxy", good}, code: 1, noStdout: true, stderr: []string{"outside any section"}},

		{name: "version", args: []string{"version"}, code: 0, stdout: []string{"sluice dev (" + runtime.Version() + ")\n"}},
		{name: "help", args: []string{"help"}, code: 0, stdout: []string{"sluice run", "sluice proxy", "sluice check", "sluice import-haproxy", "sluice version"}},
		{name: "dash h", args: []string{"-h"}, code: 0, stdout: []string{"sluice proxy --to"}},
		{name: "no arguments", args: nil, code: 2, noStdout: true, stderr: []string{"Usage:", "sluice run"}},
		{name: "unknown command", args: []string{"serve"}, code: 2, noStdout: true, stderr: []string{`sluice: unknown command "serve"`, "Usage:", "sluice check"}},

		{name: "proxy without --to", args: []string{"proxy", "--listen", ":8081"}, code: 2, stderr: []string{"sluice proxy: at least one --to HOST:PORT is required", "usage: sluice proxy"}},
		{name: "proxy bad protocol", args: []string{"proxy", "--to", "a:1", "--protocol", "http3"}, code: 2, stderr: []string{`sluice: command line: --protocol: must be one of auto, h2c, h1, got "http3"`}},
		{name: "proxy bad --to", args: []string{"proxy", "--to", "a:1", "--to", "b"}, code: 2, stderr: []string{`sluice: command line: --to: missing port in address "b"`}},
		{name: "proxy empty --to", args: []string{"proxy", "--to", ""}, code: 2, stderr: []string{`invalid value "" for flag -to: empty address`}},
		{name: "proxy bad --conns", args: []string{"proxy", "--to", "a:1", "--conns", "0"}, code: 2, stderr: []string{"--conns: must be between 1 and 64"}},
		{name: "proxy non-numeric --conns", args: []string{"proxy", "--to", "a:1", "--conns", "many"}, code: 2, stderr: []string{`invalid value "many" for flag -conns`}},
		{name: "proxy bad --admin", args: []string{"proxy", "--to", "a:1", "--admin", ":9001"}, code: 2, stderr: []string{"--admin: missing host"}},
		{name: "proxy every error", args: []string{"proxy", "--to", "a", "--protocol", "x", "--listen", "y"}, code: 2, stderr: []string{"--to:", "--protocol:", "--listen:"}},
		{name: "proxy help", args: []string{"proxy", "--help"}, code: 0, stderr: []string{"-to HOST:PORT", "-conns int", `(default "auto")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(tt.env, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			for _, want := range tt.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			for _, want := range tt.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			if tt.noStdout && stdout != "" {
				t.Errorf("unexpected stdout:\n%s", stdout)
			}
			if tt.exactLines {
				if got, want := strings.TrimSuffix(stderr, "\n"), strings.Join(tt.stderr, "\n"); got != want {
					t.Errorf("stderr:\n%s\nwant:\n%s", got, want)
				}
			}
		})
	}
}

func TestDefaultConfigFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	want := "sluice: no config file: sluice.yaml not found in " + cwd + "; pass --config FILE or use 'sluice proxy'\n"
	for _, cmd := range []string{"run", "check"} {
		code, _, stderr := runCLI(nil, cmd)
		if code != 1 || stderr != want {
			t.Errorf("%s in empty dir: exit %d, stderr %q; want 1, %q", cmd, code, stderr, want)
		}
	}

	writeFile(t, dir, "sluice.yaml", validConfig)
	if code, stdout, stderr := runCLI(nil, "check"); code != 0 || !strings.Contains(stdout, "10.0.0.11:8080") {
		t.Errorf("check with ./sluice.yaml: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestNewLogger(t *testing.T) {
	tests := []struct {
		env   []string
		level slog.Level
		err   bool
	}{
		{nil, slog.LevelInfo, false},
		{[]string{"SLUICE_LOG_LEVEL="}, slog.LevelInfo, false},
		{[]string{"SLUICE_LOG_LEVEL=debug"}, slog.LevelDebug, false},
		{[]string{"SLUICE_LOG_LEVEL=INFO"}, slog.LevelInfo, false},
		{[]string{"SLUICE_LOG_LEVEL=warn"}, slog.LevelWarn, false},
		{[]string{"SLUICE_LOG_LEVEL=error", "SLUICE_LOG_LEVEL=debug"}, slog.LevelError, false},
		{[]string{"SLUICE_LOG_LEVEL=warning"}, 0, true},
		{[]string{"SLUICE_LOG_LEVEL=trace"}, 0, true},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		logger, err := newLogger(&buf, tt.env)
		if tt.err {
			if err == nil {
				t.Errorf("%v: accepted", tt.env)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tt.env, err)
			continue
		}
		ctx := t.Context()
		if !logger.Enabled(ctx, tt.level) || logger.Enabled(ctx, tt.level-1) {
			t.Errorf("%v: level is not %v", tt.env, tt.level)
		}
		logger.Info("hello")
		if tt.level <= slog.LevelInfo && !strings.Contains(buf.String(), "level=INFO msg=hello") {
			t.Errorf("%v: text handler output %q", tt.env, buf.String())
		}
	}
}

func TestServerList(t *testing.T) {
	var l serverList
	for _, s := range []string{"a:1", "b:2"} {
		if err := l.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	if l.String() != "a:1,b:2" || len(l) != 2 {
		t.Errorf("serverList = %q", l.String())
	}
	if err := l.Set(""); err == nil {
		t.Error("empty address accepted")
	}
}

func TestRaiseNofile(t *testing.T) {
	if err := raiseNofile(); err != nil {
		t.Fatal(err)
	}
}

// TestImportHAProxyPassesCheck: what import-haproxy writes, saved as a file,
// passes `sluice check`.
func TestImportHAProxyPassesCheck(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("internal", "haproxyimport", "testdata", "*.cfg"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		code, stdout, stderr := runCLI(nil, "import-haproxy", f)
		if code != exitOK {
			t.Fatalf("import-haproxy %s: exit %d\n%s", f, code, stderr)
		}
		out := writeFile(t, t.TempDir(), "sluice.yaml", stdout)
		if code, _, stderr := runCLI(nil, "check", "--config", out); code != exitOK {
			t.Errorf("check of %s's translation: exit %d\n%s\n%s", f, code, stderr, stdout)
		}
	}
}
