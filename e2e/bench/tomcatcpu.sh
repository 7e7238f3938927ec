#!/usr/bin/env bash
# e2e/bench/tomcatcpu.sh BIN — Tomcat's CPU per request behind Sluice (BIN)
# and HAProxy-h2, runs interleaved, read from Tomcat's /proc/PID/stat;
# the proxy's CPU per request the same way. Lighter than make bench: one
# Tomcat (deploy/tomcat, the bench's server.xml), the bench's peer
# configs (peers/sluice.yaml, peers/haproxy-h2.cfg), wrk -c2000
# keep-alive (ka) or -c1000 Connection: close (close), SECS s per run
# after a 2 s warm-up through the same proxy. Run under
# flock /tmp/sluice-e2e.lock. Prints one line per run, also to OUT/summary.tsv.
# Env: PEERS ["sluice haproxy"] (also "base": BASEBIN, same config),
#      LOADS ["ka close"], REPS ["1 2 3"] (a round named w is a warm-up
#      round like any other: discard it), SECS [8], PORT_BASE [20500],
#      OUT [a new directory under /tmp], BASEBIN,
#      RELAY=1: e2e/bench/h2relay between the proxy and Tomcat, its
#      counts per run in OUT/relay-PEER-LOAD-ROUND.log (the relay costs
#      CPU and a hop: its runs are for the frame counts, not for CPU).
set -uo pipefail
BIN=$(readlink -f "$1"); BASEBIN=${BASEBIN:-}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd); B=${PORT_BASE:-20500}
TA=$((B+1)) TB=$((B+2)) TH1=$((B+3)) H1=$((B+21)) ADMIN=$((B+29)) HP=$((B+41)) HP2=$((B+42)) RA=$((B+11)) RB=$((B+12))
OUT=${OUT:-$(mktemp -d /tmp/tomcatcpu.XXXXXX)}; mkdir -p "$OUT"; pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    [ -n "${RL_PID:-}" ] && kill "$RL_PID" 2>/dev/null
    "$REPO/deploy/tomcat/stop.sh" "$OUT/tomcat" >/dev/null 2>&1
    sleep 0.5
}
trap cleanup EXIT
ulimit -n 20000
"$REPO/deploy/tomcat/setup.sh" "$OUT/tomcat" $TA $TB $TH1 >/dev/null
"$REPO/deploy/tomcat/start.sh" "$OUT/tomcat" >/dev/null || exit 1
tp=$(cat "$OUT/tomcat/tomcat.pid")
h2load -t2 -c 32 -m 10 -D 6 "http://127.0.0.1:$TA/" >/dev/null 2>&1
wrk -t2 -c 64 -d 6s "http://127.0.0.1:$TB/" >/dev/null 2>&1
BA=$TA BB=$TB
if [ "${RELAY:-0}" = 1 ]; then
    (cd "$REPO" && go build -o "$OUT/h2relay" ./e2e/bench/h2relay) || exit 1
    # exec: RL_PID is the relay itself, which cleanup stops.
    coproc RL { exec "$OUT/h2relay" 127.0.0.1:$RA=127.0.0.1:$TA 127.0.0.1:$RB=127.0.0.1:$TB; }
    BA=$RA BB=$RB
    exec 5<&"${RL[0]}" 6>&"${RL[1]}"
    cat <&5 >"$OUT/relay.log" & pids+=($!)
fi
sed -e "s/@H1_PORT@/$H1/; s/@ADMIN_PORT@/$ADMIN/; s/@BACKEND_A@/$BA/; s/@BACKEND_B@/$BB/; s/@SLUICE_PROTOCOL@/h2c/" \
    -e '/^#H3 /d' "$REPO/e2e/bench/peers/sluice.yaml" >"$OUT/sluice.yaml"
sed -e "s/@H1_PORT@/$HP/; s/@H2_PORT@/$HP2/; s/@BACKEND_A@/$BA/; s/@BACKEND_B@/$BB/; s/@NOFILE@/20000/; s/@MAXCONN@/9900/g" \
    "$REPO/e2e/bench/peers/haproxy-h2.cfg" >"$OUT/h.cfg"
tck=$(getconf CLK_TCK); SECS=${SECS:-8}
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for r in ${REPS:-1 2 3}; do
for load in ${LOADS:-ka close}; do
for peer in ${PEERS:-sluice haproxy}; do
    case $peer in
    sluice) "$BIN" run --config "$OUT/sluice.yaml" >"$OUT/sluice.log" 2>&1 & pp=$!; port=$H1 ;;
    base) "$BASEBIN" run --config "$OUT/sluice.yaml" >"$OUT/base.log" 2>&1 & pp=$!; port=$H1 ;;
    haproxy) haproxy -f "$OUT/h.cfg" >"$OUT/h.log" 2>&1 & pp=$!; port=$HP ;;
    esac
    sleep 1
    if [ "$load" = close ]; then c=1000; hdr=(-H 'Connection: close'); else c=2000; hdr=(); fi
    wrk -t2 -c$c -d2s --timeout 10s "${hdr[@]}" "http://127.0.0.1:$port/" >/dev/null 2>&1
    [ "${RELAY:-0}" = 1 ] && { echo reset >&6; sleep 0.2; }
    t0=$(cpu "$tp") p0=$(cpu "$pp")
    w="$OUT/$peer-$load-$r.wrk"
    wrk -t2 -c$c -d"${SECS}s" --timeout 10s "${hdr[@]}" "http://127.0.0.1:$port/" >"$w" 2>&1
    t1=$(cpu "$tp") p1=$(cpu "$pp")
    if [ "${RELAY:-0}" = 1 ]; then
        echo dump >&6; sleep 0.5
        cp "$OUT/relay.log" "$OUT/relay-$peer-$load-$r.log"; : >"$OUT/relay.log"
    fi
    kill $pp; wait $pp 2>/dev/null
    req=$(awk '/requests in/{print $1}' "$w"); rps=$(awk '/Requests\/sec/{print $2}' "$w")
    err=$(grep -E "Non-2xx|Socket errors" "$w" | tr '\n' ' ')
    awk -v n=$peer -v l=$load -v r=$r -v rps="$rps" -v req="$req" -v t=$((t1 - t0)) -v p=$((p1 - p0)) -v hz="$tck" -v e="$err" \
        'BEGIN{printf "%s\t%s\t%s\trps=%.0f\ttomcat_cpu_s/10k=%.3f\tproxy_cpu_s/10k=%.3f\t%s\n", r, l, n, rps, t/hz/req*1e4, p/hz/req*1e4, e}' |
        tee -a "$OUT/summary.tsv"
    sleep 1
done; done; done
