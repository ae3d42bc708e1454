#!/usr/bin/env bash
# deps.sh: install the system tools that the tests and the demo run, once.
#
# Idempotent: when every tool is already there it changes nothing and needs no
# network. Otherwise, as root on Debian, it runs `apt-get update` once and
# installs the packages below. Not root: it lists what is missing and fails.
set -euo pipefail

# Tools live in sbin directories that a non-login PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# tool -> Debian package
declare -A package_of=(
	[conntrack]=conntrack
	[nft]=nftables
	[ip]=iproute2
	[keepalived]=keepalived
	[conntrackd]=conntrackd
	[socat]=socat
	[qemu-arm]=qemu-user # make unit-32bit
)
packages=(conntrack nftables iproute2 keepalived conntrackd socat qemu-user)

missing=()
for tool in conntrack nft ip keepalived conntrackd socat qemu-arm; do
	command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done

if ((${#missing[@]} == 0)); then
	echo "deps: all tools present (conntrack nft ip keepalived conntrackd socat qemu-arm)"
	exit 0
fi

echo "deps: missing: ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
	wanted=()
	for tool in "${missing[@]}"; do wanted+=("${package_of[$tool]}"); done
	echo "deps: not root, cannot install them; run as root: apt-get install ${wanted[*]}" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: apt-get not found; this setup supports Debian only. Install: ${packages[*]}" >&2
	exit 1
fi

# Keep the distribution's conntrackd and keepalived services from starting on
# install: tests and the demo run their own instances in namespaces. Only
# when no policy is in place already, and removed again afterwards.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi

echo "deps: apt-get update"
apt-get update -q
echo "deps: apt-get install ${packages[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}"

still=()
for tool in "${missing[@]}"; do
	command -v "$tool" >/dev/null 2>&1 || still+=("$tool")
done
if ((${#still[@]} > 0)); then
	echo "deps: still missing after apt-get install: ${still[*]}" >&2
	exit 1
fi
echo "deps: installed ${missing[*]}"
