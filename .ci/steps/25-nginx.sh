#!/usr/bin/env bash
# nginx for the fleet end-to-end test (tests/Har.Fleet.Tests) and scripts/fleet-local.sh: a consistent-hash proxy in
# front of the service replicas, run by the tests with their own config on loopback ports. Installs the Debian package
# when no nginx binary is found, and stops the system instance the package may start (the tests need none).
set -euo pipefail
find_nginx() { command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true; }
nginx_bin=$(find_nginx)
if [ -z "$nginx_bin" ]; then
  echo "nginx not found: installing the Debian package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nginx >/dev/null
  nginx_bin=$(find_nginx)
  # The package starts a system instance on port 80 when it can; stop that one (by the pid it wrote), nothing else.
  if [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    "$nginx_bin" -s quit 2>/dev/null || kill -QUIT "$(cat /run/nginx.pid)" || true
  fi
fi
[ -n "$nginx_bin" ] || { echo "nginx is still missing after apt-get install nginx" >&2; exit 1; }
# The test's config needs the upstream hash module (hash ... consistent) and map: both are built into Debian's nginx.
conf=$(mktemp -d)
trap 'rm -rf "$conf"' EXIT
cat >"$conf/nginx.conf" <<CONF
error_log stderr;
pid $conf/nginx.pid;
events {}
http {
  access_log off;
  map \$uri \$stream_id { ~^/v1/streams/(?<id>[^/]+)/ \$id; default \$http_x_stream_id; }
  upstream replicas { hash \$stream_id consistent; server 127.0.0.1:1; server 127.0.0.1:2; }
  server { listen 127.0.0.1:1; location / { proxy_pass http://replicas; } }
}
CONF
"$nginx_bin" -t -q -e stderr -p "$conf" -c "$conf/nginx.conf"
echo "nginx: $nginx_bin ($("$nginx_bin" -v 2>&1)), consistent hash OK"
