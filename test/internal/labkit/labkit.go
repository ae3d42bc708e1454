// Package labkit holds what the namespace labs of test/bench and test/demo
// share: conntrackd's FTFW configuration and the parsing of its statistics,
// and kernel settings raised for a run and put back after it.
package labkit

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	stdsync "sync"
)

// FTFW describes one conntrackd node in FTFW mode over UDP.
type FTFW struct {
	Local, Peer string   // IPv4 addresses on the sync link
	Interface   string   // the sync link's interface
	Flows       int      // the flows it must hold: sizes the hash table and resend queue
	LogFile     string   // conntrackd's log
	LockFile    string   // its lock file
	Socket      string   // its UNIX control socket
	Ignore      []string // IPv4 addresses whose traffic is not replicated (the box's own)
}

// Config is the conntrackd.conf for the node, tuned generously: reliable
// netlink events, large netlink and socket buffers, a hash table and
// resend queue sized for Flows, no systemd, no syslog.
func (c FTFW) Config() string {
	hash := 65536
	for hash < c.Flows/2 {
		hash <<= 1
	}
	limit := 4*c.Flows + 262144
	rsq := max(131072, 2*c.Flows)
	var ignore strings.Builder
	for _, a := range append([]string{"127.0.0.1"}, c.Ignore...) {
		fmt.Fprintf(&ignore, "\t\t\tIPv4_address %s\n", a)
	}
	return fmt.Sprintf(`Sync {
	Mode FTFW {
		ResendQueueSize %d
		ACKWindowSize 300
	}
	UDP Default {
		IPv4_address %s
		IPv4_Destination_Address %s
		Port 3780
		Interface %s
		SndSocketBuffer 16777216
		RcvSocketBuffer 16777216
		Checksum on
	}
}
General {
	Systemd off
	HashSize %d
	HashLimit %d
	LogFile %s
	Syslog off
	LockFile %s
	UNIX {
		Path %s
	}
	NetlinkBufferSize 67108864
	NetlinkBufferSizeMaxGrowth 268435456
	NetlinkEventsReliable On
	NetlinkOverrunResync On
	Filter From Userspace {
		Address Ignore {
%s		}
	}
}
`, rsq, c.Local, c.Peer, c.Interface, hash, limit, c.LogFile, c.LockFile, c.Socket, ignore.String())
}

// ConntrackdStats is what the labs read from conntrackd -s.
type ConntrackdStats struct {
	Internal, External int   // current active connections in each cache
	PktsRecv           int64 // packets received on the sync link
}

// ParseConntrackdStats parses conntrackd -s:
//
//	cache internal:
//	current active connections:	           0
//	...
//	cache external:
//	current active connections:	           5
//	...
//	UDP traffic (active device=vB):
//	                 112 Bytes sent                  556 Bytes recv
//	                   7 Pckts sent                   10 Pckts recv
func ParseConntrackdStats(out []byte) (ConntrackdStats, error) {
	var s ConntrackdStats
	section := ""
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "cache internal"):
			section = "internal"
		case strings.HasPrefix(line, "cache external"):
			section = "external"
		case strings.HasPrefix(line, "current active connections:"):
			v, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "current active connections:")))
			if err != nil {
				return s, fmt.Errorf("conntrackd -s: %q: %w", line, err)
			}
			if section == "internal" {
				s.Internal = v
			} else if section == "external" {
				s.External = v
			}
			seen++
		case strings.HasSuffix(line, "Pckts recv"):
			f := strings.Fields(line)
			if len(f) >= 6 {
				s.PktsRecv, _ = strconv.ParseInt(f[3], 10, 64)
			}
		}
	}
	if seen < 2 {
		return s, fmt.Errorf("conntrackd -s: no cache counts in %q", out)
	}
	return s, nil
}

// Kernel settings a large run raises.
const (
	CtMaxPath    = "/proc/sys/net/netfilter/nf_conntrack_max"
	HashsizePath = "/sys/module/nf_conntrack/parameters/hashsize"
)

// Sysctls raises kernel settings and puts them back. Safe for concurrent
// use (a signal handler may restore while the run raises).
type Sysctls struct {
	mu   stdsync.Mutex
	list []restore
}

// restore puts a setting back, but only if nobody changed it since we did.
type restore struct{ path, old, set string }

// Raise sets path to want if it holds less, remembering the first value
// it held for Restore.
func (s *Sysctls) Raise(path string, want int) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	old := strings.TrimSpace(string(b))
	if cur, _ := strconv.Atoi(old); cur >= want {
		return nil
	}
	set := strconv.Itoa(want)
	if err := os.WriteFile(path, []byte(set), 0o644); err != nil {
		return fmt.Errorf("cannot raise %s to %s: %w", path, set, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.list {
		if s.list[i].path == path {
			s.list[i].set = set
			return nil
		}
	}
	s.list = append(s.list, restore{path, old, set})
	return nil
}

// Restore puts back every setting Raise changed, newest first, unless
// someone else changed it meanwhile.
func (s *Sysctls) Restore() {
	s.mu.Lock()
	list := s.list
	s.list = nil
	s.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		r := list[i]
		b, err := os.ReadFile(r.path)
		if err == nil && strings.TrimSpace(string(b)) == r.set {
			os.WriteFile(r.path, []byte(r.old), 0o644)
		}
	}
}
