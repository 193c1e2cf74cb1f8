// Package svgchart draws grouped bar charts as a standalone SVG document:
// one panel per metric, one group of bars per scenario, one bar per proxy,
// each bar labelled with its value.
package svgchart

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
)

// Chart is one panel.
type Chart struct {
	Title  string
	Unit   string   // shown by the title, e.g. "MB/s"
	Groups []string // clusters along the x axis
	// Values[g][s] is the bar of series s in group g; NaN draws no bar.
	Values [][]float64
}

// Layout, in SVG user units.
const (
	width       = 960
	panelHeight = 260
	legendH     = 60
	left        = 80 // room for the y labels
	right       = 20
	plotTop     = 40 // within a panel: title above
	plotH       = 170
)

// palette holds distinguishable colours for up to eight series; more
// series reuse them.
var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"}

// Write draws the charts one above the other under title, with a legend
// naming series, the bars of each group in that order.
func Write(w io.Writer, title string, series []string, charts []Chart) error {
	bw := bufio.NewWriter(w)
	height := legendH + panelHeight*len(charts)
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(bw, `<text x="%d" y="22" font-size="16" font-weight="bold">%s</text>`+"\n", left, esc(title))
	for i, s := range series {
		x := left + i*150
		fmt.Fprintf(bw, `<rect x="%d" y="36" width="12" height="12" fill="%s"/><text x="%d" y="46">%s</text>`+"\n",
			x, color(i), x+16, esc(s))
	}
	for i, c := range charts {
		panel(bw, legendH+i*panelHeight, len(series), c)
	}
	fmt.Fprintln(bw, "</svg>")
	return bw.Flush()
}

func panel(w io.Writer, top, nseries int, c Chart) {
	title := c.Title
	if c.Unit != "" {
		title += " (" + c.Unit + ")"
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>`+"\n", left, top+20, esc(title))
	peak := 0.0
	for _, g := range c.Values {
		for _, v := range g {
			if !math.IsNaN(v) {
				peak = max(peak, v)
			}
		}
	}
	top0, step := axis(peak)
	y0 := float64(top + plotTop + plotH) // the baseline
	scale := plotH / top0
	for v := 0.0; v <= top0*1.0001; v += step {
		y := y0 - v*scale
		fmt.Fprintf(w, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`, left, width-right, y, y)
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n", left-6, y+4, strconv.FormatFloat(v, 'f', -1, 64))
	}
	if len(c.Groups) == 0 || nseries == 0 {
		return
	}
	groupW := float64(width-left-right) / float64(len(c.Groups))
	barW := min(groupW*0.8/float64(nseries), 60)
	for g, name := range c.Groups {
		x0 := float64(left) + groupW*float64(g) + (groupW-barW*float64(nseries))/2
		for s := range nseries {
			v := math.NaN()
			if s < len(c.Values[g]) {
				v = c.Values[g][s]
			}
			if math.IsNaN(v) {
				continue
			}
			x, h := x0+barW*float64(s), v*scale
			fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x+1, y0-h, barW-2, h, color(s))
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n", x+barW/2, y0-h-3, format(v))
		}
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", float64(left)+groupW*(float64(g)+0.5), y0+16, esc(name))
	}
	fmt.Fprintf(w, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#333"/>`+"\n", left, width-right, y0, y0)
}

// axis returns a round top for an axis showing values up to peak, and the
// step between four or five grid lines.
func axis(peak float64) (top, step float64) {
	if peak <= 0 {
		return 1, 0.25
	}
	mag := math.Pow(10, math.Floor(math.Log10(peak)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if top = m * mag; top >= peak {
			break
		}
	}
	return top, top / 4
}

// format prints v with three significant digits and no exponent for the
// usual magnitudes.
func format(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', max(0, 2-int(math.Floor(math.Log10(a)))), 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func color(i int) string { return palette[i%len(palette)] }

func esc(s string) string { return html.EscapeString(s) }
