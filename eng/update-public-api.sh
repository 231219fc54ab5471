#!/usr/bin/env bash
# Adds every new public symbol of the given library projects to their PublicAPI.Unshipped.txt
# (the RS0016 code fix), and removes entries of symbols that no longer exist (RS0017).
# Review the diff of PublicAPI.*.txt afterwards: that file is the public surface.
# Usage: eng/update-public-api.sh src/Har.Inference [src/Har.Drift ...]
set -euo pipefail
for project in "$@"; do
  dotnet format analyzers "$project" --diagnostics RS0016 RS0017 --severity info --no-restore -v q || true
done
