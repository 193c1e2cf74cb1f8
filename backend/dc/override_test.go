package dc

import (
	"strings"
	"testing"
)

func TestOverride(t *testing.T) {
	type lookup struct {
		dc    int16
		v6    bool
		want  string
		known bool
	}
	type override struct {
		id   int
		addr string
	}
	tests := []struct {
		name      string
		overrides []override
		lookups   []lookup
	}{
		{
			"v4 keeps default v6, serves media",
			[]override{{2, "192.0.2.2:8443"}},
			[]lookup{
				{2, false, "192.0.2.2:8443", true},
				{2, true, wantAddr[2][1], true},
				{-2, false, "192.0.2.2:8443", true},
				{-2, true, wantAddr[2][1], true},
			},
		},
		{
			"bracketed v6 keeps default v4",
			[]override{{1, "[2001:db8::1]:443"}},
			[]lookup{
				{1, true, "[2001:db8::1]:443", true},
				{1, false, wantAddr[1][0], true},
				{-1, true, "[2001:db8::1]:443", true},
			},
		},
		{
			"v6 normalised",
			[]override{{3, "[2001:0DB8:0:0::0001]:0443"}},
			[]lookup{{3, true, "[2001:db8::1]:443", true}},
		},
		{
			"v4-mapped v6 is v4",
			[]override{{3, "[::ffff:192.0.2.3]:443"}},
			[]lookup{{3, false, "192.0.2.3:443", true}, {3, true, wantAddr[3][1], true}},
		},
		{
			"host name goes to v4 slot",
			[]override{{4, "dc4.example.net:443"}},
			[]lookup{{4, false, "dc4.example.net:443", true}, {4, true, wantAddr[4][1], true}},
		},
		{
			"media override wins over its DC, per family",
			[]override{{5, "192.0.2.5:443"}, {-5, "192.0.2.55:443"}},
			[]lookup{
				{5, false, "192.0.2.5:443", true},
				{-5, false, "192.0.2.55:443", true},
				{-5, true, wantAddr[5][1], true},
			},
		},
		{
			"new DC, v6 only, falls back across families",
			[]override{{7, "[2001:db8::7]:443"}},
			[]lookup{
				{7, false, "[2001:db8::7]:443", true},
				{-7, false, "[2001:db8::7]:443", true},
				{8, false, wantAddr[2][0], false},
			},
		},
		{
			"media-only DC",
			[]override{{-9, "192.0.2.9:443"}},
			[]lookup{
				{-9, true, "192.0.2.9:443", true},
				{9, false, wantAddr[2][0], false},
			},
		},
		{
			"last override wins",
			[]override{{2, "192.0.2.1:1"}, {2, "192.0.2.2:2"}},
			[]lookup{{2, false, "192.0.2.2:2", true}},
		},
		{
			"largest id",
			[]override{{-10000, "192.0.2.10:443"}},
			[]lookup{{-10000, false, "192.0.2.10:443", true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := Default()
			for _, o := range tt.overrides {
				if err := tab.Override(o.id, o.addr); err != nil {
					t.Fatalf("Override(%d, %q): %v", o.id, o.addr, err)
				}
			}
			for _, l := range tt.lookups {
				got, known := tab.Lookup(l.dc, l.v6)
				if got != l.want || known != l.known {
					t.Errorf("Lookup(%d, v6=%v) = %q, %v; want %q, %v", l.dc, l.v6, got, known, l.want, l.known)
				}
			}
		})
	}
}

func TestOverrideErrors(t *testing.T) {
	tests := []struct {
		id         int
		addr, want string
	}{
		{0, "192.0.2.1:443", "dc: DC id 0 out of range"},
		{10001, "192.0.2.1:443", "DC id 10001 out of range: want 1..10000 or -10000..-1 (test DCs are not supported)"},
		{-10002, "192.0.2.1:443", "DC id -10002 out of range"},
		{2, "192.0.2.1", `dc: override for DC 2: address 192.0.2.1: missing port in address`},
		{2, "", "missing port"},
		{2, ":443", `address ":443": missing host`},
		{2, "192.0.2.1:0", `bad port "0", want 1..65535`},
		{2, "192.0.2.1:65536", `bad port "65536"`},
		{2, "192.0.2.1:-1", `bad port "-1"`},
		{2, "192.0.2.1:https", `bad port "https"`},
		{2, "2001:db8::1:443", `put an IPv6 literal in brackets`},
		{2, "2001:db8::1", `put an IPv6 literal in brackets`},
		{2, "[2001:db8::1]", "missing port"},
		{2, "[2001:db8::1:443", "missing ']'"},
	}
	for _, tt := range tests {
		tab := Default()
		err := tab.Override(tt.id, tt.addr)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Override(%d, %q) = %v, want error containing %q", tt.id, tt.addr, err, tt.want)
		}
		if got, _ := tab.Lookup(2, false); got != wantAddr[2][0] {
			t.Errorf("failed Override(%d, %q) changed DC 2 to %q", tt.id, tt.addr, got)
		}
	}
}

func TestParseOverride(t *testing.T) {
	good := []struct {
		spec string
		id   int
		addr string
	}{
		{"2=149.154.167.51:443", 2, "149.154.167.51:443"},
		{"-4=[2001:db8::1]:443", -4, "[2001:db8::1]:443"},
		{"+3=dc3.example.net:8443", 3, "dc3.example.net:8443"},
		{"203=91.105.192.100:443", 203, "91.105.192.100:443"},
	}
	for _, tt := range good {
		id, addr, err := ParseOverride(tt.spec)
		if err != nil || id != tt.id || addr != tt.addr {
			t.Errorf("ParseOverride(%q) = %d, %q, %v; want %d, %q", tt.spec, id, addr, err, tt.id, tt.addr)
		}
	}
	bad := []struct{ spec, want string }{
		{"", `dc: override "": want ID=HOST:PORT`},
		{"2:192.0.2.1:443", "want ID=HOST:PORT"},
		{"=192.0.2.1:443", `DC id "" is not a number`},
		{"two=192.0.2.1:443", `DC id "two" is not a number`},
		{"0=192.0.2.1:443", "DC id 0 out of range"},
		{"10002=192.0.2.1:443", "DC id 10002 out of range"},
		{"2=", "missing port"},
		{"2=192.0.2.1", `dc: override "2=192.0.2.1": address 192.0.2.1: missing port in address`},
		{"2=192.0.2.1:99999", "bad port"},
		{"2=2001:db8::1:443", "brackets"},
	}
	for _, tt := range bad {
		_, _, err := ParseOverride(tt.spec)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseOverride(%q) = %v, want error containing %q", tt.spec, err, tt.want)
		}
	}
}
