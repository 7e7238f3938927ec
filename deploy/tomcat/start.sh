#!/usr/bin/env bash
# Usage: start.sh BASE_DIR
# Starts Tomcat for a CATALINA_BASE made by setup.sh in the background (no
# systemd needed), writes BASE_DIR/tomcat.pid, and waits until every connector
# answers GET /hello with 200 (which also compiles the JSPs), up to
# TOMCAT_START_TIMEOUT seconds (default 60). Already running: just waits.
# Env: CATALINA_HOME, JAVA_HOME, TOMCAT_JAVA_OPTS (replaces the heap/GC flags),
#      TOMCAT_WATCH_PID: stop Tomcat when that process exits (test harnesses).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BASE_DIR" >&2
    exit 2
fi
base=$(cd "$1" && pwd)
home=${CATALINA_HOME:-/usr/share/tomcat10}
timeout=${TOMCAT_START_TIMEOUT:-60}
pidfile=$base/tomcat.pid
log=$base/logs/catalina.out

if [ ! -f "$base/sluice-tomcat.env" ]; then
    echo "start.sh: $base was not prepared by setup.sh" >&2
    exit 1
fi
# shellcheck source=/dev/null
. "$base/sluice-tomcat.env"

java=java
if [ -n "${JAVA_HOME:-}" ]; then
    java=$JAVA_HOME/bin/java
fi
if ! command -v "$java" >/dev/null 2>&1; then
    echo "start.sh: no java found (install tomcat10, which pulls a JRE, or set JAVA_HOME)" >&2
    exit 1
fi

# True if PID is alive and is the JVM of this CATALINA_BASE (guards against PID reuse).
is_our_tomcat() {
    [ -r "/proc/$1/cmdline" ] && tr '\0' '\n' <"/proc/$1/cmdline" | grep -qxF -- "-Dcatalina.base=$base"
}

# GET /hello over bash's /dev/tcp, so readiness needs neither curl nor nc.
answers_200() {
    local status
    exec 3<>"/dev/tcp/$ADDRESS/$1" || return 1
    printf 'GET /hello HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$ADDRESS" >&3
    IFS= read -r -t 10 status <&3 || status=
    exec 3<&- 3>&-
    [[ $status == "HTTP/1.1 200"* ]]
}

pid=
if [ -f "$pidfile" ] && is_our_tomcat "$(cat "$pidfile")"; then
    pid=$(cat "$pidfile")
    echo "start.sh: Tomcat already running (pid $pid)"
else
    rm -f "$pidfile"
    mkdir -p "$base/logs" "$base/temp" "$base/work"
    # Small-machine defaults: one JVM shares 2 cores with the gateway and the load generator.
    read -r -a heap_opts <<<"${TOMCAT_JAVA_OPTS:--Xms256m -Xmx512m -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError}"
    # The --add-opens list mirrors catalina.sh; without it Tomcat's leak detection warns at shutdown.
    cd "$base"
    setsid "$java" \
        "${heap_opts[@]}" \
        -Djava.awt.headless=true \
        --add-opens=java.base/java.lang=ALL-UNNAMED \
        --add-opens=java.base/java.io=ALL-UNNAMED \
        --add-opens=java.base/java.util=ALL-UNNAMED \
        --add-opens=java.base/java.util.concurrent=ALL-UNNAMED \
        --add-opens=java.rmi/sun.rmi.transport=ALL-UNNAMED \
        -Djava.util.logging.manager=org.apache.juli.ClassLoaderLogManager \
        "-Djava.util.logging.config.file=$base/conf/logging.properties" \
        -classpath "$home/bin/bootstrap.jar:$home/bin/tomcat-juli.jar" \
        "-Dcatalina.base=$base" \
        "-Dcatalina.home=$home" \
        "-Djava.io.tmpdir=$base/temp" \
        org.apache.catalina.startup.Bootstrap start \
        >>"$log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$pidfile"
    echo "start.sh: started Tomcat pid $pid, log $log"
fi

if [ -n "${TOMCAT_WATCH_PID:-}" ]; then
    # Watchdog: a test binary that panics or is killed never runs its cleanup, so
    # this stops Tomcat within a second of the watched process disappearing.
    watch=$TOMCAT_WATCH_PID
    setsid bash -c '
        while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
        if kill -0 "$2" 2>/dev/null; then
            kill -TERM "$2" 2>/dev/null
            for _ in $(seq 1 100); do kill -0 "$2" 2>/dev/null || exit 0; sleep 0.1; done
            kill -KILL "$2" 2>/dev/null
        fi' tomcat-watchdog "$watch" "$pid" >/dev/null 2>&1 </dev/null &
    echo "$!" >"$base/watchdog.pid"
fi

deadline=$((SECONDS + timeout))
pending=("$PORT_A" "$PORT_B" "$PORT_H1")
while [ ${#pending[@]} -gt 0 ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "start.sh: ERROR: Tomcat (pid $pid) exited during startup; last lines of $log:" >&2
        tail -n 40 "$log" >&2 || true
        rm -f "$pidfile"
        exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
        echo "start.sh: ERROR: Tomcat did not answer on port(s) ${pending[*]} within ${timeout}s; last lines of $log:" >&2
        tail -n 40 "$log" >&2 || true
        "$(dirname "${BASH_SOURCE[0]}")/stop.sh" "$base" >&2 || true
        exit 1
    fi
    still=()
    for p in "${pending[@]}"; do
        answers_200 "$p" 2>/dev/null || still+=("$p")
    done
    pending=("${still[@]}")
    [ ${#pending[@]} -eq 0 ] || sleep 0.2
done
echo "start.sh: Tomcat ready: h2c on $ADDRESS:$PORT_A and $ADDRESS:$PORT_B, HTTP/1.1 only on $ADDRESS:$PORT_H1"
