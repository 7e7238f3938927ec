#!/usr/bin/env bash
# e2e/bench/run.sh — `make bench`: Sluice side by side with HAProxy, nginx and
# Caddy, in front of a real Tomcat 10 and of a minimal Go h2c backend, on this
# machine (everything on 127.0.0.1). See BENCHMARKS.md for what is measured and
# how to read it.
#
# One run: install what is missing (apt), build the helpers, start Tomcat and
# the fast backend, then for each round × backend × scenario run every peer
# (order rotated per round): start it fresh from its config in peers/, check
# that a request really gets through, warm it up, measure, stop it. Then the
# idle-connection memory test. The h3 scenario (HTTP/3 clients, load from
# e2e/bench/h3load) runs on Sluice only: the other peers' Debian builds have
# no HTTP/3, and their rows say so ("n/a"). Results: e2e/bench/results/<UTC timestamp>/
# (results.md, raw.tsv, idle.tsv, every tool's raw output); results.md is also
# printed to stdout.
#
# Environment (defaults in brackets; BENCH_QUICK=1 changes the defaults):
#   BENCH_QUICK=1          1 round, 5 s runs, 1 s warm-up, fewer clients, 2000 idle conns per protocol
#   ROUNDS [2]             runs of every peer × backend × scenario (medians are reported)
#   BENCH_DURATION [10]    seconds per measured run     BENCH_WARMUP [2] seconds of warm-up
#   BENCH_KA_CONNS [2000]  wrk connections, keep-alive  BENCH_CLOSE_CONNS [1000] Connection: close
#   BENCH_H2_CLIENTS [200] h2load clients               BENCH_H2_STREAMS [10] streams per client
#   BENCH_H3_CONNS [= BENCH_H2_CLIENTS] h3load QUIC connections
#   BENCH_H3_STREAMS [= BENCH_H2_STREAMS] h3load streams per connection
#   BENCH_THREADS [2]      wrk/h2load threads
#   BENCH_BROWSER_HEADERS [0] 1: wrk and h2load send the header fields of a browser's page
#                          request (User-Agent, Accept, Accept-Language, Cookie, ...,
#                          about 600 bytes), not just Host (what upstream HPACK costs)
#   BENCH_PEERS ["sluice haproxy-h1 haproxy-h2 nginx caddy"]; also "sluice-poll": Sluice
#                          with its stats page open, a poller fetching /stats.json every
#                          2 s during the measured run (compare its CPU with "sluice")
#   BENCH_BACKENDS ["tomcat fast"]   BENCH_SCENARIOS ["h1-keepalive h1-close h2c h3"]
#                          also "h2c-post": the h2c scenario's load as POSTs of
#                          BENCH_POST_BYTES [8000] bytes each (request bodies: Tomcat's
#                          buffers and flow-control credit, BENCHMARKS.md tenth session)
#                          also "tomcat-h1": the same Tomcat JVM with two HTTP/1.1-only
#                          connectors at Tomcat's stock maxKeepAliveRequests=100 (16
#                          threads each); Sluice runs its HTTP/1.1 pool there (protocol
#                          h1, 64 conns/server), HAProxy-h1 gets maxconn 64 per server,
#                          and peers that speak h2c upstream are "n/a" (`make bench-h1`)
#   BENCH_IDLE [1]         0 skips the idle-connection test
#   BENCH_IDLE_CONNS       idle connection counts (a list) for both protocols; or per
#   BENCH_IDLE_CONNS_H1 ["10000 50000"]  BENCH_IDLE_CONNS_H2 ["10000"]  protocol
#                          (quick: "2000"). A count whose fds do not fit under
#                          RLIMIT_NOFILE in one proxy process is recorded as "not run";
#                          the client side is split over several idleconns processes
#                          (and source IPs 127.0.0.N) when one would not fit.
#   BENCH_IDLE_PROTOS ["h1 h2"]
#   BENCH_IDLE_WARM [2000] connections opened and closed before the idle test's
#                          RSS "before" is read (0: none), as TestIdleClientConnections warms up
#   BENCH_PORT_BASE [19100] ports BASE+1..BASE+69 on 127.0.0.1 must be free
#   BENCH_NO_INSTALL [0]   1: never call apt-get (missing tools make their peer fail)
#   BENCH_QUIET_WAIT [30]  before each run, wait up to this many seconds for other
#                          processes on the box to go quiet (0: don't wait)
#   BENCH_NOISY_RETRIES [1] re-run a run during which other processes used more
#                          than DURATION/10 CPU seconds, up to this many times
#   BENCH_RETRY_BUDGET [12] at most this many such re-runs in the whole run
#   BENCH_RESULTS          results directory (default e2e/bench/results/<timestamp>)
#   BENCH_SLUICE_BIN       measure this sluice binary instead of building bin/sluice
#   BENCH_SLUICE_BASE_BIN  the "sluice-base" peer: another sluice binary (an older build, say),
#                          run with the same config and ports as "sluice", to compare two
#                          builds in one run (BENCH_PEERS="sluice sluice-base haproxy-h2")
#
# For h3 the driver raises net.core.rmem_max and wmem_max to 7500000 (sysctl
# -w, quic-go wants 7 MiB UDP buffers) if they are lower and it may, and puts
# the old values back at the end; without permission it goes on and says so
# in meta.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
T0=$SECONDS

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
    q_rounds=1 q_dur=5 q_warm=1 q_ka=200 q_close=100 q_h2c=50 q_idle_h1=2000 q_idle_h2=2000
else
    q_rounds=2 q_dur=10 q_warm=2 q_ka=2000 q_close=1000 q_h2c=200 q_idle_h1="10000 50000" q_idle_h2=10000
fi
ROUNDS=${ROUNDS:-$q_rounds}
DURATION=${BENCH_DURATION:-$q_dur}
WARMUP=${BENCH_WARMUP:-$q_warm}
KA_CONNS=${BENCH_KA_CONNS:-$q_ka}
CLOSE_CONNS=${BENCH_CLOSE_CONNS:-$q_close}
H2_CLIENTS=${BENCH_H2_CLIENTS:-$q_h2c}
H2_STREAMS=${BENCH_H2_STREAMS:-10}
H3_CONNS=${BENCH_H3_CONNS:-$H2_CLIENTS}
H3_STREAMS=${BENCH_H3_STREAMS:-$H2_STREAMS}
POST_BYTES=${BENCH_POST_BYTES:-8000}
THREADS=${BENCH_THREADS:-2}
LOAD_HEADERS=()
if [ "${BENCH_BROWSER_HEADERS:-0}" = 1 ]; then
    for h in \
        'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36' \
        'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8' \
        'Accept-Language: en-US,en;q=0.9,de;q=0.8' \
        'Accept-Encoding: gzip, deflate, br' \
        'Referer: http://127.0.0.1/app/catalog/index.html' \
        'Cookie: JSESSIONID=8F3A1C2B9D4E5F60718293A4B5C6D7E8; _ga=GA1.1.1234567890.1700000000; theme=dark; lang=en' \
        'Sec-Fetch-Dest: document' 'Sec-Fetch-Mode: navigate' 'Sec-Fetch-Site: same-origin' \
        'Upgrade-Insecure-Requests: 1'; do
        LOAD_HEADERS+=(-H "$h")
    done
fi
PEERS=${BENCH_PEERS:-sluice haproxy-h1 haproxy-h2 nginx caddy}
BACKENDS=${BENCH_BACKENDS:-tomcat fast}
SCENARIOS=${BENCH_SCENARIOS:-h1-keepalive h1-close h2c h3}
IDLE=${BENCH_IDLE:-1}
declare -A IDLE_CONNS=([h1]=${BENCH_IDLE_CONNS_H1:-${BENCH_IDLE_CONNS:-$q_idle_h1}} [h2]=${BENCH_IDLE_CONNS_H2:-${BENCH_IDLE_CONNS:-$q_idle_h2}})
IDLE_PROTOS=${BENCH_IDLE_PROTOS:-h1 h2}
IDLE_WARM=${BENCH_IDLE_WARM:-2000}
PORT_BASE=${BENCH_PORT_BASE:-19100}
NO_INSTALL=${BENCH_NO_INSTALL:-0}
QUIET_WAIT=${BENCH_QUIET_WAIT:-30}
SLUICE_BIN_OVERRIDE=${BENCH_SLUICE_BIN:-}
SLUICE_BIN=${SLUICE_BIN_OVERRIDE:-$repo/bin/sluice}
SLUICE_BASE_BIN=${BENCH_SLUICE_BASE_BIN:-}
NOISY_RETRIES=${BENCH_NOISY_RETRIES:-1}
RETRY_BUDGET=${BENCH_RETRY_BUDGET:-12}
NOISE_LIMIT=$(awk -v d="$DURATION" 'BEGIN{print d / 10}')
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=${BENCH_RESULTS:-$here/results/$STAMP}

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

log() { printf '[bench %4ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- ports
TOMCAT_A=$((PORT_BASE + 1)) TOMCAT_B=$((PORT_BASE + 2)) TOMCAT_H1=$((PORT_BASE + 3))
# tomcat-h1: two more connectors in the same JVM, HTTP/1.1 only, maxKeepAliveRequests=100.
TOMCAT_KA_A=$((PORT_BASE + 4)) TOMCAT_KA_B=$((PORT_BASE + 5))
FAST_A=$((PORT_BASE + 11)) FAST_B=$((PORT_BASE + 12))
SLUICE_ADMIN=$((PORT_BASE + 29))
declare -A PORT_H1=([sluice]=$((PORT_BASE + 21)) [sluice-base]=$((PORT_BASE + 21)) [sluice-poll]=$((PORT_BASE + 21)) [haproxy-h1]=$((PORT_BASE + 31)) [haproxy-h2]=$((PORT_BASE + 41)) [nginx]=$((PORT_BASE + 51)) [caddy]=$((PORT_BASE + 61)))
# Client port for h2c prior knowledge: the same port where the peer detects
# the preface on its HTTP/1.1 listener (Sluice, Caddy); a "proto h2" bind for
# HAProxy and a "listen ... http2" for nginx.
declare -A PORT_H2=([sluice]=$((PORT_BASE + 21)) [sluice-base]=$((PORT_BASE + 21)) [sluice-poll]=$((PORT_BASE + 21)) [haproxy-h1]=$((PORT_BASE + 32)) [haproxy-h2]=$((PORT_BASE + 42)) [nginx]=$((PORT_BASE + 52)) [caddy]=$((PORT_BASE + 61)))
# HTTP/3: Sluice's tls_listen, TCP and UDP on the same port number.
PORT_H3=$((PORT_BASE + 22))
# Peers that cannot take HTTP/3 clients, and why (their h3 rows say "n/a").
declare -A PEER_NO_H3=(
    [haproxy-h1]="Debian's HAProxy 2.6 is built without QUIC (haproxy -vv: -QUIC)"
    [haproxy-h2]="Debian's HAProxy 2.6 is built without QUIC (haproxy -vv: -QUIC)"
    [nginx]="nginx 1.22 has no HTTP/3 (it came in 1.25)"
    [caddy]="not configured: Caddy serves HTTP/3 only on a TLS site, and this Caddyfile is cleartext (auto_https off)"
)
declare -A PEER_LABEL=([sluice]="Sluice (h2c, 2 conns/server)" [sluice-base]="Sluice, BENCH_SLUICE_BASE_BIN build (same config)" [sluice-poll]="Sluice, stats page polled every 2 s" [haproxy-h1]="HAProxy 2.6, HTTP/1.1 + http-reuse always" [haproxy-h2]="HAProxy 2.6, h2 to backends" [nginx]="nginx 1.22, HTTP/1.1 keepalive 128" [caddy]="Caddy 2.6, h2c to backends")
declare -A PEER_UPSTREAM=([sluice]=HTTP/2.0 [sluice-base]=HTTP/2.0 [sluice-poll]=HTTP/2.0 [haproxy-h1]=HTTP/1.1 [haproxy-h2]=HTTP/2.0 [nginx]=HTTP/1.1 [caddy]=HTTP/2.0)
declare -A BACKEND_BODY=([tomcat]="hello from tomcat" [tomcat-h1]="hello from tomcat" [fast]="hello")
# Peers that cannot use a backend, and why (their rows say "n/a").
declare -A PEER_NO_BACKEND=(
    [tomcat-h1/haproxy-h2]="the tomcat-h1 connectors have no h2c (HTTP/1.1 only)"
    [tomcat-h1/caddy]="the tomcat-h1 connectors have no h2c (HTTP/1.1 only)"
)
# Per-backend peer settings: Sluice's upstream protocol, extra options on
# HAProxy's server lines, and the peer labels that differ on that backend.
declare -A BACKEND_SLUICE_PROTOCOL=([tomcat-h1]=h1)
declare -A BACKEND_HAPROXY_SERVER_OPTS=([tomcat-h1]=" maxconn 64")
declare -A BACKEND_PEER_LABEL=(
    [tomcat-h1/sluice]="Sluice (HTTP/1.1 pool, 64 conns/server)"
    [tomcat-h1/sluice-base]="Sluice, BENCH_SLUICE_BASE_BIN build (HTTP/1.1 pool, 64 conns/server)"
    [tomcat-h1/sluice-poll]="Sluice (HTTP/1.1 pool), stats page polled every 2 s"
    [tomcat-h1/haproxy-h1]="HAProxy 2.6, HTTP/1.1 + http-reuse always, maxconn 64/server"
)

peer_upstream() { # backend peer -> the protocol Tomcat's /proto must report
    case $1 in
    tomcat-h1) echo HTTP/1.1 ;;
    *) echo "${PEER_UPSTREAM[$2]}" ;;
    esac
}

backend_ports() { # backend -> "A B"
    case $1 in
    tomcat) echo "$TOMCAT_A $TOMCAT_B" ;;
    tomcat-h1) echo "$TOMCAT_KA_A $TOMCAT_KA_B" ;;
    fast) echo "$FAST_A $FAST_B" ;;
    *) die "unknown backend $1" ;;
    esac
}

# ---------------------------------------------------------------- process bookkeeping
# Every background process this script starts is listed here and stopped by
# PID on exit, whatever the exit path.
STARTED=()
TOMCAT_BASE=
TOMCAT_PID=
NFT_TABLE=
MADE_POLICY_RC=0
declare -A SYSCTL_RESTORE=()

stop_pid() { # pid [timeout_s]: TERM, then KILL; reaps our own children
    local pid=$1 t=${2:-10} i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < t * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid ignored SIGTERM for ${t}s, killing"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    local pid
    for pid in "${STARTED[@]}"; do
        stop_pid "$pid" 5
    done
    if [ -n "$TOMCAT_BASE" ]; then
        deploy/tomcat/stop.sh "$TOMCAT_BASE" >/dev/null 2>&1
    fi
    if [ -n "$NFT_TABLE" ]; then
        $SUDO nft delete table inet "$NFT_TABLE" 2>/dev/null
    fi
    if [ "$MADE_POLICY_RC" = 1 ]; then
        $SUDO rm -f /usr/sbin/policy-rc.d
    fi
    local k
    for k in "${!SYSCTL_RESTORE[@]}"; do
        $SUDO sysctl -qw "$k=${SYSCTL_RESTORE[$k]}" >/dev/null 2>&1
    done
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_bg() { # logfile cmd...: start in the background, register, set BG_PID
    local logf=$1
    shift
    "$@" >"$logf" 2>&1 </dev/null &
    BG_PID=$!
    STARTED+=("$BG_PID")
}

forget_pid() {
    local keep=() p
    for p in "${STARTED[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    STARTED=("${keep[@]}")
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_ports() { # pid timeout_s port...: 0 once every port accepts, 1 if pid died or timeout
    local pid=$1 t=$2 p deadline
    shift 2
    deadline=$((SECONDS + t))
    for p in "$@"; do
        until port_open "$p"; do
            kill -0 "$pid" 2>/dev/null || return 1
            [ $SECONDS -lt $deadline ] || return 1
            sleep 0.1
        done
    done
}

# ---------------------------------------------------------------- install
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
apt_candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}' | grep -vx '(none)' | head -n1; }

CADDY_NOTE=
install_deps() {
    local want=() missing=() p
    # tomcat10 (pulls a JRE), load generators, ss/nft, and the peers.
    want=(tomcat10 wrk nghttp2-client curl iproute2 nftables haproxy caddy)
    if ! command -v nginx >/dev/null 2>&1; then want+=(nginx-light); fi
    # openssl makes the h3 scenario's self-signed certificate.
    if ! command -v openssl >/dev/null 2>&1; then want+=(openssl); fi
    for p in "${want[@]}"; do pkg_installed "$p" || missing+=("$p"); done
    if [ ${#missing[@]} -eq 0 ]; then
        log "deps: all present"
        return
    fi
    if [ "$NO_INSTALL" = 1 ]; then
        log "deps: missing ${missing[*]} (BENCH_NO_INSTALL=1: not installing)"
        return
    fi
    log "deps: apt-get update"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq || log "apt-get update failed; trying the install anyway"
    local install=()
    for p in "${missing[@]}"; do
        if [ -n "$(apt_candidate "$p")" ]; then
            install+=("$p")
        elif [ "$p" = nginx-light ] && [ -n "$(apt_candidate nginx)" ]; then
            install+=(nginx)
        else
            log "deps: $p has no apt candidate here; skipping it"
            [ "$p" = caddy ] && CADDY_NOTE="caddy is not available from apt on this machine; Caddy was skipped"
        fi
    done
    [ ${#install[@]} -gt 0 ] || return 0
    # Debian's maintainer scripts would start haproxy/nginx/caddy as services
    # (port 80 and all). A policy-rc.d that answers 101 forbids that; it is
    # removed again unless it was there before.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# temporary, from sluice e2e/bench/run.sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        MADE_POLICY_RC=1
    fi
    log "deps: apt-get install ${install[*]}"
    $SUDO apt-get install -y -qq --no-install-recommends "${install[@]}" >"$RESULTS/apt-install.log" 2>&1 ||
        log "deps: apt-get install failed (see $RESULTS/apt-install.log); peers without their tool will be reported as failed"
    if [ "$MADE_POLICY_RC" = 1 ]; then
        $SUDO rm -f /usr/sbin/policy-rc.d
        MADE_POLICY_RC=0
    fi
}

# ---------------------------------------------------------------- counters
SYN_METHOD=
setup_syn_counter() {
    NFT_TABLE=sluice_bench_$PORT_BASE
    $SUDO nft delete table inet "$NFT_TABLE" 2>/dev/null || true
    if command -v nft >/dev/null 2>&1 && $SUDO nft -f - 2>"$RESULTS/nft.err" <<EOF; then
table inet $NFT_TABLE {
    counter syn_tomcat { }
    counter syn_fast { }
    counter syn_tomcat_h1 { }
    chain out {
        type filter hook output priority 0; policy accept;
        oifname "lo" tcp dport { $TOMCAT_A, $TOMCAT_B } tcp flags & (syn | ack) == syn counter name "syn_tomcat"
        oifname "lo" tcp dport { $FAST_A, $FAST_B } tcp flags & (syn | ack) == syn counter name "syn_fast"
        oifname "lo" tcp dport { $TOMCAT_KA_A, $TOMCAT_KA_B } tcp flags & (syn | ack) == syn counter name "syn_tomcat_h1"
    }
}
EOF
        SYN_METHOD=nft
        log "backend connections: counting SYNs with nftables (table inet $NFT_TABLE)"
    else
        NFT_TABLE=
        SYN_METHOD=ss
        log "backend connections: nftables unusable ($(head -c 200 "$RESULTS/nft.err" 2>/dev/null)); falling back to ss snapshots (a lower bound)"
    fi
}

ss_backend_conns() { # backend -> local addr:port of every socket to its ports (any state)
    local a b
    read -r a b <<<"$(backend_ports "$1")"
    ss -Htan "( dport = :$a or dport = :$b )" 2>/dev/null | awk '{print $4}' | sort -u
}

syn_read() { # backend file_prefix -> prints a counter value (nft) or saves a snapshot (ss)
    if [ "$SYN_METHOD" = nft ]; then
        $SUDO nft list counter inet "$NFT_TABLE" "syn_${1//-/_}" 2>/dev/null | awk '/packets/ {print $2; exit}'
    else
        ss_backend_conns "$1" >"$2"
        echo 0
    fi
}

syn_diff() { # backend before_value before_file after_file -> connections opened
    if [ "$SYN_METHOD" = nft ]; then
        local now
        now=$(syn_read "$1" "")
        echo $((now - $2))
    else
        ss_backend_conns "$1" >"$4"
        comm -13 "$3" "$4" | wc -l
    fi
}

count_tw() { # backend -> TIME_WAIT sockets with a backend port at either end
    local a b
    read -r a b <<<"$(backend_ports "$1")"
    ss -Htan state time-wait "( dport = :$a or dport = :$b or sport = :$a or sport = :$b )" 2>/dev/null | wc -l
}

TW_CLEAR=unknown
clear_tw() { # forget TIME_WAIT sockets of earlier runs on our port block (needs ss -K)
    local f="( sport >= :$PORT_BASE and sport <= :$((PORT_BASE + 99)) ) or ( dport >= :$PORT_BASE and dport <= :$((PORT_BASE + 99)) )"
    $SUDO ss -K -tan state time-wait "$f" >/dev/null 2>&1 || true
    local left
    left=$(ss -Htan state time-wait "$f" 2>/dev/null | wc -l)
    if [ "$left" -eq 0 ]; then
        [ "$TW_CLEAR" = no ] || TW_CLEAR=yes
    else
        TW_CLEAR=no
    fi
}

# ---------------------------------------------------------------- peers
render() { # template out rundir backend peer [scenario]: replace @...@ placeholders
    local tpl=$1 out=$2 rundir=$3 backend=$4 peer=$5 scenario=${6:-} a b h3='/^#H3 /d'
    read -r a b <<<"$(backend_ports "$backend")"
    # "#H3 " lines are config for the h3 scenario only.
    [ "$scenario" != h3 ] || h3='s/^#H3 //'
    sed -e "$h3" \
        -e "s#@H1_PORT@#${PORT_H1[$peer]}#g" \
        -e "s#@H3_PORT@#$PORT_H3#g" \
        -e "s#@TLS_CERT@#$TLS_CERT#g" -e "s#@TLS_KEY@#$TLS_KEY#g" \
        -e "s#@H2_PORT@#${PORT_H2[$peer]}#g" \
        -e "s#@BACKEND_A@#$a#g" -e "s#@BACKEND_B@#$b#g" \
        -e "s#@ADMIN_PORT@#$SLUICE_ADMIN#g" \
        -e "s#@RUNDIR@#$rundir#g" \
        -e "s#@NOFILE@#$NOFILE#g" \
        -e "s#@MAXCONN@#$(peer_maxconn "$peer")#g" \
        -e "s#@SLUICE_PROTOCOL@#${BACKEND_SLUICE_PROTOCOL[$backend]:-h2c}#g" \
        -e "s#@SERVER_OPTS@#${BACKEND_HAPROXY_SERVER_OPTS[$backend]:-}#g" \
        "$tpl" >"$out"
    if grep -q '@[A-Z0-9_]*@' "$out"; then
        die "unreplaced placeholder in $out: $(grep -o '@[A-Z0-9_]*@' "$out" | sort -u | tr '\n' ' ')"
    fi
}

peer_maxconn() {
    case $1 in
    haproxy-*) echo $(((NOFILE - 200) / 2)) ;; # HAProxy needs 2 fds per maxconn to start
    *) echo $((NOFILE - 200)) ;;
    esac
}

peer_tool() {
    case $1 in
    sluice | sluice-poll) echo "$SLUICE_BIN" ;;
    sluice-base) echo "$SLUICE_BASE_BIN" ;;
    haproxy-*) command -v haproxy || true ;;
    nginx) command -v nginx || true ;;
    caddy) command -v caddy || true ;;
    esac
}

PEER_PID=
# start_peer peer backend dir [scenario]: start from peers/ templates; 0 when its ports answer
start_peer() {
    local peer=$1 backend=$2 dir=$3 scenario=${4:-} tool ports
    PEER_PID=
    tool=$(peer_tool "$peer")
    [ -n "$tool" ] && [ -x "$tool" ] || { START_ERR="not installed"; return 1; }
    mkdir -p "$dir"
    case $peer in
    sluice | sluice-base | sluice-poll)
        render "$here/peers/sluice.yaml" "$dir/sluice.yaml" "$dir" "$backend" "$peer" "$scenario"
        start_bg "$dir/peer.log" "$tool" run --config "$dir/sluice.yaml"
        ;;
    haproxy-h1 | haproxy-h2)
        render "$here/peers/$peer.cfg" "$dir/haproxy.cfg" "$dir" "$backend" "$peer"
        start_bg "$dir/peer.log" "$tool" -f "$dir/haproxy.cfg" -db
        ;;
    nginx)
        render "$here/peers/nginx.conf" "$dir/nginx.conf" "$dir" "$backend" "$peer"
        start_bg "$dir/peer.log" "$tool" -p "$dir" -c "$dir/nginx.conf" -e "$dir/nginx-error.log" -g 'daemon off;'
        ;;
    caddy)
        render "$here/peers/Caddyfile" "$dir/Caddyfile" "$dir" "$backend" "$peer"
        mkdir -p "$dir/home"
        start_bg "$dir/peer.log" env HOME="$dir/home" XDG_DATA_HOME="$dir/home" XDG_CONFIG_HOME="$dir/home" \
            "$tool" run --adapter caddyfile --config "$dir/Caddyfile"
        ;;
    *) START_ERR="unknown peer"; return 1 ;;
    esac
    PEER_PID=$BG_PID
    ports=("${PORT_H1[$peer]}" "${PORT_H2[$peer]}")
    # Sluice binds the UDP socket before the TLS listener on the same port.
    [ "$scenario" != h3 ] || ports+=("$PORT_H3")
    if ! wait_ports "$PEER_PID" 20 "${ports[@]}"; then
        START_ERR="did not start: $(tail -n 3 "$dir/peer.log" 2>/dev/null | tr '\n\t|' '   ' | cut -c1-160)"
        stop_peer
        return 1
    fi
    # nginx: let the workers come up before their PIDs are read.
    [ "$peer" != nginx ] || sleep 0.3
}

stop_peer() {
    [ -n "$PEER_PID" ] || return 0
    stop_pid "$PEER_PID" 15
    forget_pid "$PEER_PID"
    PEER_PID=
}

peer_pids() { # the peer's process and its children (nginx workers)
    [ -n "$PEER_PID" ] || return 0
    echo "$PEER_PID"
    pgrep -P "$PEER_PID" 2>/dev/null || true
}

# verify_peer peer backend dir [scenario]: a GET through the peer must return
# the backend's body, over HTTP/1.1 and over h2c (and over HTTP/3 for h3); on
# Tomcat, /proto must show the protocol this peer is configured to use upstream.
verify_peer() {
    local peer=$1 backend=$2 dir=$3 scenario=${4:-} body url
    local want=${BACKEND_BODY[$backend]}
    for url in "h1 http://127.0.0.1:${PORT_H1[$peer]}" "h2c http://127.0.0.1:${PORT_H2[$peer]}"; do
        local kind=${url%% *} u=${url#* } flags=()
        [ "$kind" = h2c ] && flags=(--http2-prior-knowledge)
        body=$(curl -sS --max-time 10 "${flags[@]}" "$u/" 2>&1) || true
        echo "$kind GET / -> $body" >>"$dir/verify.txt"
        if [[ $body != "$want"* ]]; then
            VERIFY_ERR="$kind GET / returned '$(echo "$body" | head -c 80 | tr '\n|' '  ')'"
            return 1
        fi
        if [[ $backend == tomcat* ]]; then
            body=$(curl -sS --max-time 10 "${flags[@]}" "$u/proto" 2>&1) || true
            echo "$kind GET /proto -> $body" >>"$dir/verify.txt"
            if [ "$body" != "$(peer_upstream "$backend" "$peer")" ]; then
                VERIFY_ERR="$kind: Tomcat saw '$body', expected $(peer_upstream "$backend" "$peer")"
                return 1
            fi
        fi
    done
    [ "$scenario" = h3 ] || return 0
    local path paths=(/)
    [[ $backend != tomcat* ]] || paths+=(/proto)
    for path in "${paths[@]}"; do
        body=$(timeout 20 bin/bench/h3load -verify -insecure -timeout 10s -url "https://127.0.0.1:$PORT_H3$path" 2>&1) || true
        printf 'h3 GET %s -> %s\n' "$path" "$(echo "$body" | tr '\n' ' ')" >>"$dir/verify.txt"
        local got want_body=$want
        got=$(sed -n 's/^body: //p' <<<"$body")
        [ "$path" = / ] || want_body=$(peer_upstream "$backend" "$peer")
        if ! grep -qx 'proto: HTTP/3.0' <<<"$body" || [[ $got != "$want_body"* ]]; then
            VERIFY_ERR="h3 GET $path returned '$(echo "$body" | head -c 120 | tr '\n|' '  ')', expected HTTP/3.0 and '$want_body'"
            return 1
        fi
    done
}

# ---------------------------------------------------------------- noise
# This box may be shared: before each measured run, wait (up to
# BENCH_QUIET_WAIT s) for a 1 s window in which processes that are not part
# of the benchmark used under 0.2 CPU seconds. Measured anyway after that;
# every run records what others used during it (other_cpu_s).
wait_quiet() {
    local dir=$1 o top deadline=$((SECONDS + QUIET_WAIT)) waited=0
    while :; do
        bin/bench/report snap "$dir/.q0"
        sleep 1
        bin/bench/report snap "$dir/.q1"
        { read -r o; read -r top; } < <(bin/bench/report other "$dir/.q0" "$dir/.q1" $$ ${TOMCAT_PID:-} 2>/dev/null) || true
        rm -f "$dir/.q0" "$dir/.q1"
        if [ "$(awk -v o="${o:-0}" 'BEGIN{print (o < 0.2)}')" = 1 ]; then
            [ "$waited" = 0 ] || log "box quiet again after ${waited}s"
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            log "box still busy (other processes: ${o}s CPU in 1s: $top); measuring anyway"
            return 0
        fi
        [ "$waited" != 0 ] || log "box busy (other processes: ${o}s CPU in 1s: $top); waiting up to ${QUIET_WAIT}s"
        waited=$((waited + 1))
    done
}

# ---------------------------------------------------------------- load
# run_load scenario peer seconds out [h2load_log]
run_load() {
    local scenario=$1 peer=$2 secs=$3 out=$4 hlog=${5:-}
    local h1="http://127.0.0.1:${PORT_H1[$peer]}/" h2="http://127.0.0.1:${PORT_H2[$peer]}/"
    local cmd=()
    case $scenario in
    h1-keepalive) cmd=(wrk -t"$THREADS" -c"$KA_CONNS" -d"${secs}s" --timeout 10s --latency "${LOAD_HEADERS[@]}" "$h1") ;;
    h1-close) cmd=(wrk -t"$THREADS" -c"$CLOSE_CONNS" -d"${secs}s" --timeout 10s --latency -H 'Connection: close' "${LOAD_HEADERS[@]}" "$h1") ;;
    h2c | h2c-post)
        cmd=(h2load -t"$THREADS" -c"$H2_CLIENTS" -m"$H2_STREAMS" -D "$secs" "${LOAD_HEADERS[@]}")
        [ "$scenario" = h2c ] || cmd+=(-d "$POST_FILE")
        [ -z "$hlog" ] || cmd+=("--log-file=$hlog")
        cmd+=("$h2")
        ;;
    h3) cmd=(bin/bench/h3load -insecure -c "$H3_CONNS" -m "$H3_STREAMS" -d "${secs}s" -timeout 10s -url "https://127.0.0.1:$PORT_H3/") ;;
    *) die "unknown scenario $scenario" ;;
    esac
    { printf '$'; printf ' %q' "${cmd[@]}"; echo; } >"$out"
    timeout -k 5 $((secs + 60)) "${cmd[@]}" >>"$out" 2>&1
}

scenario_tool() {
    case $1 in
    h2c | h2c-post) echo h2load ;;
    h3) echo h3load ;;
    *) echo wrk ;;
    esac
}

RAW_COLS="round	seq	backend	scenario	peer	status	rps	p50_ms	p99_ms	requests	errors	backend_syns	backend_tw	sluice_opened	sluice_ka_closes	proxy_cpu_s	proxy_hwm_kib	backend_cpu_s	other_cpu_s	syn_method	tw_cleared	note"
record() { # key=value ... -> one raw.tsv line
    local -A v=()
    local kv c line=
    for kv in "$@"; do v[${kv%%=*}]=${kv#*=}; done
    for c in $RAW_COLS; do
        line+="${v[$c]:-}"$'\t'
    done
    printf '%s\n' "${line%$'\t'}" >>"$RESULTS/raw.tsv"
}

# measure_cell round seq backend scenario peer attempt may_retry
# Returns 2 when the run was disturbed by other processes (more than
# NOISE_LIMIT CPU seconds) and may_retry is 1: it is then recorded with
# status "noisy" (kept in raw.tsv, left out of the medians) for the caller to
# run again.
measure_cell() {
    local round=$1 seq=$2 backend=$3 scenario=$4 peer=$5 attempt=$6 may_retry=$7
    local dir="$RESULTS/raw/$backend/$scenario/$peer/round$round"
    [ "$attempt" = 1 ] || dir+="-try$attempt"
    local base=(round="$round" seq="$seq" backend="$backend" scenario="$scenario" peer="$peer" syn_method="$SYN_METHOD")
    if [ "$scenario" = h3 ] && [ -n "${PEER_NO_H3[$peer]:-}" ]; then
        record "${base[@]}" status=n/a note="${PEER_NO_H3[$peer]}"
        return 0
    fi
    if [ -n "${PEER_NO_BACKEND[$backend/$peer]:-}" ]; then
        record "${base[@]}" status=n/a note="${PEER_NO_BACKEND[$backend/$peer]}"
        return 0
    fi
    mkdir -p "$dir"
    START_ERR= VERIFY_ERR=
    if ! start_peer "$peer" "$backend" "$dir" "$scenario"; then
        log "$backend/$scenario/$peer round $round: start failed: $START_ERR"
        record "${base[@]}" status=start-failed note="$START_ERR"
        return
    fi
    if ! verify_peer "$peer" "$backend" "$dir" "$scenario"; then
        log "$backend/$scenario/$peer round $round: verification failed: $VERIFY_ERR"
        stop_peer
        record "${base[@]}" status=verify-failed note="$VERIFY_ERR"
        return
    fi
    run_load "$scenario" "$peer" "$WARMUP" "$dir/warmup.txt" || true
    wait_quiet "$dir"
    clear_tw

    local pids bpids tool rc=0 syn0 cpu0 cpu1 hwm1 bcpu0 bcpu1 syns tw other status=ok note=
    pids=$(peer_pids | tr '\n' ' ')
    bpids="${BACKEND_PIDS[$backend]:-}"
    tool=$(scenario_tool "$scenario")
    read -r cpu0 _ _ < <(bin/bench/report proc $pids 2>/dev/null) || true
    read -r bcpu0 _ _ < <(bin/bench/report proc $bpids 2>/dev/null) || true
    syn0=$(syn_read "$backend" "$dir/ss-before.txt")
    local is_sluice=0
    case $peer in sluice | sluice-base | sluice-poll) is_sluice=1 ;; esac
    # Sluice's own count of what it opened, over the measured run only.
    [ "$is_sluice" = 0 ] || curl -s --max-time 5 "http://127.0.0.1:$SLUICE_ADMIN/metrics" >"$dir/sluice-metrics-before.txt" 2>/dev/null || true
    bin/bench/report snap "$dir/.snap0"
    local poller=
    if [ "$peer" = sluice-poll ]; then
        # What an open stats page costs: /stats.json every 2 s, as the page polls.
        start_bg "$dir/poller.log" bash -c "while :; do curl -s -o /dev/null --max-time 2 http://127.0.0.1:$SLUICE_ADMIN/stats.json; echo \$? ; sleep 2; done"
        poller=$BG_PID
    fi

    run_load "$scenario" "$peer" "$DURATION" "$dir/$tool.txt" "$dir/h2load.log" || rc=$?

    if [ -n "$poller" ]; then
        stop_pid "$poller" 2
        forget_pid "$poller"
    fi
    bin/bench/report snap "$dir/.snap1"
    syns=$(syn_diff "$backend" "$syn0" "$dir/ss-before.txt" "$dir/ss-after.txt")
    tw=$(count_tw "$backend")
    read -r cpu1 hwm1 _ < <(bin/bench/report proc $pids 2>/dev/null) || true
    read -r bcpu1 _ _ < <(bin/bench/report proc $bpids 2>/dev/null) || true
    other=-1 note_other=
    { read -r other; read -r note_other; } < <(bin/bench/report other "$dir/.snap0" "$dir/.snap1" $$ ${TOMCAT_PID:-} 2>/dev/null) || true
    rm -f "$dir/.snap0" "$dir/.snap1"
    local sl_opened= sl_ka=
    if [ "$is_sluice" = 1 ]; then
        curl -s --max-time 5 "http://127.0.0.1:$SLUICE_ADMIN/metrics" >"$dir/sluice-metrics.txt" 2>/dev/null || true
        sl_opened=$(bin/bench/report counter "$dir/sluice-metrics-before.txt" "$dir/sluice-metrics.txt" sluice_upstream_connections_opened_total 2>/dev/null) || sl_opened=
        sl_ka=$(bin/bench/report counter "$dir/sluice-metrics-before.txt" "$dir/sluice-metrics.txt" sluice_upstream_keepalive_closes_total 2>/dev/null) || sl_ka=
    fi
    if ! kill -0 "$PEER_PID" 2>/dev/null; then
        status=crashed note="the proxy exited during the run: $(tail -n 2 "$dir/peer.log" | tr '\n\t|' '   ' | cut -c1-120)"
    fi
    stop_peer

    local parsed
    if [ "$status" = ok ]; then
        if parsed=$(bin/bench/report parse "$tool" "$dir/$tool.txt" "$dir/h2load.log" 2>&1); then
            [ "$rc" = 0 ] || note="$tool exit code $rc"
        else
            status=load-failed note="$tool exit $rc: $(grep -v '^\$' "$dir/$tool.txt" | tail -n 2 | tr '\n\t|' '   ' | cut -c1-120)"
        fi
    fi
    rm -f "$dir/h2load.log" # can be tens of MB; its percentiles are in raw.tsv
    local noisy=0
    if [ "${other:--1}" != -1 ] && [ "$(awk -v o="$other" -v l="$NOISE_LIMIT" 'BEGIN{print (o > l)}')" = 1 ]; then
        noisy=1 note="${note:+$note; }other processes used ${other}s CPU: $note_other"
    fi
    if [ "$status" != ok ]; then
        log "$backend/$scenario/$peer round $round: $status: $note"
        record "${base[@]}" status="$status" note="$note" backend_syns="$syns" backend_tw="$tw" tw_cleared="$TW_CLEAR"
        return
    fi
    local rps p50 p99 reqs errs
    IFS=$'\t' read -r rps p50 p99 reqs errs <<<"$parsed"
    [ "$noisy" = 1 ] && [ "$may_retry" = 1 ] && status=noisy
    record "${base[@]}" status="$status" rps="$rps" p50_ms="$p50" p99_ms="$p99" requests="$reqs" errors="$errs" \
        backend_syns="$syns" backend_tw="$tw" sluice_opened="$sl_opened" sluice_ka_closes="$sl_ka" \
        proxy_cpu_s="$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN{printf "%.2f", b-a}')" proxy_hwm_kib="$hwm1" \
        backend_cpu_s="$(awk -v a="${bcpu0:-0}" -v b="${bcpu1:-0}" 'BEGIN{printf "%.2f", b-a}')" \
        other_cpu_s="$other" tw_cleared="$TW_CLEAR" note="$note"
    log "$(printf '%-6s %-12s %-10s r%d: %8.0f req/s  p50 %7.1f ms  p99 %7.1f ms  err %s  backend conns +%s  TW %s  cpu %.1fs' \
        "$backend" "$scenario" "$peer" "$round" "$rps" "$p50" "$p99" "$errs" "$syns" "$tw" "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN{print b-a}')")$([ "$noisy" = 0 ] || echo "  [noisy: others used ${other}s CPU]")"
    [ "$status" != noisy ] || return 2
}

# ---------------------------------------------------------------- idle connections
# idle_fds peer n -> file descriptors the proxy needs, in one process, to hold
# n client connections (plus listeners, backend connections, logs): HAProxy
# refuses to start unless 2 fds per maxconn fit, and its maxconn must leave
# room for n + 100; the others need about one fd per connection.
idle_fds() {
    case $1 in
    haproxy-*) echo $((2 * ($2 + 100) + 200)) ;;
    *) echo $(($2 + 300)) ;;
    esac
}

nofile_text() {
    if [ "$NOFILE" = "$NOFILE_HARD" ]; then echo "RLIMIT_NOFILE hard limit $NOFILE"; else echo "RLIMIT_NOFILE $NOFILE (hard $NOFILE_HARD)"; fi
}

# Client side: one idleconns process holds at most this many connections
# (its own fd limit, less slack) and at most 25,000 from one source IP (the
# ephemeral port range has about 28,000 ports per source address).
IDLE_PER_CLIENT=25000

idle_test() { # peer proto n
    local peer=$1 proto=$2 asked=$3 dir="$RESULTS/raw/idle/$1-$2-$3"
    local port=${PORT_H1[$peer]} n=$3
    [ "$proto" = h1 ] || port=${PORT_H2[$peer]}
    local need cap
    need=$(idle_fds "$peer" "$n")
    cap=$(($(peer_maxconn "$peer") - 100))
    local row=(peer="$peer" proto="$proto" n_asked="$asked")
    if [ "$need" -gt "$NOFILE" ]; then
        # A count just above what fits is held at the cap (HAProxy: 9,800 of
        # 10,000 with 20,000 fds); far above it, the row says why it was not run.
        if [ $((cap * 100)) -lt $((n * 95)) ]; then
            idle_record "${row[@]}" n_target="$n" status=not-run \
                note="$(nofile_text) < $need fds the proxy needs in one process for $n connections"
            log "idle $peer $proto $n: not run: $(nofile_text) < $need fds needed by the proxy"
            return
        fi
        n=$cap
    fi
    row+=(n_target="$n")
    # Split the client side over several idleconns processes (each with its
    # own source IP, 127.0.0.1, .2, ...) when one would not fit.
    local per=$((NOFILE - 1100))
    [ "$per" -le "$IDLE_PER_CLIENT" ] || per=$IDLE_PER_CLIENT
    local nproc=$(((n + per - 1) / per)) i
    if [ "$per" -lt 1 ] || [ "$nproc" -gt 250 ]; then
        idle_record "${row[@]}" status=not-run note="$(nofile_text): $n connections would need more than 250 client processes"
        return
    fi
    mkdir -p "$dir"
    START_ERR= VERIFY_ERR=
    if ! start_peer "$peer" fast "$dir"; then
        idle_record "${row[@]}" status=start-failed note="$START_ERR"
        return
    fi
    if ! verify_peer "$peer" fast "$dir"; then
        stop_peer
        idle_record "${row[@]}" status=verify-failed note="$VERIFY_ERR"
        return
    fi
    sleep 1
    local pids rss0 rss1 ready alive deadline ipids=() outs=() k share src
    pids=$(peer_pids | tr '\n' ' ')
    # Warm-up: open and close IDLE_WARM connections first, so the heap
    # growth of a fresh process's first burst (a Go runtime keeps it) is not
    # counted against the idle connections measured next.
    if [ "$IDLE_WARM" -gt 0 ]; then
        k=$dir/idleconns-warmup.txt
        start_bg "$k" bin/bench/idleconns -target "127.0.0.1:$port" -n "$((IDLE_WARM < n ? IDLE_WARM : n))" -proto "$proto" -hold 5m
        deadline=$((SECONDS + 180))
        while [ $SECONDS -lt $deadline ] && ! grep -q '^ready' "$k" 2>/dev/null && kill -0 "$BG_PID" 2>/dev/null; do
            sleep 0.5
        done
        stop_pid "$BG_PID" 30
        forget_pid "$BG_PID"
        sleep 2
    fi
    read -r _ _ rss0 < <(bin/bench/report proc $pids) || true
    for ((i = 0; i < nproc; i++)); do
        share=$((n / nproc + (i < n % nproc ? 1 : 0)))
        src=()
        [ "$i" = 0 ] || src=(-src "127.0.0.$((i + 1))")
        k=$dir/idleconns$([ "$nproc" = 1 ] || echo "-$i").txt
        start_bg "$k" bin/bench/idleconns -target "127.0.0.1:$port" -n "$share" -proto "$proto" -hold 5m "${src[@]}"
        ipids+=("$BG_PID") outs+=("$k")
    done
    deadline=$((SECONDS + 180 * nproc))
    local all_ready=0 missing
    while [ $SECONDS -lt $deadline ]; do
        missing=0
        for ((i = 0; i < nproc; i++)); do
            grep -q '^ready' "${outs[$i]}" 2>/dev/null && continue
            missing=1
            kill -0 "${ipids[$i]}" 2>/dev/null || break 2
        done
        [ "$missing" = 1 ] || { all_ready=1; break; }
        sleep 0.5
    done
    if [ "$all_ready" != 1 ]; then
        for i in "${ipids[@]}"; do stop_pid "$i" 5; forget_pid "$i"; done
        stop_peer
        idle_record "${row[@]}" status=failed note="idleconns did not finish: $(cat "${outs[@]}" | grep -v '^ready' | tail -n 2 | tr '\n\t|' '   ')"
        return
    fi
    sleep 3
    read -r _ _ rss1 < <(bin/bench/report proc $pids) || true
    for i in "${ipids[@]}"; do stop_pid "$i" 30; forget_pid "$i"; done
    local open=0 nalive=0 o a notes=
    for k in "${outs[@]}"; do
        o=$(sed -n 's/^ready open=\([0-9]*\).*/\1/p' "$k")
        a=$(awk '/^alive/ {split($2, x, "/"); print x[1]}' "$k")
        open=$((open + ${o:-0})) nalive=$((nalive + ${a:-0}))
        notes+="${notes:+; }$(sed -n 's/^ready //p' "$k")"
    done
    [ "$nproc" = 1 ] || notes="$nproc idleconns processes: $notes"
    stop_peer
    idle_record "${row[@]}" status=ok n_open="$open" n_alive="$nalive" rss_before_kib="$rss0" rss_after_kib="$rss1" note="$notes"
    log "idle $peer $proto $n: $open open, alive $nalive, RSS ${rss0} -> ${rss1} KiB ($(awk -v a="$rss0" -v b="$rss1" -v n="$open" 'BEGIN{ if (n>0) printf "%.1f", (b-a)/n}') KiB/conn)"
}

IDLE_COLS="peer	proto	status	n_asked	n_target	n_open	n_alive	rss_before_kib	rss_after_kib	note"
idle_record() {
    local -A v=()
    local kv c line=
    for kv in "$@"; do v[${kv%%=*}]=${kv#*=}; done
    for c in $IDLE_COLS; do line+="${v[$c]:-}"$'\t'; done
    printf '%s\n' "${line%$'\t'}" >>"$RESULTS/idle.tsv"
}

# ---------------------------------------------------------------- main
mkdir -p "$RESULTS"
POST_FILE=$RESULTS/post.bin # the h2c-post scenario's request body, made only for it
case " $SCENARIOS " in *" h2c-post "*) head -c "$POST_BYTES" /dev/zero | tr '\0' p >"$POST_FILE" ;; esac
[ "$(dirname "$RESULTS")" != "$here/results" ] || ln -sfn "$(basename "$RESULTS")" "$here/results/latest" 2>/dev/null || true
log "results: $RESULTS"

for p in $(seq $((PORT_BASE + 1)) $((PORT_BASE + 69))); do
    if port_open "$p"; then
        die "port $p is already in use (set BENCH_PORT_BASE to move the whole block)"
    fi
done

install_deps

# File descriptors: 2000 wrk connections plus 10,000 idle connections need
# more than the usual 1024. Only the soft limit can be raised without
# CAP_SYS_RESOURCE; the hard limit is what this machine allows.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" != unlimited ] || NOFILE=1048576
NOFILE_HARD=$(ulimit -Hn)
[ "$NOFILE_HARD" != unlimited ] || NOFILE_HARD=1048576
if [ "$NOFILE" -lt $((KA_CONNS + 500)) ]; then
    log "RLIMIT_NOFILE is $NOFILE: too low for $KA_CONNS connections, using 1000"
    KA_CONNS=1000
fi
log "RLIMIT_NOFILE $NOFILE"

command -v wrk >/dev/null || die "wrk is missing"
command -v h2load >/dev/null || die "h2load (nghttp2-client) is missing"
command -v curl >/dev/null || die "curl is missing"

log "building bin/sluice and the helpers"
BUILD_NOTE=
if [ -n "$SLUICE_BIN_OVERRIDE" ]; then
    [ -x "$SLUICE_BIN_OVERRIDE" ] || die "BENCH_SLUICE_BIN=$SLUICE_BIN_OVERRIDE is not executable"
    log "using BENCH_SLUICE_BIN=$SLUICE_BIN_OVERRIDE (not building)"
elif ! make -s build >"$RESULTS/build.log" 2>&1; then
    cat "$RESULTS/build.log" >&2
    [ -x bin/sluice ] || die "make build failed and there is no bin/sluice"
    BUILD_NOTE="make build failed (see build.log); measured the existing bin/sluice"
    log "WARNING: $BUILD_NOTE"
fi
mkdir -p bin/bench
for t in fastbackend idleconns report h3load; do
    go build -o "bin/bench/$t" "./e2e/bench/$t"
done

setup_syn_counter

# --- HTTP/3: a self-signed certificate for 127.0.0.1, and UDP buffers
TLS_CERT="$RESULTS/tls/cert.pem" TLS_KEY="$RESULTS/tls/key.pem"
UDP_NOTE=
case " $SCENARIOS " in *" h3 "*)
    mkdir -p "$RESULTS/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
        -subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -keyout "$TLS_KEY" -out "$TLS_CERT" >"$RESULTS/tls/openssl.log" 2>&1 ||
        log "openssl could not make the h3 certificate (see tls/openssl.log); Sluice's h3 runs will fail to start"
    # quic-go asks for 7 MiB socket buffers (Sluice sets them with
    # SO_RCVBUFFORCE when it may); the kernel caps SO_RCVBUF at rmem_max.
    for k in net.core.rmem_max net.core.wmem_max; do
        v=$(sysctl -n "$k" 2>/dev/null || echo 0)
        if [ "$v" -ge 7500000 ]; then
            UDP_NOTE+="${UDP_NOTE:+, }$k $v"
        elif $SUDO sysctl -qw "$k=7500000" >/dev/null 2>&1; then
            SYSCTL_RESTORE[$k]=$v
            UDP_NOTE+="${UDP_NOTE:+, }$k raised from $v to 7500000 for the run"
        else
            UDP_NOTE+="${UDP_NOTE:+, }$k $v (could not raise it: quic-go runs with smaller UDP buffers)"
        fi
    done
    log "h3: $UDP_NOTE"
    ;;
esac

# --- backends
declare -A BACKEND_PIDS=()
case " $BACKENDS " in *" tomcat "* | *" tomcat-h1 "*)
    TOMCAT_BASE="$RESULTS/tomcat"
    deploy/tomcat/setup.sh "$TOMCAT_BASE" "$TOMCAT_A" "$TOMCAT_B" "$TOMCAT_H1" >&2
    # tomcat-h1's two connectors go into this run's server.xml only (the
    # e2e suite's Tomcat keeps deploy/tomcat/server.xml as it is).
    sed -e "s/@ADDRESS@/127.0.0.1/g" -e "s/@PORT_A@/$TOMCAT_KA_A/g" -e "s/@PORT_B@/$TOMCAT_KA_B/g" \
        "$here/peers/tomcat-h1-connectors.xml" >"$TOMCAT_BASE/conf/tomcat-h1-connectors.xml"
    awk 'FNR == NR { frag = frag $0 "\n"; next } /<Engine / && !done { printf "%s", frag; done = 1 } { print }' \
        "$TOMCAT_BASE/conf/tomcat-h1-connectors.xml" "$TOMCAT_BASE/conf/server.xml" >"$TOMCAT_BASE/conf/server.xml.tmp"
    mv -f "$TOMCAT_BASE/conf/server.xml.tmp" "$TOMCAT_BASE/conf/server.xml"
    deploy/tomcat/start.sh "$TOMCAT_BASE" >&2
    TOMCAT_PID=$(cat "$TOMCAT_BASE/tomcat.pid")
    wait_ports "$TOMCAT_PID" 30 "$TOMCAT_KA_A" "$TOMCAT_KA_B" || die "Tomcat's tomcat-h1 connectors ($TOMCAT_KA_A, $TOMCAT_KA_B) did not open; see $TOMCAT_BASE/logs"
    BACKEND_PIDS[tomcat]=$TOMCAT_PID BACKEND_PIDS[tomcat-h1]=$TOMCAT_PID
    log "Tomcat pid $TOMCAT_PID: JIT warm-up directly on its h2c and HTTP/1.1 paths"
    h2load -t"$THREADS" -c 32 -m 10 -D $((WARMUP * 3)) "http://127.0.0.1:$TOMCAT_A/" >"$RESULTS/tomcat-warmup-h2.txt" 2>&1 || true
    wrk -t"$THREADS" -c 64 -d $((WARMUP * 3))s "http://127.0.0.1:$TOMCAT_B/" >"$RESULTS/tomcat-warmup-h1.txt" 2>&1 || true
    case " $BACKENDS " in *" tomcat-h1 "*)
        wrk -t"$THREADS" -c 64 -d $((WARMUP * 3))s "http://127.0.0.1:$TOMCAT_KA_A/" >"$RESULTS/tomcat-warmup-h1-ka100.txt" 2>&1 || true
        ;;
    esac
    ;;
esac
need_fast=" $BACKENDS "
[ "$IDLE" != 1 ] || need_fast+="fast "
case $need_fast in *" fast "*)
    start_bg "$RESULTS/fastbackend.log" bin/bench/fastbackend -listen "127.0.0.1:$FAST_A" -listen "127.0.0.1:$FAST_B"
    BACKEND_PIDS[fast]=$BG_PID
    wait_ports "$BG_PID" 10 "$FAST_A" "$FAST_B" || die "fastbackend did not start: $(cat "$RESULTS/fastbackend.log")"
    ;;
esac

# --- metadata
{
    printf 'id\tlabel\n'
    printf 'tomcat\tTomcat %s, h2c connectors, maxThreads 16 each (one JVM)\n' "$(dpkg-query -W -f='${Version}' tomcat10 2>/dev/null | cut -d- -f1)"
    printf 'fast\tfastbackend (Go net/http, h2c + HTTP/1.1, answers hello)\n'
    printf 'tomcat-h1\tTomcat %s, HTTP/1.1-only connectors, maxKeepAliveRequests 100 (stock), maxThreads 16 each (same JVM)\n' "$(dpkg-query -W -f='${Version}' tomcat10 2>/dev/null | cut -d- -f1)"
} >"$RESULTS/backends.tsv"
{
    printf 'id\tlabel\n'
    printf 'h1-keepalive\tHTTP/1.1 keep-alive, %s conns\n' "$KA_CONNS"
    printf 'h1-close\tHTTP/1.1 Connection: close, %s conns\n' "$CLOSE_CONNS"
    printf 'h2c\th2c, %s clients × %s streams\n' "$H2_CLIENTS" "$H2_STREAMS"
    printf 'h2c-post\th2c POSTs of %s bytes, %s clients × %s streams\n' "$POST_BYTES" "$H2_CLIENTS" "$H2_STREAMS"
    printf 'h3\tHTTP/3, %s QUIC conns × %s streams\n' "$H3_CONNS" "$H3_STREAMS"
} >"$RESULTS/scenarios.tsv"
{
    # backend: empty for a peer's label, or the backend where it differs.
    printf 'id\tlabel\tbackend\n'
    for p in $PEERS; do printf '%s\t%s\t\n' "$p" "${PEER_LABEL[$p]:-$p}"; done
    for k in "${!BACKEND_PEER_LABEL[@]}"; do
        case " $PEERS " in *" ${k#*/} "*) printf '%s\t%s\t%s\n' "${k#*/}" "${BACKEND_PEER_LABEL[$k]}" "${k%%/*}" ;; esac
    done
} >"$RESULTS/peers.tsv"
printf '%s\n' "$RAW_COLS" >"$RESULTS/raw.tsv"
printf '%s\n' "$IDLE_COLS" >"$RESULTS/idle.tsv"

version_of() { "$@" 2>&1 | head -n1 || true; }
{
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); $("$SLUICE_BIN" version 2>/dev/null | head -n1)${SLUICE_BIN_OVERRIDE:+ (BENCH_SLUICE_BIN=$SLUICE_BIN_OVERRIDE)}"
    echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -h | awk '/^Mem:/ {print $2}') RAM, kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "- tools: $(version_of haproxy -v); $(version_of nginx -v); caddy $(version_of caddy version); tomcat10 $(dpkg-query -W -f='${Version}' tomcat10 2>/dev/null); $(version_of java -version); $(go version); $(version_of wrk -v); h2load $(dpkg-query -W -f='${Version}' nghttp2-client 2>/dev/null)"
    echo "- parameters: ROUNDS=$ROUNDS, ${DURATION}s per run after ${WARMUP}s warm-up (same scenario), wrk/h2load threads $THREADS, RLIMIT_NOFILE $NOFILE$([ ${#LOAD_HEADERS[@]} = 0 ] || echo ", browser header fields (BENCH_BROWSER_HEADERS=1): $((${#LOAD_HEADERS[@]} / 2)) fields besides Host")"
    [ -z "$SLUICE_BASE_BIN" ] || echo "- sluice-base: $SLUICE_BASE_BIN ($("$SLUICE_BASE_BIN" version 2>/dev/null | head -n1))"
    echo "- backend connections opened: $([ "$SYN_METHOD" = nft ] && echo 'SYN packets to the backend ports (nftables counter on lo)' || echo 'new sockets in ss snapshots before/after (lower bound)'); TIME_WAIT: sockets with a backend port at either end right after the run"
    [ -z "$CADDY_NOTE" ] || echo "- $CADDY_NOTE"
    [ -z "$BUILD_NOTE" ] || echo "- WARNING: $BUILD_NOTE"
    [ -z "$UDP_NOTE" ] || echo "- HTTP/3 (h3, Sluice only; load from e2e/bench/h3load, quic-go $(go list -m -f '{{.Version}}' github.com/quic-go/quic-go 2>/dev/null)): UDP buffers: $UDP_NOTE"
    echo "- idle connections: h1 [${IDLE_CONNS[h1]}], h2 [${IDLE_CONNS[h2]}]; $(nofile_text)"
    echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RESULTS/meta.md"

# --- the rounds
read -r -a peer_list <<<"$PEERS"
read -r -a backend_list <<<"$BACKENDS"
read -r -a scenario_list <<<"$SCENARIOS"
np=${#peer_list[@]}
cells=$((ROUNDS * ${#backend_list[@]} * ${#scenario_list[@]} * np))
log "measuring: $ROUNDS round(s) × backends [$BACKENDS] × scenarios [$SCENARIOS] × peers [$PEERS] = $cells runs of ${DURATION}s"
seq_no=0 retries_used=0
for ((r = 1; r <= ROUNDS; r++)); do
    for backend in "${backend_list[@]}"; do
        si=0
        for scenario in "${scenario_list[@]}"; do
            # Rotate the peer order per round (and per scenario), so no peer
            # always runs first or right after the same neighbour.
            off=$(((r - 1 + si) % np))
            for ((i = 0; i < np; i++)); do
                peer=${peer_list[$(((off + i) % np))]}
                seq_no=$((seq_no + 1))
                attempt=1
                while :; do
                    may_retry=0
                    [ "$attempt" -gt "$NOISY_RETRIES" ] || [ "$retries_used" -ge "$RETRY_BUDGET" ] || may_retry=1
                    crc=0
                    measure_cell "$r" "$seq_no" "$backend" "$scenario" "$peer" "$attempt" "$may_retry" || crc=$?
                    [ "$crc" = 2 ] || break
                    retries_used=$((retries_used + 1)) attempt=$((attempt + 1))
                    log "re-running $backend/$scenario/$peer round $r (retry $retries_used of at most $RETRY_BUDGET)"
                done
            done
            si=$((si + 1))
        done
    done
done

if [ -n "$TOMCAT_BASE" ]; then
    deploy/tomcat/stop.sh "$TOMCAT_BASE" >&2 || true
fi

# --- idle connections (HAProxy once: both variants share the same frontend)
if [ "$IDLE" = 1 ]; then
    for peer in $PEERS; do
        [ "$peer" != haproxy-h2 ] || case " $PEERS " in *" haproxy-h1 "*) continue ;; esac
        [ "$peer" != sluice-poll ] || continue # the same process as sluice for idle connections
        for proto in $IDLE_PROTOS; do
            for n in ${IDLE_CONNS[$proto]:-}; do
                idle_test "$peer" "$proto" "$n"
            done
        done
    done
fi

# --- report
{
    echo "### Sluice benchmark, $STAMP$([ "$QUICK" = 1 ] && echo ' (BENCH_QUICK=1)')"
    echo
    cat "$RESULTS/meta.md"
    bin/bench/report table "$RESULTS"
    echo
    echo "Medians over the rounds. Raw numbers per round: raw.tsv, idle.tsv; tool output under raw/. Total time $((SECONDS - T0)) s."
} >"$RESULTS/results.md"
cat "$RESULTS/results.md"
log "done in $((SECONDS - T0)) s; results in $RESULTS"
