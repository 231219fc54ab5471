#!/usr/bin/env bash
# Installs Prometheus (promtool, and the server the end-to-end test scrapes with) and checks the
# committed alert rules: syntax (promtool check rules) and behaviour (promtool test rules).
set -euo pipefail
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # The Debian package starts a system service; the tests run their own instance on loopback.
  (systemctl stop prometheus 2>/dev/null || service prometheus stop 2>/dev/null || pkill -x prometheus || true) >/dev/null 2>&1
fi
promtool check rules deploy/prometheus/har-rules.yml
promtool check config deploy/prometheus/prometheus.yml
promtool test rules deploy/prometheus/har-rules.test.yml
