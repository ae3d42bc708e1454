#!/usr/bin/env bash
# fuzz.sh: run every native Go fuzz target in the module for a short while.
#
# Finds `func FuzzXxx(f *testing.F)` in *_test.go files and runs each one
# alone (go test accepts one fuzz target per run) for FUZZTIME (default 10s).
# A crasher fails the run and is saved under the package's testdata/fuzz/,
# from where plain `go test` replays it from then on.
set -euo pipefail

fuzztime=${FUZZTIME:-10s}
cd "$(dirname "$0")/.."

targets=0
while IFS=: read -r file name; do
	dir=./$(dirname "$file")
	echo "fuzz: $name in $dir for $fuzztime"
	go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "$dir"
	targets=$((targets + 1))
done < <(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . |
	sed -E 's#^\./##; s#\($##; s#:func #:#' | sort)

echo "fuzz: $targets target(s) run"
