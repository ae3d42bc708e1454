package kernel

import (
	"fmt"
	"net"
	"net/netip"
)

// LocalAddrs returns the addresses of the interfaces of the Conn's network
// namespace (net.InterfaceAddrs read inside it), unmapped and without
// zones: the addresses at which a flow ends or starts on this node itself.
// They change as addresses come and go (a VRRP virtual address moving), so
// callers read them when they need them. Safe for concurrent use.
func (c *Conn) LocalAddrs() ([]netip.Addr, error) {
	var addrs []net.Addr
	err := c.inNetNS(func() error {
		var err error
		addrs, err = net.InterfaceAddrs()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("interface addresses: %w", err)
	}
	return IPAddrs(addrs), nil
}

// IPAddrs converts net.InterfaceAddrs' answer to unmapped, zone-less
// addresses; what is not an IP address is left out.
func IPAddrs(addrs []net.Addr) []netip.Addr {
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		var ip net.IP
		switch v := a.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		default:
			continue
		}
		if x, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, x.Unmap().WithZone(""))
		}
	}
	return out
}
