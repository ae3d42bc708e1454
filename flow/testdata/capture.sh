#!/bin/bash
# capture.sh records what conntrack(8) prints for a fixed set of entries, so
# that flow's formatters can be checked against the reference tool byte for
# byte. It writes text.golden, extended.golden, id.golden, save.golden,
# labels.golden and events.golden next to itself.
#
# Needs root, conntrack(8) (the files were made with conntrack 1.4.7 and
# libnetfilter_conntrack 1.0.9), nft and socat. Everything happens in a
# throw-away network namespace and a private mount namespace (for the
# connlabel.conf conntrack reads to name labels); both vanish at exit.
#
# Each golden file holds "# name" lines followed by the line conntrack printed
# for that entry. Timeouts, ids, random ports and delta-times change on every
# run: after regenerating, update the hand-built flows in format_test.go.
set -eu

here=$(cd "$(dirname "$0")" && pwd)

if [ "${CTFMT_INNER:-}" != 1 ]; then
	exec env CTFMT_INNER=1 unshare -m "$0" "$@"
fi

ns=ctfmt-$$
etc=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$etc"
}
trap cleanup EXIT

# conntrack names label bits from /etc/xtables/connlabel.conf: give it one
# without touching the real /etc (this mount namespace is private).
mount --make-rprivate /
cp -a /etc/. "$etc/"
mkdir -p "$etc/xtables"
printf '0 zero\n1 one\n5 five\n127 top\n' >"$etc/xtables/connlabel.conf"
cp "$etc/xtables/connlabel.conf" "$etc/connlabel.conf"
mount --bind "$etc" /etc

ip netns add "$ns"
x() { ip netns exec "$ns" "$@"; }
ct() { x conntrack "$@" 2>/dev/null; }

out_text=$(mktemp) out_ext=$(mktemp) out_id=$(mktemp) out_save=$(mktemp)
out_labels=$(mktemp) out_events=$(mktemp)

# capture NAME FILTER... lists one entry in the four formats; it retries
# until all four show the same timeout (they are four separate dumps).
capture() {
	local name=$1
	shift
	local i t e d s
	for i in 1 2 3 4 5; do
		t=$(ct -L "$@")
		e=$(ct -L "$@" -o extended)
		d=$(ct -L "$@" -o id)
		s=$(ct -L "$@" -o save)
		if [ "$(echo "$t" | wc -l)" != 1 ] || [ -z "$t" ]; then
			echo "capture $name: want exactly one entry, got: $t" >&2
			exit 1
		fi
		if [ "$(echo "$t" | awk '{print $3}')" = "$(echo "$d" | awk '{print $3}')" ] &&
			[ "$(echo "$t" | awk '{print $3}')" = "$(echo "$e" | awk '{print $5}')" ] &&
			[ "$(echo "$t" | awk '{print $3}')" = "$(echo "$s" | awk '{print $3}')" -o "$(echo "$s" | awk '{print $2}')" != -t ]; then
			break
		fi
	done
	printf '# %s\n%s\n' "$name" "$t" >>"$out_text"
	printf '# %s\n%s\n' "$name" "$e" >>"$out_ext"
	printf '# %s\n%s\n' "$name" "$d" >>"$out_id"
	printf '# %s\n%s\n' "$name" "$s" >>"$out_save"
}

# Plain entries: no accounting, no timestamps.
ct -I -s 1.1.1.1 -d 2.2.2.2 -p tcp --sport 10 --dport 20 --state ESTABLISHED -u SEEN_REPLY,ASSURED -t 300 -m 42 -w 3
ct -I -s 10.0.0.2 -d 8.8.8.8 -p udp --sport 5353 --dport 53 -t 300 --src-nat 9.9.9.9
ct -I -s 10.0.0.5 -d 8.8.8.8 -p udp --sport 5353 --dport 53 -t 300 --src-nat 9.9.9.9:4000
ct -I -s 10.0.0.4 -d 8.8.8.8 -p udp --sport 5353 --dport 53 -t 300 --dst-nat 9.9.9.9:5300
ct -I -s 10.0.0.6 -d 8.8.8.8 -p udp --sport 5353 --dport 53 -t 300 --src-nat 9.9.9.9:4000 --dst-nat 7.7.7.7:99
ct -I -s 10.0.0.7 -d 8.8.8.8 -p udp --sport 5353 --dport 53 -t 300 --src-nat 10.0.0.7:4001
ct -I -s 10.0.0.1 -d 8.8.8.8 -r 8.8.8.8 -q 203.0.113.5 -p udp --sport 5353 --dport 53 --reply-port-src 53 --reply-port-dst 5353 -t 300
ct -I -s 1.1.1.2 -d 2.2.2.2 -p icmp --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 300
ct -I -s 2001:db8::1 -d 2001:db8::2 -p icmpv6 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 78 -t 300
ct -I -s 1.1.1.9 -d 224.0.0.22 -p 2 -t 300
ct -I -s 1.1.1.6 -d 2.2.2.2 -p sctp --sport 10 --dport 20 --state ESTABLISHED --orig-vtag 5 --reply-vtag 6 -t 300
ct -I -s 1.1.1.7 -d 2.2.2.2 -p gre --srckey 5 --dstkey 6 -t 300
ct -I -s 1.1.1.8 -d 2.2.2.2 -p dccp --sport 10 --dport 20 --state OPEN --role client -t 300
ct -I -s 1.1.1.10 -d 2.2.2.2 -p udplite --sport 10 --dport 20 -t 300
ct -I -s 2001:db8::3 -d 2001:db8::2 -p tcp --sport 1000 --dport 22 --state SYN_SENT -t 300
ct -I -s 2001:db8::4 -d 2001:db8::2 -p tcp --sport 1000 --dport 22 --state SYN_SENT -t 300 --src-nat 2001:db8::99
ct -I -s 2001:db8::5 -d 2001:db8::2 -p tcp --sport 1000 --dport 22 --state SYN_SENT -t 300 --dst-nat '[2001:db8::9]:80'
ct -I -s 1.1.1.11 -d 2.2.2.2 -p tcp --sport 10 --dport 20 --state ESTABLISHED -t 300 --orig-zone 4
ct -I -s 1.1.1.12 -d 2.2.2.2 -p tcp --sport 10 --dport 20 --state ESTABLISHED -t 300 --reply-zone 5 -u ASSURED
ct -I -s 1.1.1.13 -d 2.2.2.2 -p tcp --sport 10 --dport 20 --state LISTEN -t 300 -u SEEN_REPLY
ct -I -s 1.1.1.14 -d 2.2.2.2 -p sctp --sport 10 --dport 20 --state COOKIE_WAIT --orig-vtag 7 --reply-vtag 0 -t 300 -m 0xffffffff -w 65535

capture tcp_mark_zone -s 1.1.1.1 -p tcp
capture udp_snat -s 10.0.0.2
capture udp_snat_port -s 10.0.0.5
capture udp_dnat_port -s 10.0.0.4
capture udp_snat_dnat -s 10.0.0.6
capture udp_spat_only -s 10.0.0.7
capture udp_reply_tuple -s 10.0.0.1
capture icmp -s 1.1.1.2
capture icmpv6 -s 2001:db8::1
capture unknown -s 1.1.1.9
capture sctp -s 1.1.1.6
capture gre -s 1.1.1.7
capture dccp -s 1.1.1.8
capture udplite -s 1.1.1.10
capture tcp6 -s 2001:db8::3
capture tcp6_snat -s 2001:db8::4
capture tcp6_dnat_port -s 2001:db8::5
capture orig_zone -s 1.1.1.11
capture reply_zone -s 1.1.1.12
capture tcp_syn_sent2 -s 1.1.1.13
capture sctp_max -s 1.1.1.14

# Accounting, timestamps, a helper and labels.
x sysctl -qw net.netfilter.nf_conntrack_acct=1 net.netfilter.nf_conntrack_timestamp=1
x sysctl -qw net.netfilter.nf_conntrack_udp_timeout=2
x ip link set lo up
x nft -f - <<'EOF'
table ip ctfmt {
	ct helper ftp-standard { type "ftp" protocol tcp; }
	chain out {
		type filter hook output priority 0;
		tcp dport 21 ct helper set "ftp-standard"
		ip daddr 192.0.2.1 ct label set one
	}
}
EOF
ct -I -s 1.1.1.20 -d 2.2.2.2 -p tcp --sport 10 --dport 20 --state ESTABLISHED -t 300 --label-add one,five -m 7
ct -I -s 1.1.1.21 -d 2.2.2.2 -p udp --sport 10 --dport 20 -t 300
x socat TCP-LISTEN:21,bind=127.0.0.1,reuseaddr SYSTEM:true &
pids+=($!)
sleep 0.5
x socat -u OPEN:/dev/null TCP:127.0.0.1:21
sleep 0.5
capture labels -s 1.1.1.20
capture acct -s 1.1.1.21
capture helper -p tcp --dport 21
printf '# labels\n%s\n' "$(ct -L -s 1.1.1.20 -o labels)" >>"$out_labels"
printf '# labels_ext_id\n%s\n' "$(ct -L -s 1.1.1.20 -o labels,extended,id)" >>"$out_labels"

# Events the kernel causes (no [USERSPACE] suffix): a UDP query, its answer
# and its expiry. The table is emptied first so that the kernel's garbage
# collector, which paces itself by the timeouts it sees, finds the expired
# entry quickly.
ct -F
x timeout 20 conntrack -E -p udp --dport 9999 >"$out_events.plain" 2>/dev/null &
pids+=($!)
x timeout 20 conntrack -E -p udp --dport 9999 -o extended,id >"$out_events.ext" 2>/dev/null &
pids+=($!)
x socat UDP-RECVFROM:9999,bind=127.0.0.1 SYSTEM:'echo pong' &
pids+=($!)
sleep 0.5
echo ping | x socat -T 1 - UDP:127.0.0.1:9999,sourceport=40000 >/dev/null
wait "${pids[-2]}" "${pids[-3]}" || true
for kind in NEW UPDATE DESTROY; do
	printf '# %s\n%s\n' "$kind" "$(grep -F "[$kind]" "$out_events.plain" | head -1)" >>"$out_events"
	printf '# %s_ext_id\n%s\n' "$kind" "$(grep -F "[$kind]" "$out_events.ext" | head -1)" >>"$out_events"
done

install -m 644 "$out_text" "$here/text.golden"
install -m 644 "$out_ext" "$here/extended.golden"
install -m 644 "$out_id" "$here/id.golden"
install -m 644 "$out_save" "$here/save.golden"
install -m 644 "$out_labels" "$here/labels.golden"
install -m 644 "$out_events" "$here/events.golden"
rm -f "$out_text" "$out_ext" "$out_id" "$out_save" "$out_labels" "$out_events" "$out_events".*
