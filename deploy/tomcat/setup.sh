#!/usr/bin/env bash
# Usage: setup.sh BASE_DIR PORT_A PORT_B PORT_H1
# Creates (or refreshes) a CATALINA_BASE at BASE_DIR running the Debian
# tomcat10 package's CATALINA_HOME with Sluice's server.xml and test webapp.
# Safe to re-run: config and webapp are rewritten, logs/work are kept.
# Env: CATALINA_HOME (default /usr/share/tomcat10), TOMCAT_ADDRESS (default 127.0.0.1),
#      TOMCAT_EXAMPLES: the directory of Tomcat's examples webapp (Debian package
#      tomcat10-examples: /usr/share/tomcat10-examples/examples), deployed at
#      /examples when set (the e2e WebSocket and trailer tests use it).
set -euo pipefail

if [ $# -ne 4 ]; then
    echo "usage: $0 BASE_DIR PORT_A PORT_B PORT_H1" >&2
    exit 2
fi
base=$1 port_a=$2 port_b=$3 port_h1=$4
for p in "$port_a" "$port_b" "$port_h1"; do
    if ! [[ $p =~ ^[0-9]+$ ]] || [ "$p" -lt 1 ] || [ "$p" -gt 65535 ]; then
        echo "setup.sh: bad port '$p'" >&2
        exit 2
    fi
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
home=${CATALINA_HOME:-/usr/share/tomcat10}
address=${TOMCAT_ADDRESS:-127.0.0.1}

if [ ! -f "$home/bin/bootstrap.jar" ]; then
    echo "setup.sh: no Tomcat at CATALINA_HOME=$home (apt-get install tomcat10, or run 'make deps')" >&2
    exit 1
fi
# Debian ships pristine copies in $home/etc; /etc/tomcat10 may carry local edits.
etc=$home/etc
[ -f "$etc/web.xml" ] || etc=/etc/tomcat10

mkdir -p "$base"
base=$(cd "$base" && pwd)
mkdir -p "$base"/{conf,logs,temp,work,webapps}

for f in web.xml context.xml catalina.properties; do
    cp -f "$etc/$f" "$base/conf/$f"
done
cp -f "$here/logging.properties" "$base/conf/logging.properties"

sed -e "s/@ADDRESS@/$address/g" \
    -e "s/@PORT_A@/$port_a/g" \
    -e "s/@PORT_B@/$port_b/g" \
    -e "s/@PORT_H1@/$port_h1/g" \
    "$here/server.xml" >"$base/conf/server.xml.tmp"
mv -f "$base/conf/server.xml.tmp" "$base/conf/server.xml"

# Replace the webapp whole so removed JSPs do not linger.
rm -rf "$base/webapps/ROOT.tmp"
cp -R "$here/webapp" "$base/webapps/ROOT.tmp"
rm -rf "$base/webapps/ROOT"
mv "$base/webapps/ROOT.tmp" "$base/webapps/ROOT"

# Tomcat's own examples webapp, in place, when asked for (about 1.5 s of startup).
rm -f "$base/conf/Catalina/localhost/examples.xml"
if [ -n "${TOMCAT_EXAMPLES:-}" ]; then
    if [ ! -f "$TOMCAT_EXAMPLES/WEB-INF/web.xml" ]; then
        echo "setup.sh: no examples webapp at TOMCAT_EXAMPLES=$TOMCAT_EXAMPLES (apt-get install tomcat10-examples, or run 'make deps')" >&2
        exit 1
    fi
    mkdir -p "$base/conf/Catalina/localhost"
    cat >"$base/conf/Catalina/localhost/examples.xml" <<XML
<Context docBase="$TOMCAT_EXAMPLES">
  <!-- Debian links the webapp's jars from /usr/share/java. -->
  <Resources allowLinking="true" />
</Context>
XML
fi

# start.sh reads this to know which ports to wait for.
cat >"$base/sluice-tomcat.env" <<ENV
ADDRESS=$address
PORT_A=$port_a
PORT_B=$port_b
PORT_H1=$port_h1
ENV

echo "setup.sh: CATALINA_BASE=$base (h2c: $address:$port_a, $address:$port_b; h1 only: $address:$port_h1)"
