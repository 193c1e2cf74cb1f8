package modes

import (
	"strings"
	"testing"
)

func TestParseAndName(t *testing.T) {
	names := []string{"echo", "sink"}
	for i, n := range names {
		got, err := Parse("x", names, n)
		if err != nil || got != i || Name(names, got) != n {
			t.Errorf("%q: %d, %v", n, got, err)
		}
	}
	if _, err := Parse("fakex", names, "loud"); err == nil || !strings.Contains(err.Error(), "fakex: unknown mode \"loud\" (want one of echo, sink)") {
		t.Errorf("unknown name: %v", err)
	}
	if Name(names, 5) != "Mode(5)" || Name(names, -1) != "Mode(-1)" {
		t.Error("out-of-range names")
	}
}
