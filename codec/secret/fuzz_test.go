package secret

import "testing"

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		exampleKeyHex,
		"dd" + exampleKeyHex,
		exampleEEHex,
		"7gARIjNEVWZ3iJmqu8zd7v9leGFtcGxlLmNvbQ",
		"7gARIjNEVWZ3iJmqu8zd7v9leGFtcGxlLmNvbQ==",
		"3QARIjNEVWZ3iJmqu8zd7v8",
		"+/+/+/+/+/+/+/+/+/+/+w==",
		"ee" + exampleKeyHex,
		exampleKeyHex + "0",
		"000000000000000000000N", // base64 of a classic key, all hex digits
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			return
		}
		if err := s.check(); err != nil {
			t.Fatalf("Parse(%q) = %+v: %v", in, s, err)
		}
		for _, enc := range []string{s.Hex(), s.Base64()} {
			got, err := Parse(enc)
			if err != nil || got != s {
				t.Fatalf("Parse(%q) = %+v; re-encoded as %q it parses to %+v, %v", in, s, enc, got, err)
			}
		}
	})
}
