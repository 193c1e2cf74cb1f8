package proxyconf

import (
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics and that whatever it accepts
// prints, with String, as text that parses to the same Config and prints
// the same again.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		telegramConf,
		"proxy_for 1 [2001:b28:f23d:f001::d]:8888;",
		"proxy 1.1.1.1:1;\nproxy_for 2 h-2.example:2 # c\n;",
		"min_connections 1; max_connections 2; timeout 10; default -1; proxy_for -1 a:1;",
		"proxy_for 1\t[::ffff:1.2.3.4]:65535;",
		"proxy_for 1 1.1.1.1:1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz", data)
		if err != nil {
			if _, ok := err.(*SyntaxError); !ok {
				t.Fatalf("error %T: %v", err, err)
			}
			return
		}
		s := c.String()
		again, err := Parse("printed", []byte(s))
		if err != nil {
			t.Fatalf("%q printed as %q: %v", data, s, err)
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("%q printed as %q parses to %+v, want %+v", data, s, again, c)
		}
		if s2 := again.String(); s2 != s {
			t.Fatalf("printed %q, then %q", s, s2)
		}
	})
}
