// Command sluice is an HTTP gateway that accepts HTTP/1.1 and h2c clients,
// and with TLS configured HTTP/2 and HTTP/3 ones, and funnels their requests
// onto a few long-lived h2c connections per upstream server, falling back
// to an HTTP/1.1 keep-alive pool.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
	"github.com/sluice-gw/sluice/cmd/sluice/internal/haproxyimport"
	"github.com/sluice-gw/sluice/cmd/sluice/internal/runtime"
	"github.com/sluice-gw/sluice/upstream"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

const (
	defaultConfigFile = "sluice.yaml"
	envLogLevel       = "SLUICE_LOG_LEVEL"
)

// Exit codes. exitUsage follows the flag package's convention for a bad
// command line, so scripts can tell it apart from a failure at run time.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const usageText = `Sluice funnels HTTP/1.1, h2c, h2 and HTTP/3 clients onto a few long-lived
h2c connections per upstream server (HTTP/1.1 keep-alive pool as fallback).

Usage:
  sluice run [--config FILE]       serve using FILE (default ./sluice.yaml)
  sluice proxy --to HOST:PORT ...  serve a single backend set up by flags
  sluice check [--config FILE]     validate FILE and print the effective config
  sluice import-haproxy FILE       translate an HAProxy config: sluice.yaml on
                                   stdout, what was not translated on stderr
  sluice version                   print the version
  sluice help                      print this help

Run 'sluice COMMAND -h' for the flags of a command.

Environment:
  SLUICE_LOG_LEVEL    debug, info (default), warn or error
  SLUICE_<KEY>        overrides a config key, levels joined by "__",
                      e.g. SLUICE_BACKENDS__TOMCAT__H2C__CONNS_PER_SERVER=4

Exit status: 0 after a clean stop, 1 on error, 2 on a bad command line.
`

func main() {
	if err := raiseNofile(); err != nil {
		fmt.Fprintf(os.Stderr, "sluice: warning: cannot raise the open-file limit: %v\n", err)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Environ()))
}

// raiseNofile lifts the soft RLIMIT_NOFILE to the hard limit: every client
// and upstream connection is a descriptor, and soft limits as low as 1024
// are common. The Go runtime (1.19+) already raises it to one below the
// hard limit on most Unix systems; doing it here keeps the guarantee
// explicit rather than resting on that runtime detail.
func raiseNofile() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= lim.Max {
		return nil
	}
	lim.Cur = lim.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// run is the whole command line interface, returning the exit code; main
// only binds it to the process.
func run(args []string, stdout, stderr io.Writer, environ []string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		return cmdRun(rest, stderr, environ)
	case "proxy":
		return cmdProxy(rest, stderr, environ)
	case "check":
		return cmdCheck(rest, stdout, stderr, environ)
	case "import-haproxy":
		return cmdImportHAProxy(rest, stdout, stderr)
	case "version":
		return cmdVersion(rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	default:
		fmt.Fprintf(stderr, "sluice: unknown command %q\n\n%s", cmd, usageText)
		return exitUsage
	}
}

func cmdRun(args []string, stderr io.Writer, environ []string) int {
	fs := newFlagSet("run", "run [--config FILE]", stderr)
	path := fs.String("config", "", "config `FILE` (default ./"+defaultConfigFile+")")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, err := loadConfig(*path, environ)
	if err != nil {
		return fail(stderr, err)
	}
	return serveUntilSignal(cfg, stderr, environ, func() (*config.Config, error) { return loadConfig(*path, environ) })
}

func cmdCheck(args []string, stdout, stderr io.Writer, environ []string) int {
	fs := newFlagSet("check", "check [--config FILE]", stderr)
	path := fs.String("config", "", "config `FILE` (default ./"+defaultConfigFile+")")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, err := loadConfig(*path, environ)
	var errs *config.Errors
	if errors.As(err, &errs) {
		// Already "FILE: KEY: MSG" per line, the form editors can jump to.
		fmt.Fprintln(stderr, errs)
		return exitError
	}
	if err != nil {
		return fail(stderr, err)
	}
	out, err := cfg.Marshal()
	if err != nil {
		return fail(stderr, err)
	}
	if _, err := stdout.Write(out); err != nil {
		return fail(stderr, err)
	}
	return exitOK
}

func cmdProxy(args []string, stderr io.Writer, environ []string) int {
	fs := newFlagSet("proxy", "proxy --to HOST:PORT [--to HOST:PORT ...] [flags]", stderr)
	def, defBackend := config.Default(), upstream.DefaultConfig()
	var to serverList
	fs.Var(&to, "to", "upstream server `HOST:PORT`; repeat for more servers (required)")
	listen := fs.String("listen", def.Listen, "client `ADDR`, serving HTTP/1.1 and h2c")
	admin := fs.String("admin", def.Admin, "`ADDR` serving /metrics, /healthz and /readyz")
	protocol := fs.String("protocol", defBackend.Protocol, "upstream `PROTOCOL`: auto, h2c or h1")
	conns := fs.Int("conns", defBackend.H2C.ConnsPerServer,
		fmt.Sprintf("h2c connections per server (the HTTP/1.1 pool keeps its default of %d)", defBackend.H1.ConnsPerServer))
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if len(to) == 0 {
		fmt.Fprintln(stderr, "sluice proxy: at least one --to HOST:PORT is required")
		fs.Usage()
		return exitUsage
	}
	cfg, err := config.Quick(*listen, *admin, *protocol, to, *conns)
	if err != nil {
		fail(stderr, err)
		return exitUsage
	}
	return serveUntilSignal(cfg, stderr, environ, nil)
}

// cmdImportHAProxy writes the Sluice translation of an HAProxy
// configuration to stdout and the report (every directive not translated,
// with its line and the reason) to stderr.
func cmdImportHAProxy(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("import-haproxy", "import-haproxy haproxy.cfg > sluice.yaml", stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "sluice import-haproxy: one HAProxy configuration file is required")
		fs.Usage()
		return exitUsage
	}
	path := fs.Arg(0)
	data, err := os.ReadFile(path)
	if err != nil {
		return fail(stderr, err)
	}
	res, err := haproxyimport.Convert(data, filepath.Dir(path))
	if err != nil {
		return fail(stderr, fmt.Errorf("%s: %w", path, err))
	}
	if _, err := stdout.Write(res.YAML); err != nil {
		return fail(stderr, err)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(stderr, "%s:%s\n", path, strings.TrimPrefix(n.String(), "line "))
	}
	untranslated := 0
	for _, n := range res.Notes {
		if n.Kind == haproxyimport.Untranslated {
			untranslated++
		}
	}
	fmt.Fprintf(stderr, "%s: %d routes, %d directives not translated; check the output with 'sluice check --config FILE'\n",
		path, len(res.Routes), untranslated)
	return exitOK
}

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "version", stderr)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	fmt.Fprintf(stdout, "sluice %s (%s)\n", version, goruntime.Version())
	return exitOK
}

// serverList collects repeated --to flags.
type serverList []string

func (l *serverList) String() string { return strings.Join(*l, ",") }

func (l *serverList) Set(s string) error {
	if s == "" {
		return errors.New("empty address")
	}
	*l = append(*l, s)
	return nil
}

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: sluice %s\n", synopsis)
		if hasFlags(fs) {
			fmt.Fprintln(stderr, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parseFlags parses args, reporting ok=false with the exit code when the
// command should stop: after -h, or on a bad flag or a stray argument.
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false // flag has printed the error and usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "sluice %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return exitUsage, false
	}
	return exitOK, true
}

// loadConfig loads path, or ./sluice.yaml when path is empty, turning the
// absence of the implicit file into advice instead of an open error.
func loadConfig(path string, environ []string) (*config.Config, error) {
	if path == "" {
		path = defaultConfigFile
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			cwd, werr := os.Getwd()
			if werr != nil {
				cwd = "the working directory"
			}
			return nil, fmt.Errorf("no config file: %s not found in %s; pass --config FILE or use 'sluice proxy'", defaultConfigFile, cwd)
		}
	}
	return config.Load(path, environ)
}

// fail prints err as "sluice: ..." lines, one per problem, and returns
// exitError.
func fail(stderr io.Writer, err error) int {
	for _, line := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
		fmt.Fprintf(stderr, "sluice: %s\n", line)
	}
	return exitError
}

// serveUntilSignal runs the gateway until SIGINT/SIGTERM; SIGHUP reloads.
// load reads the config again for SIGHUP and POST /reload; nil in quick
// mode.
func serveUntilSignal(cfg *config.Config, stderr io.Writer, environ []string, load func() (*config.Config, error)) int {
	logger, err := newLogger(stderr, environ)
	if err != nil {
		return fail(stderr, err)
	}
	tuneGC(environ, logger)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Once the first signal has started a graceful shutdown, restore the
	// default handling so that a second one kills a shutdown that hangs.
	context.AfterFunc(ctx, stop)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	gw, err := runtime.New(cfg, runtime.Options{Logger: logger, Load: load})
	if err != nil {
		return fail(stderr, err)
	}
	ran := make(chan error, 1)
	go func() { ran <- gw.Run(ctx) }()
	var runErr error
wait:
	for {
		select {
		case runErr = <-ran:
			break wait
		case <-hup:
			// Errors are logged and counted by Reload itself.
			gw.Reload()
		}
	}
	// Bounded by shutdown_grace; what it cuts is logged by Shutdown.
	gw.Shutdown(context.Background())
	if runErr != nil {
		return fail(stderr, runErr)
	}
	return exitOK
}

func newLogger(w io.Writer, environ []string) (*slog.Logger, error) {
	var level slog.Level
	switch s := strings.ToLower(lookupEnv(environ, envLogLevel)); s {
	case "debug":
		level = slog.LevelDebug
	case "", "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, fmt.Errorf("%s=%q: want debug, info, warn or error", envLogLevel, s)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), nil
}

// lookupEnv is os.Getenv over an injected environment; like the runtime,
// the first of duplicate entries wins.
func lookupEnv(environ []string, key string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}
