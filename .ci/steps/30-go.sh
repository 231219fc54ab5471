#!/usr/bin/env bash
# Go and golang.org/x/mod for the external conformance test of the audit log (tests/Har.Audit.Tests,
# GoTlogVerifierTests: Go's reference sumdb/note and sumdb/tlog code verifies Har's checkpoints and proofs through
# tests/external/tlog-verify, built in GOPATH mode). Installs the Debian packages when `go` or the x/mod sources are
# missing, then prints the Go version and where x/mod was found.
set -euo pipefail
xmod_in() { [ -f "$1/src/golang.org/x/mod/sumdb/note/note.go" ] && [ -f "$1/src/golang.org/x/mod/sumdb/tlog/tlog.go" ]; }
find_xmod() {
  local d
  IFS=: read -ra dirs <<<"${GOPATH:-}"
  for d in "${dirs[@]}" /usr/share/gocode; do
    if [ -n "$d" ] && xmod_in "$d"; then echo "$d"; return 0; fi
  done
  return 1
}
if ! command -v go >/dev/null 2>&1 || ! find_xmod >/dev/null; then
  echo "Go or golang.org/x/mod not found: installing the Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends golang-go golang-golang-x-mod-dev
fi
echo "$(go version); golang.org/x/mod in $(find_xmod)/src/golang.org/x/mod"
