#!/usr/bin/env bash
# demo-table.sh: a guided tour of `ctsync table` on a private conntrack table.
#
# Creates a network namespace of its own (so the host's table is never
# touched), inserts a few flows in it, a SNAT'd one among them, then lists,
# filters, counts, deletes and flushes them with bin/ctsync, the way the
# conntrack(8) tutorial does with conntrack. Removes the namespace on exit,
# also on Ctrl-C. Needs root and `make build`.
set -euo pipefail

cd "$(dirname "$0")/.."
ctsync=$PWD/bin/ctsync
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

if [[ $(id -u) -ne 0 ]]; then
	echo "demo-table: needs root (network namespaces, conntrack table)" >&2
	exit 1
fi
if [[ ! -x $ctsync ]]; then
	echo "demo-table: $ctsync not found; run 'make build' first" >&2
	exit 1
fi

ns="ctdemo-$$"
cleanup() {
	local pids
	pids=$(ip netns pids "$ns" 2>/dev/null || true)
	[[ -n $pids ]] && kill -9 $pids 2>/dev/null || true
	ip netns delete "$ns" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -t 1 ]]; then
	heading() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	heading() { printf '\n== %s\n' "$*"; }
fi
# show prints the command, then runs it against the demo namespace.
show() {
	printf '$ ctsync %s\n' "$*"
	"$ctsync" "$@" --netns "$ns"
}

heading "A private conntrack table in network namespace $ns"
ip netns add "$ns"
ip -n "$ns" link set lo up
echo "(everything below happens in $ns; the host's table is not touched)"

heading "Insert flows (conntrack -I)"
# A web connection, a DNS query, and a connection SNAT'd to 203.0.113.1:40000
# as a firewall would do for a client behind it.
show table insert -p tcp -s 192.168.1.100 -d 8.8.8.8 --sport 12345 --dport 80 \
	--state ESTABLISHED -u SEEN_REPLY,ASSURED -t 600
show table insert -p udp -s 192.168.1.100 -d 8.8.8.8 --sport 54321 --dport 53 -t 30
show table insert -p tcp -s 10.0.0.5 -d 1.2.3.4 --sport 12345 --dport 80 \
	--state ESTABLISHED -u SEEN_REPLY,ASSURED -t 600 --src-nat 203.0.113.1:40000
show table insert -p udp -s 192.168.1.7 -d 10.0.0.5 --sport 5353 --dport 514 -t 60

heading "List all flows (conntrack -L)"
show table list

heading "TCP flows to port 80 (conntrack -L -p tcp --dport 80)"
show table list -p tcp --dport 80

heading "Established flows (conntrack -L --state ESTABLISHED)"
show table list --state ESTABLISHED

heading "Flows SNAT'd by this box (conntrack -L --src-nat)"
show table list --src-nat

heading "The same table as JSON, one object per line (-o json)"
show table list -o json

heading "Count (conntrack -C)"
show table count

heading "Delete every flow from 192.168.1.100 (conntrack -D -s 192.168.1.100)"
show table delete -s 192.168.1.100
show table list

heading "Delete UDP flows to 10.0.0.5 (conntrack -D -d 10.0.0.5 -p udp)"
show table delete -d 10.0.0.5 -p udp
show table count

heading "Flush the table (conntrack -F); --yes skips the confirmation"
show table flush --yes
show table count

heading "Done; removing $ns"
