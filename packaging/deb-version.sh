#!/usr/bin/env bash
# Prints the Debian package version for this checkout, from `git describe`.
#
#   v1.2.3                      -> 1.2.3
#   v1.2.3-rc1                  -> 1.2.3~rc1          (sorts before 1.2.3)
#   v1.2.3-5-gabc1234           -> 1.2.3+git5.gabc1234 (after 1.2.3)
#   no tag, 42 commits, abc1234 -> 0.0.0+git42.gabc1234
#   uncommitted changes         -> ... .dirty appended
#   not a git checkout          -> 0.0.0+unknown
set -euo pipefail

desc=$(git describe --tags --always --dirty 2>/dev/null) || { echo 0.0.0+unknown; exit 0; }

dirty=""
if [[ $desc == *-dirty ]]; then
	dirty=".dirty"
	desc=${desc%-dirty}
fi

if ! git describe --tags --abbrev=0 >/dev/null 2>&1; then
	# No tag yet: describe printed the abbreviated commit alone.
	version="0.0.0+git$(git rev-list --count HEAD).g${desc}"
elif [[ $desc =~ ^v?([0-9][0-9A-Za-z.]*)(-([0-9A-Za-z.]+))?(-([0-9]+)-g([0-9a-f]+))?$ ]]; then
	version=${BASH_REMATCH[1]}
	[[ -n ${BASH_REMATCH[3]} ]] && version+="~${BASH_REMATCH[3]}"
	[[ -n ${BASH_REMATCH[5]} ]] && version+="+git${BASH_REMATCH[5]}.g${BASH_REMATCH[6]}"
else
	# A tag that is not a version: keep what Debian allows, after 0.0.0.
	version="0.0.0+$(tr -c 'A-Za-z0-9.+~\n' '.' <<<"$desc")"
fi
echo "${version}${dirty}"
