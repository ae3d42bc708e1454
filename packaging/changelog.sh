#!/usr/bin/env bash
# Prints the Debian changelog for a package version: packaging/changelog,
# which names the releases, headed by an entry for VERSION when VERSION is a
# snapshot (0.0.0+git42.gabc1234) the file does not name. That entry is
# dated with the commit and signed by the package's maintainer (nfpm.yaml).
# Usage: packaging/changelog.sh VERSION | gzip -9n > changelog.gz
set -euo pipefail

version=${1:?usage: changelog.sh VERSION}
here=$(cd "$(dirname "$0")" && pwd)
changelog=$here/changelog

top=$(sed -n '1s/^ctsync (\([^)]*\)).*/\1/p' "$changelog")
[[ -n $top ]] || { echo "changelog.sh: $changelog: no version on its first line" >&2; exit 1; }
if [[ $version != "$top" ]]; then
	if ! dpkg --compare-versions "$version" gt "$top" 2>/dev/null; then
		echo "changelog.sh: version $version is not after $top, the newest in $changelog" >&2
		exit 1
	fi
	maintainer=$(sed -n 's/^maintainer:[[:space:]]*//p' "$here/nfpm.yaml")
	[[ -n $maintainer ]] || { echo "changelog.sh: no maintainer in $here/nfpm.yaml" >&2; exit 1; }
	commit=$(git -C "$here" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
	date=$(git -C "$here" log -1 --format=%aD 2>/dev/null || date -R)
	cat <<ENTRY
ctsync ($version) unstable; urgency=medium

  * Snapshot of commit $commit, after $top. The changes since $top are
    in the git history of https://github.com/ctsync/ctsync.

 -- $maintainer  $date

ENTRY
fi
cat "$changelog"
