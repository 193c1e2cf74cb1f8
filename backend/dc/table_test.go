package dc

import (
	"net/netip"
	"testing"
)

// want is protocol.md §5.1, written out independently of builtin.
var wantAddr = map[int16][2]string{
	1:   {"149.154.175.50:443", "[2001:b28:f23d:f001::a]:443"},
	2:   {"149.154.167.51:443", "[2001:67c:4e8:f002::a]:443"},
	3:   {"149.154.175.100:443", "[2001:b28:f23d:f003::a]:443"},
	4:   {"149.154.167.91:443", "[2001:67c:4e8:f004::a]:443"},
	5:   {"149.154.171.5:443", "[2001:b28:f23f:f005::a]:443"},
	203: {"91.105.192.100:443", "[2a0a:f280:203:a:5000::100]:443"},
}

func TestDefaultTable(t *testing.T) {
	tab := Default()
	for id, w := range wantAddr {
		for _, dc := range []int16{id, -id} {
			for i, v6 := range []bool{false, true} {
				got, known := tab.Lookup(dc, v6)
				if got != w[i] || !known {
					t.Errorf("Lookup(%d, v6=%v) = %q, %v; want %q, true", dc, v6, got, known, w[i])
				}
				ap, err := netip.ParseAddrPort(got)
				if err != nil || ap.Addr().Is6() != v6 || ap.Port() != 443 {
					t.Errorf("Lookup(%d, v6=%v) = %q: not an address of that family on port 443", dc, v6, got)
				}
			}
		}
	}
}

func TestUnknownGoesToDefault(t *testing.T) {
	tab := Default()
	for _, dc := range []int16{0, 6, -6, 100, 202, 204, 10000, 10002, -10002, 32767, -32768} {
		for i, v6 := range []bool{false, true} {
			got, known := tab.Lookup(dc, v6)
			if got != wantAddr[2][i] || known {
				t.Errorf("Lookup(%d, v6=%v) = %q, %v; want %q, false", dc, v6, got, known, wantAddr[2][i])
			}
		}
	}
}

func TestSetDefault(t *testing.T) {
	tab := Default()
	if err := tab.SetDefault(4); err != nil {
		t.Fatal(err)
	}
	if got, known := tab.Lookup(0, false); got != wantAddr[4][0] || known {
		t.Errorf("after SetDefault(4), Lookup(0) = %q, %v", got, known)
	}
	for _, id := range []int{0, 6, 10002, -10002, 40000} {
		if err := tab.SetDefault(id); err == nil {
			t.Errorf("SetDefault(%d) succeeded", id)
		}
	}
	if err := tab.Override(7, "192.0.2.7:443"); err != nil {
		t.Fatal(err)
	}
	if err := tab.SetDefault(7); err != nil {
		t.Fatal(err)
	}
	if got, _ := tab.Lookup(9, true); got != "192.0.2.7:443" {
		t.Errorf("default DC 7 with only IPv4: Lookup(9, v6) = %q", got)
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	tab := Default()
	if err := tab.Override(-2, "192.0.2.1:443"); err != nil {
		t.Fatal(err)
	}
	var sink string
	allocs := testing.AllocsPerRun(100, func() {
		for _, dc := range []int16{1, -1, 2, -2, 203, 0, 9, -10002} {
			sink, _ = tab.Lookup(dc, dc%2 == 0)
		}
	})
	if allocs != 0 {
		t.Errorf("Lookup allocates %v times per run", allocs)
	}
	_ = sink
}

func BenchmarkLookup(b *testing.B) {
	tab := Default()
	for b.Loop() {
		tab.Lookup(-2, true)
	}
}
