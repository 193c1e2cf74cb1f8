package svgchart

import (
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	var b strings.Builder
	err := Write(&b, "Bench <1>", []string{"ours", "theirs & co"}, []Chart{
		{Title: "Throughput", Unit: "MB/s", Groups: []string{"bulk-1", "bulk-16"}, Values: [][]float64{{512.6, 300}, {900, math.NaN()}}},
		{Title: "Empty", Groups: nil},
		{Title: "Zeros", Groups: []string{"a"}, Values: [][]float64{{0, 0}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	svg := b.String()
	// Well-formed XML.
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("not XML: %v\n%s", err, svg)
		}
	}
	for _, want := range []string{"Bench &lt;1&gt;", "theirs &amp; co", "Throughput (MB/s)", ">513<", ">300<", ">900<", "bulk-16"} {
		if !strings.Contains(svg, want) {
			t.Errorf("missing %q", want)
		}
	}
	// Three bars with values plus one in the zero chart pair: the NaN has none.
	if n := strings.Count(svg, "<rect x=") - 2; n != 3+2 {
		t.Errorf("%d bars, want 5", n)
	}
}

func TestAxis(t *testing.T) {
	for _, tt := range []struct{ peak, top float64 }{{0, 1}, {0.3, 0.5}, {7, 10}, {10, 10}, {12, 20}, {2100, 2500}, {4999, 5000}} {
		if top, step := axis(tt.peak); top != tt.top || step != top/4 {
			t.Errorf("axis(%v) = %v, %v; want %v", tt.peak, top, step, tt.top)
		}
	}
}

func TestFormat(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 1234.4: "1234", 512.6: "513", 12.345: "12.3", 1.5: "1.50", 0.01234: "0.0123"} {
		if got := format(v); got != want {
			t.Errorf("format(%v) = %q, want %q", v, got, want)
		}
	}
}
