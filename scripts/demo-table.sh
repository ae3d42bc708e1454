#!/usr/bin/env bash
# demo-table.sh: a guided tour of `ctsync table` on a private conntrack table.
#
# Creates a network namespace of its own (so the host's table is never
# touched), fills it with the example flows of the conntrack(8) tutorial
# ctsync follows and runs the tutorial's commands in its order with
# bin/ctsync: help, list, filter, delete by id and by filter, flush, create,
# update. Each step names the conntrack command it stands for. Removes the
# namespace on exit, also on Ctrl-C. Needs root and `make build`.
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

heading "Help (conntrack -h)"
printf '$ ctsync table --help   # the subcommands; ctsync table SUBCOMMAND --help for the options\n'
"$ctsync" table --help | sed -n '/^Available Commands:/,/^$/{/^$/!p}'

heading "Some traffic to look at"
# The tutorial's example flows: a DNS query from 192.168.1.100, a web
# connection of 10.0.0.5's, the connection it deletes by id, a syslog flow to
# 10.0.0.5 and an SCTP association. Without -t each gets the kernel's default
# timeout for its protocol and state, as a flow seen on the wire would.
show table insert -p udp -s 192.168.1.100 -d 8.8.8.8 --sport 54321 --dport 53
show table insert -p tcp -s 10.0.0.5 -d 1.2.3.4 --sport 12345 --dport 80 \
	--state ESTABLISHED -u SEEN_REPLY,ASSURED --src-nat 203.0.113.1:40000
show table insert -p tcp -s 1.2.3.4 -d 5.6.7.8 --sport 54321 --dport 80 \
	--state ESTABLISHED -u SEEN_REPLY,ASSURED -t 3600
show table insert -p tcp -s 192.168.1.100 -d 93.184.216.34 --sport 40000 --dport 443 \
	--state SYN_SENT
show table insert -p udp -s 192.168.1.7 -d 10.0.0.5 --sport 5353 --dport 514
show table insert -p sctp -s 10.0.0.9 -d 10.0.0.10 --sport 3868 --dport 3868 \
	--state ESTABLISHED --orig-vtag 1 --reply-vtag 2

heading "All entries (conntrack -L)"
show table list

heading "Every connection of 192.168.1.100 (conntrack -L | grep 192.168.1.100)"
printf '$ ctsync table list | grep 192.168.1.100\n'
"$ctsync" table list --netns "$ns" 2>/dev/null | grep 192.168.1.100
echo "# or with a filter, which also takes a network:"
show table list -s 192.168.1.0/24

heading "TCP connections to port 80 (conntrack -L --proto tcp --dport 80)"
show table list --proto tcp --dport 80

heading "Established connections (conntrack -L --state ESTABLISHED)"
# conntrack 1.4.7 wants -p with --state; ctsync matches the state of that
# name in every protocol that has one: the TCP and the SCTP ones here.
show table list --state ESTABLISHED

heading "Delete one connection by its id (conntrack -D ID)"
printf '$ ctsync table list -o id | grep "src=1.2.3.4 dst=5.6.7.8"\n'
line=$("$ctsync" table list --netns "$ns" -o id 2>/dev/null | grep "src=1.2.3.4 dst=5.6.7.8")
echo "$line"
id=${line##*id=}
show table delete "$id"

heading "Delete every connection from 192.168.1.100 (conntrack -D --src 192.168.1.100)"
show table delete --src 192.168.1.100

heading "Delete the UDP connections to 10.0.0.5 (conntrack -D --dst 10.0.0.5 --proto udp)"
show table delete --dst 10.0.0.5 --proto udp
show table list

heading "Empty the table (conntrack -F); --yes because nobody is here to confirm"
show table flush --yes
show table count

heading "Create an entry by hand (conntrack -I --proto tcp ... --state ESTABLISHED)"
show table insert --proto tcp --src 192.168.1.100 --dst 8.8.8.8 --sport 12345 --dport 80 \
	--state ESTABLISHED
echo "# no -t given: the kernel's default for an established TCP connection (5 days)"
show table list -o id

heading "Update its timeout to 600 seconds (conntrack -U --id ID --timeout 600)"
line=$("$ctsync" table list --netns "$ns" -o id 2>/dev/null)
id=${line##*id=}
show table update --id "$id" --timeout 600
echo "# the id alone works too:"
show table get "$id"

heading "Done; removing $ns"
