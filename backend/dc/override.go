package dc

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Override sets the address of DC id (negative for a media DC) to addr,
// given as HOST:PORT with IPv6 literals in brackets. An IPv6 literal
// replaces the DC's IPv6 address, anything else (IPv4 or a host name) its
// IPv4 one; the other family keeps its address. An override for N also
// serves -N, except in a family where -N has an override of its own.
func (t *Table) Override(id int, addr string) error {
	if err := checkID(id); err != nil {
		return err
	}
	a, v6, err := normalize(addr)
	if err != nil {
		return fmt.Errorf("dc: override for DC %d: %w", id, err)
	}
	e := t.addrs[int16(id)]
	if v6 {
		e.v6 = a
	} else {
		e.v4 = a
	}
	t.addrs[int16(id)] = e
	return nil
}

// ParseOverride splits and checks a command-line override "ID=HOST:PORT",
// such as "2=149.154.167.51:443" or "-4=[2001:db8::1]:443".
func ParseOverride(spec string) (id int, addr string, err error) {
	idText, addr, ok := strings.Cut(spec, "=")
	if !ok {
		return 0, "", fmt.Errorf("dc: override %q: want ID=HOST:PORT", spec)
	}
	id, err = strconv.Atoi(idText)
	if err != nil {
		return 0, "", fmt.Errorf("dc: override %q: DC id %q is not a number", spec, idText)
	}
	if err := checkID(id); err != nil {
		return 0, "", err
	}
	if _, _, err := normalize(addr); err != nil {
		return 0, "", fmt.Errorf("dc: override %q: %w", spec, err)
	}
	return id, addr, nil
}

// normalize checks a HOST:PORT address and returns it in the form the
// dialer gets, and whether it belongs in the IPv6 slot.
func normalize(addr string) (string, bool, error) {
	if strings.Count(addr, ":") > 1 && !strings.HasPrefix(addr, "[") {
		return "", false, fmt.Errorf("address %q: put an IPv6 literal in brackets, as in [2001:db8::1]:443", addr)
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", false, err
	}
	if host == "" {
		return "", false, fmt.Errorf("address %q: missing host", addr)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		return "", false, fmt.Errorf("address %q: bad port %q, want 1..65535", addr, portText)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return net.JoinHostPort(host, strconv.FormatUint(port, 10)), false, nil
	}
	// An IPv4-mapped IPv6 address is dialled over IPv4.
	ip = ip.Unmap()
	return netip.AddrPortFrom(ip, uint16(port)).String(), ip.Is6(), nil
}
