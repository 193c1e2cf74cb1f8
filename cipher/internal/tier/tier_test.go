package tier

import "testing"

func TestSelect(t *testing.T) {
	best := Supported()
	if got, err := Select(""); err != nil || got != best {
		t.Fatalf("no override: %v, %v; want %v", got, err, best)
	}
	for tr := Generic; tr <= best; tr++ {
		if got, err := Select(tr.String()); err != nil || got != tr {
			t.Errorf("override %s: %v, %v", tr, got, err)
		}
	}
	if best < VAES512 {
		if _, err := Select(VAES512.String()); err == nil {
			t.Error("an override above the supported tier must fail")
		}
	}
	if _, err := Select("fastest"); err == nil {
		t.Error("an unknown name must fail")
	}
}

func TestNamesRoundTrip(t *testing.T) {
	for tr := Generic; tr <= VAES512; tr++ {
		if got, err := Parse(tr.String()); err != nil || got != tr {
			t.Errorf("%v: %v, %v", tr, got, err)
		}
	}
}
