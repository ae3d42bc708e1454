package config

// DefaultYAML returns a fully commented configuration file that sets every
// key to its default (`ctsync config default` prints it). Parse of it gives
// Default. The two keys whose default is implicit, node (the hostname) and
// cluster.key_file, are written commented out.
func DefaultYAML() string { return defaultYAML }

const defaultYAML = `# ctsync configuration (YAML). Every key is shown with its default; a key left
# out keeps its default, an unknown key is an error. Check a file with
# ` + "`ctsync config check -c FILE`" + `.

# Unique name of this node in the cluster: letters, digits, '.', '-', '_', at
# most 64. Default: the hostname.
#node: fw-a

cluster:
  # address:port for cluster traffic (memberlist: TCP and UDP): this node's
  # address on the sync link, e.g. 10.0.3.1:7946. "" = the local address that
  # routes to the first join peer, on that peer's port, found at start (then
  # join must not be empty). 0.0.0.0 or [::] listens on every address: only
  # with a key_file (memberlist then advertises a guessed address; set
  # advertise), refused with insecure: true.
  bind: ""
  # address:port peers should use to reach this node, if different from bind
  # (NAT, or bind on 0.0.0.0). "" = derived from bind.
  advertise: ""
  # Peers to contact at start (host:port; host names allowed), e.g.
  # ["10.0.3.2:7946"]. Retried in the background until one answers.
  join: []
  # File holding the cluster key: base64 of a 16, 24 or 32-byte AES key,
  # owned by root (or the daemon's user) and readable by its owner only.
  # Create it with
  #   ctsync keygen > /etc/ctsync/cluster.key && chmod 600 /etc/ctsync/cluster.key
  # and copy it to every node. Default: /etc/ctsync/cluster.key.
  # During a key rotation ("ctsync keys") it holds several keys, one per
  # line: the first is primary, the others are accepted too.
  #key_file: /etc/ctsync/cluster.key
  # true = no encryption and no authentication of cluster traffic: anyone who
  # reaches the port can read the flows and inject their own. Must be
  # explicit, cannot be combined with a key_file, needs bind on one address;
  # the daemon warns at every start, and ctsync stats and the metrics show it.
  insecure: false
  # Cluster label: nodes with another name ignore each other, which keeps
  # several HA pairs on one link apart.
  name: ctsync

control:
  # Root-only (0600) UNIX socket the CLI uses to talk to the daemon. The
  # shipped systemd unit may write only below /run/ctsync (config check
  # warns about a path elsewhere).
  socket: /run/ctsync/ctsync.sock

# What is replicated; a flow failing any rule stays local.
filter:
  # Protocols to replicate, any of: tcp udp icmp icmpv6 sctp dccp gre udplite,
  # and other protocols (tracked without ports) by name or number, e.g. igmp,
  # esp, 99. Default: the eight named here.
  protocols: [tcp, udp, icmp, icmpv6, sctp, dccp, gre, udplite]
  # CIDRs or plain addresses. A flow whose original source or reply source
  # (its two real endpoints, as in conntrackd) is in one of them is not
  # replicated: list the firewall's own addresses here, so traffic to and
  # from the box stays local while NAT'd flows via VIPs sync.
  ignore_addresses: [127.0.0.0/8, "::1/128"]
  # TCP states to replicate, e.g. [ESTABLISHED], from: NONE SYN_SENT SYN_RECV
  # ESTABLISHED FIN_WAIT CLOSE_WAIT LAST_ACK TIME_WAIT CLOSE LISTEN SYN_SENT2.
  # [] = all.
  tcp_states: []
  # Conntrack zones to replicate (0-65535; a flow's zone in either
  # direction), e.g. [0, 10]. [] = all.
  zones: []
  # Marks to replicate: VALUE or VALUE/MASK, decimal or 0x hex, e.g.
  # ["0x10/0xf0", "5"]; a flow is replicated if mark & MASK == VALUE for
  # any of them. [] = all.
  marks: []
  # Flows not to replicate, by protocol and original destination port:
  # PROTO/PORT or PROTO/FIRST-LAST, PROTO one of tcp udp udplite sctp dccp,
  # e.g. ["udp/53", "tcp/6000-6063"]. [] = none ignored.
  ignore_ports: []
  # ct label bits that leave this node: bit numbers 0-127, names from
  # /etc/xtables/connlabel.conf, or all. The other bits are cleared in the
  # replicated copy (the flow itself is replicated). [] = no label at all.
  # Peers need a ruleset that uses ct labels to store them.
  labels: [all]
  # A flow is replicated only once this node has seen it for min_age (Go
  # duration, e.g. 2s); one that ends sooner (DNS, short probes) is never
  # sent. Trade-off: a flow younger than min_age at failover is lost.
  # 0s = at once.
  min_age: 0s

commit:
  # Timeout given to flows written to the kernel on commit (Go duration, e.g.
  # 180s). 0s = each flow keeps its remaining timeout.
  timeout: 0s
  # commit: peers' flows wait in the external cache and are written to the
  #   kernel on ` + "`notify master`" + ` (conntrackd's behaviour).
  # hot: hot standby; peers' flows are kept in this node's kernel table ahead
  #   of time (timeouts refreshed while their owner holds them, deleted when
  #   it drops them), so a takeover has nothing left to write. Costs kernel
  #   table space and netlink work on the standby all the time.
  mode: commit
  # The commit gate: while this node is backup or fault (keepalived's
  # notify), and until ` + "`notify master`" + ` has put the peers' flows in
  # place, packets of flows the kernel table does not know are dropped
  # (an nftables table "inet ctsync_gate": forwarded packets in state new or
  # invalid, and invalid or non-SYN new TCP to this box), so that none is
  # answered with a TCP reset or takes a new NAT mapping before the state
  # is there. keepalived moves the VIPs before it runs notify scripts; the
  # gate closes that window. Needs nft(8). false for active-active setups,
  # where a backup forwards new connections.
  gate: true

# Delay before flows this node no longer owns are deleted from the kernel
# after ` + "`notify backup`" + ` or ` + "`notify fault`" + ` (conntrackd -t); a commit before then
# cancels it. 0s = at once.
purge_timeout: 60s

metrics:
  # address:port serving Prometheus /metrics, e.g. 127.0.0.1:9469 (":9469"
  # = every address). "" = off. Plain HTTP without authentication: bind it
  # to a management address. The daemon refuses to start if it cannot bind.
  listen: ""

log:
  level: info    # debug|info|warn|error
  format: text   # text|json

kernel:
  # Network namespace whose conntrack table the daemon serves: a name under
  # /run/netns or an absolute path. "" = the daemon's own namespace.
  netns: ""
  # Receive buffer of the netlink event socket: 64KiB to 2147483647 bytes
  # (2GiB less one: the kernel takes a C int), as plain bytes or with KiB,
  # MiB, GiB. Too small a buffer overruns under load (counted and repaired
  # by a resync).
  event_buffer: 64MiB

cache:
  # Upper bound on flows per cache: the internal one (this node's flows) and
  # the external one (all peers' flows together); beyond it new flows are
  # dropped and counted. At least 1000.
  max_flows: 2097152
`
