package doctor

import (
	"fmt"
	"io"
	"strings"
)

// Report writes rs as an aligned table, one check a line (items of a check
// on the lines below it, indented), then a summary line. It reports
// whether any check failed: the proxy should not go live like this.
//
//	OK    listen 0.0.0.0:443    <1ms  can be bound (0.0.0.0:443; released at once)
//	WARN  clock                 41ms  local clock 3.2 s ahead of core.telegram.org: …
//	FAIL  DC reachability        5s   0 of 5 DCs reachable (IPv4 preferred); …
//	                                    DC 1  149.154.175.50:443  unreachable: no answer within 5s
func Report(w io.Writer, rs []Result) (failed bool) {
	nameW, tookW := 0, 0
	took := make([]string, len(rs))
	for i, r := range rs {
		nameW = max(nameW, len(r.Name))
		if r.Status != Skip {
			took[i] = fmtDur(r.Took)
		}
		tookW = max(tookW, len(took[i]))
	}
	indent := strings.Repeat(" ", 4+2+nameW+2+tookW+2+2)
	var counts [4]int
	var b strings.Builder
	for i, r := range rs {
		if r.Status >= OK && int(r.Status) < len(counts) {
			counts[r.Status]++
		}
		failed = failed || r.Status == Fail
		lines := strings.Split(strings.TrimRight(r.Detail, "\n"), "\n")
		line := fmt.Sprintf("%-4s  %-*s  %*s  %s", r.Status, nameW, r.Name, tookW, took[i], lines[0])
		b.WriteString(strings.TrimRight(line, " "))
		b.WriteByte('\n')
		for _, l := range lines[1:] {
			b.WriteString(indent)
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	fmt.Fprintf(&b, "\n%d checks: %d OK, %d WARN, %d FAIL, %d SKIP: ", len(rs), counts[OK], counts[Warn], counts[Fail], counts[Skip])
	switch {
	case failed:
		b.WriteString("not ready, fix the FAIL lines first\n")
	case counts[Warn] > 0:
		b.WriteString("ready, but see the WARN lines\n")
	default:
		b.WriteString("ready\n")
	}
	io.WriteString(w, b.String())
	return failed
}
