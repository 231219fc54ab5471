#!/usr/bin/env bash
# PostgreSQL for the audit log's PostgreSQL tests (tests/Har.Audit.Tests start a throwaway cluster in a temp folder
# with initdb/pg_ctl on a Unix socket). Installs the Debian package when no initdb is found, and makes sure the
# unprivileged 'postgres' user exists (the server refuses to run as root; the tests run it as that user).
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  if ! command -v initdb >/dev/null 2>&1; then
    echo "PostgreSQL not found: installing the Debian package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends postgresql
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  fi
fi
if ! id -u postgres >/dev/null 2>&1; then
  useradd --system --user-group --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
fi
echo "PostgreSQL binaries: ${bin:-$(dirname "$(command -v initdb)")} ($("${bin:+$bin/}initdb" --version))"
