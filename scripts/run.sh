#!/usr/bin/env bash
# `make run`: start the local Tomcat (deploy/tomcat, CATALINA_BASE .run/tomcat,
# h2c on 18081/18082, HTTP/1.1 only on 18083), then Sluice in the foreground
# with sluice.yaml. Ctrl-C (or any exit) stops Sluice and then Tomcat.
# Env: RUN_CONFIG (default sluice.yaml), TOMCAT_PORTS (default "18081 18082 18083").
set -euo pipefail
cd "$(dirname "$0")/.."

config=${RUN_CONFIG:-sluice.yaml}
read -r port_a port_b port_h1 <<<"${TOMCAT_PORTS:-18081 18082 18083}"
base=.run/tomcat

if [ ! -x bin/sluice ]; then
    echo "run.sh: bin/sluice missing; use 'make run' (it builds first)" >&2
    exit 1
fi

stop_tomcat() {
    trap - EXIT INT TERM
    deploy/tomcat/stop.sh "$base" || true
}
# Set before start.sh so a Ctrl-C during Tomcat's startup also stops it.
trap stop_tomcat EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

deploy/tomcat/setup.sh "$base" "$port_a" "$port_b" "$port_h1"
deploy/tomcat/start.sh "$base"

# Say where to look, from the config actually used.
listen=$(sed -nE 's/^listen:[[:space:]]*"?([^"#[:space:]]*)"?.*/\1/p' "$config" | head -n1)
admin=$(sed -nE 's/^admin:[[:space:]]*"?([^"#[:space:]]*)"?.*/\1/p' "$config" | head -n1)
listen_port=${listen##*:}
listen_host=${listen%:*}
[ -n "$listen_host" ] && [ "$listen_host" != "0.0.0.0" ] || listen_host=127.0.0.1
url="http://$listen_host:$listen_port"
cat <<MSG

  Sluice ($config) -> Tomcat h2c 127.0.0.1:$port_a, 127.0.0.1:$port_b  (HTTP/1.1 only: 127.0.0.1:$port_h1)

  Send requests to  $url/
    curl $url/
    curl --http2-prior-knowledge $url/proto      # h2c client; prints the protocol Tomcat saw
    curl --data-binary @/etc/os-release $url/echo
    h2load -n 100000 -c 50 -m 10 $url/
    wrk -t2 -c 1000 -d 10s $url/
  Metrics           http://$admin/metrics   (also /healthz, /readyz)
    curl -s http://$admin/metrics | grep '^sluice_upstream'
  Tomcat log        $base/logs/catalina.out

  Ctrl-C stops Sluice and Tomcat.

MSG

# Not exec: the shell must survive Sluice to run the trap that stops Tomcat.
# Ctrl-C reaches Sluice directly (same process group), so it shuts down
# gracefully; the INT trap runs once it has exited.
status=0
bin/sluice run --config "$config" || status=$?
exit "$status"
