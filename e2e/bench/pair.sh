#!/usr/bin/env bash
# e2e/bench/pair.sh A B — CPU per request of two Sluice builds (binaries A
# and B) measured at the same time, under the same fixed-rate load: what a
# change of 2–5% needs, which one `make bench` run cannot show (its
# closed-loop runs of one peer after another move with the box's load;
# BENCHMARKS.md, sixteenth session). Each round starts both builds fresh
# with the bench's config (peers/sluice.yaml, h2c), each in front of a fast
# backend of its own (e2e/bench/fastbackend, two ports), and drives each
# with h2load --h1, CONNS keep-alive clients at RPS requests/s each, for
# a 3 s warm-up, then SECS s over which each process's CPU is read from
# /proc/PID/stat. The two sides swap ports every round. Whatever else
# runs on the box runs beside both, so B ÷ A per round moves much less
# than either. Run under flock /tmp/sluice-e2e.lock. Prints one line per
# round (req/s A, B; CPU µs per request A, B; B ÷ A), also to
# OUT/pair.tsv, then the median of B ÷ A.
# Env: ROUNDS [8], CONNS [1000], RPS [10] (per client), SECS [10],
#      PROTOCOL [h2c] (h1: Sluice's HTTP/1.1 pool to the backends),
#      LOAD [ka]: close opens RATE connections/s on each side instead,
#      each sending one request with Connection: close (h2load --rate),
#      RATE [4000],
#      PORT_BASE [20600], OUT [a new directory under /tmp].
set -uo pipefail
A=$(readlink -f "$1") B=$(readlink -f "$2")
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd); P=${PORT_BASE:-20600}
ROUNDS=${ROUNDS:-8} CONNS=${CONNS:-1000} RPS=${RPS:-10} SECS=${SECS:-10} PROTOCOL=${PROTOCOL:-h2c} LOAD=${LOAD:-ka} RATE=${RATE:-4000}
OUT=${OUT:-$(mktemp -d /tmp/pair.XXXXXX)}; mkdir -p "$OUT"; pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.3
}
trap cleanup EXIT
ulimit -n 20000
(cd "$REPO" && go build -o "$OUT/fastbackend" ./e2e/bench/fastbackend) || exit 1
# Side 1 listens on P+21, admin P+29, backend P+11/12; side 2 on P+31, P+39, P+13/14.
"$OUT/fastbackend" -listen 127.0.0.1:$((P + 11)) -listen 127.0.0.1:$((P + 12)) >"$OUT/fb1.log" 2>&1 &
pids+=($!)
"$OUT/fastbackend" -listen 127.0.0.1:$((P + 13)) -listen 127.0.0.1:$((P + 14)) >"$OUT/fb2.log" 2>&1 &
pids+=($!)
sleep 1
HZ=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
config() { # listen admin backendA backendB
    sed -e '/^#H3 /d' -e "s#@H1_PORT@#$1#g" -e "s#@ADMIN_PORT@#$2#g" -e "s#@BACKEND_A@#$3#g" \
        -e "s#@BACKEND_B@#$4#g" -e "s#@SLUICE_PROTOCOL@#$PROTOCOL#g" "$REPO/e2e/bench/peers/sluice.yaml"
}
rps() { grep -o 'finished in [^,]*, [0-9.]* req/s' "$1" | awk '{print $(NF-1)}'; }
load() { # url out
    if [ "$LOAD" = close ]; then
        # The run outlasts the measured SECS by 1 s at each end, as the
        # keep-alive load's warm-up does.
        local n=$((RATE * (SECS + 5)))
        h2load --h1 -t1 -n $n -c $n --rate "$RATE" --rate-period 1s -H "Connection: close" "$1" >"$2" 2>&1
    else
        h2load --h1 -t1 -c"$CONNS" --rps "$RPS" -D $((SECS + 3)) --warm-up-time=3 "$1" >"$2" 2>&1
    fi
}
: >"$OUT/pair.tsv"
for r in $(seq 1 "$ROUNDS"); do
    d=$OUT/r$r; mkdir -p "$d"
    s1=(21 29 11 12) s2=(31 39 13 14)
    if [ $((r % 2)) = 0 ]; then s1=(31 39 13 14) s2=(21 29 11 12); fi
    config $((P + s1[0])) $((P + s1[1])) $((P + s1[2])) $((P + s1[3])) >"$d/a.yaml"
    config $((P + s2[0])) $((P + s2[1])) $((P + s2[2])) $((P + s2[3])) >"$d/b.yaml"
    "$A" run --config "$d/a.yaml" >"$d/a.log" 2>&1 &
    pa=$!
    "$B" run --config "$d/b.yaml" >"$d/b.log" 2>&1 &
    pb=$!
    pids+=("$pa" "$pb")
    ua=http://127.0.0.1:$((P + s1[0]))/ ub=http://127.0.0.1:$((P + s2[0]))/
    for _ in $(seq 100); do
        curl -sf -o /dev/null "$ua" && curl -sf -o /dev/null "$ub" && break
        sleep 0.1
    done
    load "$ua" "$d/load-a.txt" &
    la=$!
    load "$ub" "$d/load-b.txt" &
    lb=$!
    sleep 4
    a0=$(cpu $pa) b0=$(cpu $pb) t0=$(date +%s.%N)
    sleep "$SECS"
    a1=$(cpu $pa) b1=$(cpu $pb) t1=$(date +%s.%N)
    wait $la $lb
    kill $pa $pb
    wait $pa $pb 2>/dev/null
    ra=$(rps "$d/load-a.txt") rb=$(rps "$d/load-b.txt")
    if [ -z "$ra" ] || [ -z "$rb" ]; then
        echo "round $r: no h2load result (see $d)" >&2
        continue
    fi
    python3 -c "
dt = $t1 - $t0
ua = ($a1 - $a0) / $HZ / (dt * $ra) * 1e6
ub = ($b1 - $b0) / $HZ / (dt * $rb) * 1e6
print($r, round($ra), round($rb), round(ua, 2), round(ub, 2), round(ub / ua, 3), sep='\t')" | tee -a "$OUT/pair.tsv"
    sleep 1
done
python3 -c "
import statistics
r = [float(l.split('\t')[5]) for l in open('$OUT/pair.tsv')]
print('B / A CPU per request: median %.3f over %d rounds (%.3f to %.3f)' % (statistics.median(r), len(r), min(r), max(r)))"
