// Package dc maps the DC index a client asks for to the address of a
// Telegram data centre, for proxying in direct mode.
package dc

import (
	"fmt"
	"net"
)

// defaultPort is the port every DC listens on for obfuscated clients.
const defaultPort = "443"

// defaultDC receives clients whose DC index is unknown, as in mtg.
const defaultDC = 2

// maxDC is the largest |id| served; tdlib numbers test DCs from 10001 and
// their addresses are not known, so they stay unknown.
const maxDC = 10000

// builtin is the direct-mode address list shared by mtprotoproxy and mtg;
// 203 is the CDN DC only mtg knows.
var builtin = []struct {
	id     int16
	v4, v6 string
}{
	{1, "149.154.175.50", "2001:b28:f23d:f001::a"},
	{2, "149.154.167.51", "2001:67c:4e8:f002::a"},
	{3, "149.154.175.100", "2001:b28:f23d:f003::a"},
	{4, "149.154.167.91", "2001:67c:4e8:f004::a"},
	{5, "149.154.171.5", "2001:b28:f23f:f005::a"},
	{203, "91.105.192.100", "2a0a:f280:203:a:5000::100"},
}

// A Table maps DC indexes to "host:port" addresses. Configure it with
// Override and SetDefault before use; Lookup may then be called from
// many goroutines at once.
type Table struct {
	// addrs holds each id's own addresses. A media id (negative) takes
	// the slots it leaves empty from its positive counterpart.
	addrs map[int16]entry
	def   int16
}

// entry holds pre-formatted addresses so that Lookup does not allocate;
// an empty string means the family has no address.
type entry struct{ v4, v6 string }

// Default returns a new table with the built-in addresses, sending
// unknown indexes to DC 2.
func Default() *Table {
	t := &Table{addrs: make(map[int16]entry, len(builtin)), def: defaultDC}
	for _, b := range builtin {
		t.addrs[b.id] = entry{
			v4: net.JoinHostPort(b.v4, defaultPort),
			v6: net.JoinHostPort(b.v6, defaultPort),
		}
	}
	return t
}

// Lookup returns the address for the DC index dc from a client's
// handshake. Negative (media) indexes use the address of |dc| unless
// overridden. The preferred family is used if the DC has an address in it,
// else the other one. An unknown index gets the default DC's address
// and known=false.
func (t *Table) Lookup(dc int16, preferIPv6 bool) (addr string, known bool) {
	if e, ok := t.resolve(dc); ok {
		return e.pick(preferIPv6), true
	}
	e, _ := t.resolve(t.def)
	return e.pick(preferIPv6), false
}

// SetDefault makes unknown indexes go to DC id, which must be in the table.
func (t *Table) SetDefault(id int) error {
	if err := checkID(id); err != nil {
		return err
	}
	if _, ok := t.resolve(int16(id)); !ok {
		return fmt.Errorf("dc: default DC %d has no address", id)
	}
	t.def = int16(id)
	return nil
}

func (t *Table) resolve(dc int16) (entry, bool) {
	e, ok := t.addrs[dc]
	if dc < 0 {
		if base, found := t.addrs[-dc]; found {
			if e.v4 == "" {
				e.v4 = base.v4
			}
			if e.v6 == "" {
				e.v6 = base.v6
			}
			ok = true
		}
	}
	return e, ok
}

func (e entry) pick(preferIPv6 bool) string {
	if preferIPv6 && e.v6 != "" || e.v4 == "" {
		return e.v6
	}
	return e.v4
}

func checkID(id int) error {
	if id == 0 || id < -maxDC || id > maxDC {
		return fmt.Errorf("dc: DC id %d out of range: want 1..%d or -%d..-1 (test DCs are not supported)", id, maxDC, maxDC)
	}
	return nil
}
