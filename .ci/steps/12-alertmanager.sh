#!/usr/bin/env bash
# Checks the Alertmanager routing example (deploy/alertmanager/alertmanager.yml): syntax (amtool check-config) and
# where each tier goes (amtool config routes test): critical pages, backup and delivery warnings go to the platform
# queue, other warnings open a ticket.
set -euo pipefail
if ! command -v amtool >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null
  # The Debian package starts a system service; nothing here needs it.
  (systemctl stop prometheus-alertmanager 2>/dev/null || service prometheus-alertmanager stop 2>/dev/null || true) >/dev/null 2>&1
fi
config=deploy/alertmanager/alertmanager.yml
amtool check-config "$config"
route() {
  local expected=$1; shift
  amtool config routes test --config.file="$config" --verify.receivers="$expected" "$@" >/dev/null 2>&1 \
    || { echo "alert {$*} is not routed to $expected" >&2; exit 1; }
}
route har-pager severity=critical alertname=HarHighErrorRate model=1.1.0
route har-pager severity=critical alertname=HarRollbackVerificationFailed
route har-pager severity=critical alertname=HarMemoryCritical instance=a
route har-tickets severity=warning alertname=HarErrorRateElevated model=1.1.0
route har-tickets severity=warning alertname=HarCpuHigh instance=a
route har-platform-tickets severity=warning alertname=HarBackupFailed
route har-platform-tickets severity=warning alertname=HarBackupStale job=har-service
route har-pager severity=critical alertname=HarBackupStaleCritical job=har-service
route har-platform-tickets severity=warning alertname=HarChangeFailureRateHigh
route har-tickets severity=warning alertname=HarDeviceDriftAlarm cause=Units
route har-pager severity=critical alertname=HarFleetDriftAlarm
route har-tickets severity=warning alertname=HarEstimatedAccuracyDrop
echo "alertmanager routes: ok"
