#!/usr/bin/env bash
# Inspects a ctsync .deb without installing it: control fields, conffiles,
# the expected files, the maintainer scripts' syntax, the packaged binary,
# the licence, copyright file and changelog, the man pages, the systemd unit
# (systemd-analyze verify) and lintian's verdict, the last two when the
# tools are there.
# Usage: packaging/deb-check.sh dist/ctsync_VERSION_ARCH.deb
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
deb=${1:?usage: deb-check.sh FILE.deb}
[[ -f $deb ]] || { echo "deb-check: $deb: no such file" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
pass() { echo "ok:   $*"; }

field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == ctsync ]] && pass "Package: ctsync" || fail "Package is $(field Package)"
[[ $(field Depends) == *conntrack* ]] && pass "Depends: $(field Depends)" || fail "Depends lacks conntrack"
[[ $(field Depends) == *nftables* ]] || fail "Depends lacks nftables (the commit gate runs nft)"
[[ $(field Recommends) == *keepalived* ]] && pass "Recommends: $(field Recommends)" || fail "Recommends lacks keepalived"
version=$(field Version)
if dpkg --compare-versions "$version" gt 0~; then pass "Version: $version"; else fail "Version $version is not a Debian version"; fi
maintainer=$(field Maintainer)
if [[ $maintainer =~ ^[^\<]+\ \<[^@\>]+@[^@\>]+\.[a-z]+\>$ && $maintainer != *localhost* ]]; then
	pass "Maintainer: $maintainer"
else
	fail "Maintainer \"$maintainer\" is not NAME <ADDRESS> with a real domain"
fi
[[ $(field Homepage) == https://* ]] && pass "Homepage: $(field Homepage)" || fail "no Homepage"
[[ $(basename "$deb") == "ctsync_${version}_$(field Architecture).deb" ]] &&
	pass "file name matches version and architecture" || fail "file name $(basename "$deb") does not match"

dpkg-deb -e "$deb" "$tmp/DEBIAN"
grep -qx /etc/ctsync/ctsync.yaml "$tmp/DEBIAN/conffiles" && pass "conffile /etc/ctsync/ctsync.yaml" ||
	fail "/etc/ctsync/ctsync.yaml is not a conffile"
for s in postinst prerm postrm; do
	sh -n "$tmp/DEBIAN/$s" && pass "$s: sh syntax" || fail "$s: sh syntax"
	if grep -Eq '^[[:space:]]*systemctl (enable|start|restart)' "$tmp/DEBIAN/$s"; then
		fail "$s enables or starts the service"
	fi
done

dpkg-deb -x "$deb" "$tmp/root"
root=$tmp/root
for f in usr/bin/ctsync lib/systemd/system/ctsync.service etc/ctsync/ctsync.yaml \
	usr/share/man/man8/ctsync.8.gz usr/share/man/man8/ctsync-daemon.8.gz \
	usr/share/bash-completion/completions/ctsync usr/share/zsh/vendor-completions/_ctsync \
	usr/share/fish/vendor_completions.d/ctsync.fish \
	usr/share/doc/ctsync/examples/keepalived.conf usr/share/doc/ctsync/examples/keepalived-fast.conf \
	usr/share/doc/ctsync/examples/README.md usr/share/doc/ctsync/examples/grafana-ctsync.json; do
	[[ -s $root/$f ]] && pass "/$f" || fail "/$f missing or empty"
done
[[ -x $root/usr/bin/ctsync ]] && pass "/usr/bin/ctsync is executable" || fail "/usr/bin/ctsync not executable"

"$root/usr/bin/ctsync" version >/dev/null && pass "ctsync version runs" || fail "ctsync version"
# The packaged default configuration is the one the binary prints.
diff -q <("$root/usr/bin/ctsync" config default) "$root/etc/ctsync/ctsync.yaml" >/dev/null &&
	pass "ctsync.yaml is \`ctsync config default\`" || fail "ctsync.yaml differs from \`ctsync config default\`"
zcat "$root/usr/share/man/man8/ctsync-notify.8.gz" | grep -q '^\.TH' && pass "man pages are roff" || fail "man page not roff"

# Man pages: ctsync.yaml(5) is the default configuration; the pages have
# EXIT STATUS and FILES; no page for a PowerShell completion.
man5=$root/usr/share/man/man5/ctsync.yaml.5.gz
if [[ -s $man5 ]] && zcat "$man5" | grep -q '^\.TH "CTSYNC.YAML" "5"'; then
	pass "/usr/share/man/man5/ctsync.yaml.5.gz"
else
	fail "/usr/share/man/man5/ctsync.yaml.5.gz missing or not section 5"
fi
if [[ -s $man5 ]] && zcat "$man5" | grep -q '^  socket: /run/ctsync/ctsync.sock$'; then
	pass "ctsync.yaml(5) holds the default configuration"
else
	fail "ctsync.yaml(5) lacks the default configuration"
fi
for s in 'EXIT STATUS' FILES; do
	zcat "$root/usr/share/man/man8/ctsync.8.gz" | grep -qx "\.SH $s" && pass "ctsync(8) has $s" || fail "ctsync(8) lacks $s"
done
if ls "$root"/usr/share/man/man8 | grep -qi powershell; then fail "a PowerShell man page"; else pass "no PowerShell man page"; fi
if zcat "$root/usr/share/man/man8/ctsync-conntrackd.8.gz" |
	awk '/^\.(EX|nf)$/ { p = 1 } /^\.(EE|fi)$/ { p = 0 } p && /Client mode commands:/ { f = 1 } END { exit !f }'; then
	pass "ctsync-conntrackd(8) keeps its preformatted blocks"
else
	fail "ctsync-conntrackd(8) has no preformatted block"
fi

# The licence: LICENSE is the Apache License 2.0, word for word, and the
# copyright file (DEP-5) says so and covers every Go module in the binary.
if [[ -f /usr/share/common-licenses/Apache-2.0 ]]; then
	cmp -s "$here/LICENSE" /usr/share/common-licenses/Apache-2.0 &&
		pass "LICENSE is the Apache License 2.0 (/usr/share/common-licenses/Apache-2.0)" ||
		fail "LICENSE differs from /usr/share/common-licenses/Apache-2.0"
else
	grep -q 'Apache License' "$here/LICENSE" && grep -q 'Version 2.0, January 2004' "$here/LICENSE" &&
		pass "LICENSE is the Apache License 2.0" || fail "LICENSE is not the Apache License 2.0"
fi
copyright=$root/usr/share/doc/ctsync/copyright
if [[ -s $copyright ]]; then
	pass "/usr/share/doc/ctsync/copyright"
	head -1 "$copyright" | grep -qx 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' &&
		pass "copyright is machine-readable (DEP-5)" || fail "copyright lacks the DEP-5 Format line"
	awk '/^Files: \*$/ { f = 1 } f && /^License: / { print; exit }' "$copyright" | grep -qx 'License: Apache-2.0' &&
		pass "copyright: Files: * License: Apache-2.0" || fail "copyright: ctsync itself is not Apache-2.0"
	if command -v go >/dev/null; then
		missing=$(go version -m "$root/usr/bin/ctsync" | awk '$1 == "dep" { print $2 }' |
			while read -r m; do grep -qx "Files: $m/\*" "$copyright" || echo "$m"; done)
		n=$(go version -m "$root/usr/bin/ctsync" | awk '$1 == "dep"' | wc -l)
		[[ -z $missing ]] && pass "copyright covers the $n Go modules in the binary" ||
			fail "copyright lacks the Go modules: $missing"
	else
		echo "skip: go not in PATH, Go modules in the copyright file not checked"
	fi
else
	fail "/usr/share/doc/ctsync/copyright missing or empty"
fi

# The changelog: native package, so changelog.gz; its first entry is this
# version, signed by the maintainer.
changelog=$root/usr/share/doc/ctsync/changelog.gz
if [[ -s $changelog ]]; then
	zcat "$changelog" >"$tmp/changelog"
	[[ $(dpkg-parsechangelog -l "$tmp/changelog" -S Version) == "$version" ]] &&
		pass "changelog.gz: first entry is $version" || fail "changelog.gz: first entry is not $version"
	[[ $(dpkg-parsechangelog -l "$tmp/changelog" -S Maintainer) == "$maintainer" ]] &&
		pass "changelog.gz: signed by the maintainer" || fail "changelog.gz: not signed by $maintainer"
else
	fail "/usr/share/doc/ctsync/changelog.gz missing or empty"
fi

if command -v systemd-analyze >/dev/null; then
	# verify wants ExecStart to exist: point it at the extracted binary.
	sed "s#/usr/bin/ctsync#$root/usr/bin/ctsync#" "$root/lib/systemd/system/ctsync.service" >"$tmp/ctsync.service"
	if out=$(systemd-analyze verify --man=no "$tmp/ctsync.service" 2>&1) && [[ -z $out ]]; then
		pass "systemd-analyze verify ctsync.service"
	else
		fail "systemd-analyze verify: $out"
	fi
else
	echo "skip: systemd-analyze not installed"
fi

if command -v lintian >/dev/null; then
	# Errors fail the check; warnings are shown. The package's own
	# overrides (packaging/lintian-overrides) apply.
	rc=0
	out=$(lintian --fail-on none "$deb" 2>&1) || rc=$?
	out=$(grep -v "running with root privileges" <<<"$out" || true)
	[[ -n $out ]] && sed 's/^/      lintian: /' <<<"$out"
	if ((rc)); then
		fail "lintian failed to run (exit $rc)"
	elif grep -q '^E: ' <<<"$out"; then
		fail "lintian reports errors"
	else
		pass "lintian: no errors"
	fi
else
	echo "skip: lintian not installed (apt-get install lintian)"
fi

if ((fails)); then
	echo "deb-check: $fails problem(s) in $deb"
	exit 1
fi
echo "deb-check: $deb looks right"
