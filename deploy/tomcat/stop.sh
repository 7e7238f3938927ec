#!/usr/bin/env bash
# Usage: stop.sh BASE_DIR
# Stops the Tomcat started by start.sh: SIGTERM (Tomcat's shutdown hook stops
# the connectors cleanly), then SIGKILL after TOMCAT_STOP_TIMEOUT s (default 15).
# Not running is not an error.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BASE_DIR" >&2
    exit 2
fi
if [ ! -d "$1" ]; then
    exit 0
fi
base=$(cd "$1" && pwd)
pidfile=$base/tomcat.pid
timeout=${TOMCAT_STOP_TIMEOUT:-15}

if [ -f "$base/watchdog.pid" ]; then
    kill -TERM "$(cat "$base/watchdog.pid")" 2>/dev/null || true
    rm -f "$base/watchdog.pid"
fi

if [ ! -f "$pidfile" ]; then
    echo "stop.sh: Tomcat not running (no $pidfile)"
    exit 0
fi
pid=$(cat "$pidfile")
# Only signal the PID if it is still this base's JVM; the number may have been reused.
if ! { [ -r "/proc/$pid/cmdline" ] && tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF -- "-Dcatalina.base=$base"; }; then
    echo "stop.sh: Tomcat not running (stale pid $pid)"
    rm -f "$pidfile"
    exit 0
fi

kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 1 $((timeout * 10))); do
    if ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$pidfile"
        echo "stop.sh: Tomcat (pid $pid) stopped"
        exit 0
    fi
    sleep 0.1
done
echo "stop.sh: Tomcat (pid $pid) ignored SIGTERM for ${timeout}s, killing" >&2
kill -KILL "$pid" 2>/dev/null || true
while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
rm -f "$pidfile"
