#!/usr/bin/env bash
# fuzz.sh: run every native Go fuzz target in the module for a short while.
#
# Finds `func FuzzXxx(f *testing.F)` in *_test.go files and runs each one
# alone (go test accepts one fuzz target per run) for FUZZTIME executions
# (default 100000x). A crasher fails the run and is saved under the
# package's testdata/fuzz/, from where plain `go test` replays it from then on.
#
# The budget is a count, not a duration: with a duration, Go 1.26's fuzz
# coordinator can report a spurious "context deadline exceeded" when the
# time runs out while a worker is busy (golang/go#75804, fixed in Go 1.27),
# and CI must never fail on luck. -timeout still bounds a stuck target.
set -euo pipefail

fuzztime=${FUZZTIME:-100000x}
cd "$(dirname "$0")/.."

targets=0
while IFS=: read -r file name; do
	dir=./$(dirname "$file")
	echo "fuzz: $name in $dir for $fuzztime"
	go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" -timeout=5m "$dir"
	targets=$((targets + 1))
done < <(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . |
	sed -E 's#^\./##; s#\($##; s#:func #:#' | sort)

echo "fuzz: $targets target(s) run"
