#!/usr/bin/env bash
# Inspects a ctsync .deb without installing it: control fields, conffiles,
# the expected files, the maintainer scripts' syntax, the packaged binary,
# and the systemd unit (systemd-analyze verify, when it is there).
# Usage: packaging/deb-check.sh dist/ctsync_VERSION_ARCH.deb
set -euo pipefail

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
	usr/share/doc/ctsync/examples/README.md; do
	[[ -s $root/$f ]] && pass "/$f" || fail "/$f missing or empty"
done
[[ -x $root/usr/bin/ctsync ]] && pass "/usr/bin/ctsync is executable" || fail "/usr/bin/ctsync not executable"

"$root/usr/bin/ctsync" version >/dev/null && pass "ctsync version runs" || fail "ctsync version"
# The packaged default configuration is the one the binary prints.
diff -q <("$root/usr/bin/ctsync" config default) "$root/etc/ctsync/ctsync.yaml" >/dev/null &&
	pass "ctsync.yaml is \`ctsync config default\`" || fail "ctsync.yaml differs from \`ctsync config default\`"
zcat "$root/usr/share/man/man8/ctsync-notify.8.gz" | grep -q '^\.TH' && pass "man pages are roff" || fail "man page not roff"

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

if ((fails)); then
	echo "deb-check: $fails problem(s) in $deb"
	exit 1
fi
echo "deb-check: $deb looks right"
