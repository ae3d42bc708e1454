#!/usr/bin/env bash
# Writes /usr/share/doc/ctsync/copyright in Debian's machine-readable format
# (DEP-5) for a built ctsync binary: ctsync's own licence (LICENSE), then the
# Go standard library and every Go module linked into the binary, as
# `go version -m` lists them, with the copyright lines, licence and NOTICE
# of each read from the module cache. A module whose licence it cannot
# identify stops the build: a new dependency needs a look.
# Usage: packaging/copyright.sh bin/ctsync > dist/stage/copyright
set -euo pipefail

bin=${1:?usage: copyright.sh BINARY}
go=${GO:-go}
modcache=$("$go" env GOMODCACHE)
goroot=$("$go" env GOROOT)
here=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "copyright.sh: $*" >&2; exit 1; }

# DEP-5 continuation lines: indented, an empty line as " .".
indent() { sed -e 's/[[:space:]]*$//' -e 's/^$/./' -e 's/^/ /'; }

# The licence of a licence file, as a DEP-5 short name.
identify() {
	local f=$1 names=()
	if grep -q 'Mozilla Public License' "$f" && grep -q 'Version 2.0\|v\. 2\.0' "$f"; then names+=(MPL-2.0); fi
	if grep -q 'Permission is hereby granted, free of charge' "$f"; then names+=(Expat); fi
	if grep -q 'Redistribution and use in source and binary forms' "$f"; then
		if grep -qi 'neither the name\|names of its contributors\|names of the copyright holders' "$f"; then
			names+=(BSD-3-Clause)
		else
			names+=(BSD-2-Clause)
		fi
	fi
	if grep -q 'Apache License' "$f" && grep -q 'Version 2.0' "$f"; then names+=(Apache-2.0); fi
	((${#names[@]})) || return 1
	local IFS=' '
	echo "${names[*]}" | sed 's/ / and /g'
}

# The copyright lines of a licence file (not the templates in licence texts).
holders() {
	{ grep -E '^[[:space:]]*Copyright[[:space:]]+(\([cC]\)|©|[0-9]|[A-Z])' "$1" || true; } |
		{ grep -v '\[yyyy\]\|\[name of' || true; } |
		sed -E -e 's/^[[:space:]]*Copyright[[:space:]]+((\([cC]\)|©)[[:space:]]*)?//' -e 's/[[:space:]]*$//' | sort -u
}

# A paragraph for one component: Files, Copyright, License (with the text
# unless Debian ships it in /usr/share/common-licenses), Comment.
paragraph() {
	local files=$1 what=$2 dir=$3 lic license copyright
	lic=$(ls "$dir" | grep -E '^(LICEN[CS]E|COPYING)(\.md|\.txt)?$' | head -1) ||
		die "$what: no LICENSE file in $dir"
	[[ -n $lic ]] || die "$what: no LICENSE file in $dir"
	license=$(identify "$dir/$lic") || die "$what: cannot identify the licence of $dir/$lic"
	copyright=$(holders "$dir/$lic")
	[[ -n $copyright ]] || copyright="The authors of $what"
	echo
	echo "Files: $files"
	echo "Copyright: $(head -1 <<<"$copyright")"
	tail -n +2 <<<"$copyright" | indent
	echo "License: $license"
	case $license in
	Apache-2.0 | MPL-2.0) ;; # in /usr/share/common-licenses
	*) indent <"$dir/$lic" ;;
	esac
	echo "Comment: $what, compiled into /usr/bin/ctsync."
	case $license in
	Apache-2.0 | MPL-2.0)
		echo " On Debian systems the full text of the $license licence is in"
		echo " /usr/share/common-licenses/$license."
		;;
	esac
	for n in NOTICE NOTICE.md NOTICE.txt; do
		if [[ -f $dir/$n ]]; then
			echo " ."
			echo " Its $n:"
			echo " ."
			indent <"$dir/$n"
		fi
	done
}

[[ $(identify "$here/LICENSE") == Apache-2.0 ]] || die "LICENSE is not the Apache License 2.0"

cat <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ctsync
Upstream-Contact: The ctsync developers <maintainers@ctsync.dev>
Source: https://github.com/ctsync/ctsync

Files: *
Copyright: 2026 The ctsync developers
License: Apache-2.0
Comment: On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF

info=$("$go" version -m "$bin") || die "$bin: not a Go binary"
gover=$(head -1 <<<"$info" | awk '{print $2}')
paragraph "go/*" "The Go standard library and runtime ($gover)" "$goroot"

# "dep PATH VERSION SUM", or for a replaced module "dep PATH VERSION" then
# "=> NEWPATH NEWVERSION SUM": the code linked is the replacement's.
while read -r mod modver src srcver; do
	# The module cache escapes capital letters as !lower.
	dir=$modcache/$(sed 's/[A-Z]/!\L&/g' <<<"$src")@$srcver
	[[ -d $dir ]] || die "$mod $modver is not in the module cache ($dir): run go mod download"
	paragraph "$mod/*" "Go module $mod $modver" "$dir"
done < <(awk '$1 == "dep" { if (p) print p; p = $2 " " $3 " " $2 " " $3 }
	$1 == "=>" { split(p, a, " "); p = a[1] " " a[2] " " $2 " " $3 }
	END { if (p) print p }' <<<"$info")
