package dc

import "testing"

// FuzzOverride: whatever ParseOverride accepts, Override must accept too
// and Lookup must then serve, without panics.
func FuzzOverride(f *testing.F) {
	for _, s := range []string{"2=127.0.0.1:443", "-4=[::1]:1", "203=example.org:8888", "x=y", "=", "1=[::1", "10001=1.2.3.4:5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		id, addr, err := ParseOverride(spec)
		if err != nil {
			return
		}
		tab := Default()
		if err := tab.Override(id, addr); err != nil {
			t.Fatalf("ParseOverride accepted %q but Override refused it: %v", spec, err)
		}
		if got, known := tab.Lookup(int16(id), false); !known || got == "" {
			t.Fatalf("after overriding %q, Lookup(%d) = %q, %v", spec, id, got, known)
		}
	})
}
