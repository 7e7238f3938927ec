#!/usr/bin/env bash
# e2e/bench/pgo.sh — `make pgo`: record the CPU profile that profile-guided
# optimisation builds Sluice with, and write it to cmd/sluice/default.pgo
# (which `go build` then uses for package main by default, -pgo=auto).
#
# The load is the bench's: a Sluice built without PGO, with the bench's own
# config (peers/sluice.yaml, h2c to two ports), in front of the fast Go
# backend, driven by wrk (HTTP/1.1 keep-alive and Connection: close) and
# h2load (h2c), one after the other. One CPU profile is taken in the middle
# of each load and the three are merged, so every client protocol's path is
# in the profile in proportion to its run time. The fast backend, not
# Tomcat: Sluice runs the same code either way, and the fast backend leaves
# it more of the CPU, hence more samples.
#
# Environment: PGO_SECONDS [15] profile seconds per load; PGO_PORT_BASE
# [19400] uses BASE+1..BASE+4 on 127.0.0.1; PGO_OUT [cmd/sluice/default.pgo].
# Needs wrk and h2load (make bench installs them). BENCHMARKS.md says what
# the profile is worth ("Profile-guided optimisation").
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

SECS=${PGO_SECONDS:-15}
BASE=${PGO_PORT_BASE:-19400}
OUT=${PGO_OUT:-cmd/sluice/default.pgo}
GO=${GO:-go}
H1=$((BASE + 1)) ADMIN=$((BASE + 2)) FAST_A=$((BASE + 3)) FAST_B=$((BASE + 4))

die() { echo "pgo: $*" >&2; exit 1; }
for t in wrk h2load curl; do
    command -v "$t" >/dev/null || die "$t is not installed (make bench installs it: apt-get install wrk nghttp2-client curl)"
done

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The profile must come from a binary built without one, or it would
# record the last profile's inlining decisions.
$GO build -pgo=off -o "$work/sluice" ./cmd/sluice
$GO build -o "$work/fastbackend" ./e2e/bench/fastbackend

sed -e "s/@H1_PORT@/$H1/; s/@ADMIN_PORT@/$ADMIN/; s/@BACKEND_A@/$FAST_A/; s/@BACKEND_B@/$FAST_B/; s/@SLUICE_PROTOCOL@/h2c/" \
    -e '/^#H3 /d' e2e/bench/peers/sluice.yaml >"$work/sluice.yaml"
echo "pprof: true" >>"$work/sluice.yaml"

"$work/fastbackend" -listen "127.0.0.1:$FAST_A" -listen "127.0.0.1:$FAST_B" >"$work/fast.log" 2>&1 &
pids+=($!)
"$work/sluice" run --config "$work/sluice.yaml" >"$work/sluice.log" 2>&1 &
pids+=($!)

up() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$H1/"; }
for _ in $(seq 100); do up && break; sleep 0.1; done
up || die "sluice did not answer on 127.0.0.1:$H1: $(tail -5 "$work/sluice.log")"

# Each load runs 4 s longer than its profile, which starts 2 s in. The
# loads are run with eval for the quoted header: wrk silently drops a -H
# without a space after the colon ("Connection:close"), which made the
# second load keep-alive until 2026-12-02.
loads=(
    "wrk -t2 -c2000 -d$((SECS + 4))s --timeout 10s http://127.0.0.1:$H1/"
    "wrk -t2 -c1000 -d$((SECS + 4))s --timeout 10s -H 'Connection: close' http://127.0.0.1:$H1/"
    "h2load -t2 -c200 -m10 -D $((SECS + 4)) http://127.0.0.1:$H1/"
)
# HTTP/1.1 connections Sluice has accepted so far, from /metrics.
accepted() {
    curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN/metrics" |
        awk '/^sluice_client_connections_accepted_total\{protocol="http1"\}/ { print int($2) }'
}
profiles=()
i=0
for load in "${loads[@]}"; do
    i=$((i + 1))
    echo "pgo: load $i/${#loads[@]}: $load"
    before=$(accepted)
    eval "$load" >"$work/load$i.log" 2>&1 &
    lp=$!
    sleep 2
    curl -fsS --max-time $((SECS + 30)) -o "$work/cpu$i.pprof" \
        "http://127.0.0.1:$ADMIN/debug/pprof/profile?seconds=$SECS" || die "profile $i failed"
    wait "$lp" || die "load $i failed: $(tail -5 "$work/load$i.log")"
    # The Connection: close load must open a connection per request: far
    # more than its 1,000 clients (a keep-alive load opens about 1,000).
    if [[ $load == *Connection*close* ]]; then
        n=$(($(accepted) - before))
        echo "pgo: load $i opened $n connections"
        ((n > 10000)) || die "load $i opened only $n connections: wrk did not send Connection: close"
    fi
    profiles+=("$work/cpu$i.pprof")
done

$GO tool pprof -proto "${profiles[@]}" >"$work/merged.pgo" 2>/dev/null
mv "$work/merged.pgo" "$OUT"
echo "pgo: wrote $OUT ($(wc -c <"$OUT") bytes) from ${#profiles[@]} profiles of ${SECS}s"
