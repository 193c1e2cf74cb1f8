package cipher

import (
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/mtproxy-go/mtproxy/cipher/internal/tier"
)

var benchSizes = []int{64, 1 << 10, 16 << 10, 64 << 10}

// benchImpl is one column of the comparison: the standard library or a
// tier of this package.
type benchImpl struct {
	name string
	ctr  func(size int) func(b *testing.B) // one stream
	pair func(size int) func(b *testing.B) // two streams over the same data
}

func benchImpls() []benchImpl {
	var key, keyB [32]byte
	var iv, ivB [16]byte
	keyB[0], ivB[0] = 1, 1
	impls := []benchImpl{{
		name: "crypto/cipher",
		ctr: func(size int) func(*testing.B) {
			return benchStream(stdCTR(&key, &iv), size)
		},
		pair: func(size int) func(*testing.B) {
			a, c := stdCTR(&key, &iv), stdCTR(&keyB, &ivB)
			return benchLoop(size, func(buf []byte) {
				a.XORKeyStream(buf, buf)
				c.XORKeyStream(buf, buf)
			})
		},
	}}
	for tr := tier.Generic; tr <= tier.Supported(); tr++ {
		impls = append(impls, benchImpl{
			name: tr.String(),
			ctr: func(size int) func(*testing.B) {
				return benchStream(newCTR(tr, &key, &iv), size)
			},
			pair: func(size int) func(*testing.B) {
				a, c := newCTR(tr, &key, &iv), newCTR(tr, &keyB, &ivB)
				return benchLoop(size, func(buf []byte) { XORKeyStreams(buf, buf, a, c) })
			},
		})
	}
	return impls
}

func benchStream(s interface{ XORKeyStream(dst, src []byte) }, size int) func(*testing.B) {
	return benchLoop(size, func(buf []byte) { s.XORKeyStream(buf, buf) })
}

func benchLoop(size int, f func(buf []byte)) func(*testing.B) {
	return func(b *testing.B) {
		buf := make([]byte, size)
		b.SetBytes(int64(size))
		for b.Loop() {
			f(buf)
		}
	}
}

func sizeName(size int) string {
	if size >= 1<<10 {
		return fmt.Sprintf("%dKiB", size>>10)
	}
	return fmt.Sprintf("%dB", size)
}

// BenchmarkCTR measures one stream in place, per implementation and size.
func BenchmarkCTR(b *testing.B) {
	for _, impl := range benchImpls() {
		for _, size := range benchSizes {
			b.Run(impl.name+"/"+sizeName(size), impl.ctr(size))
		}
	}
}

// BenchmarkXORKeyStreams measures the relay transform, two keystreams
// over the same bytes: two passes for crypto/cipher, one fused pass for
// the tiers.
func BenchmarkXORKeyStreams(b *testing.B) {
	for _, impl := range benchImpls() {
		for _, size := range benchSizes {
			b.Run(impl.name+"/"+sizeName(size), impl.pair(size))
		}
	}
}

var benchTable = flag.Bool("benchtable", false, "print the benchmarks as Markdown tables (make bench-cipher)")

// TestBenchTable prints, with -benchtable, MB/s of every implementation
// and size and the ratio to crypto/cipher measured in the same run.
func TestBenchTable(t *testing.T) {
	if !*benchTable {
		t.Skip("run with -benchtable")
	}
	impls := benchImpls()
	var out strings.Builder
	for _, table := range []struct {
		title string
		bench func(benchImpl, int) func(*testing.B)
	}{
		{"One stream (XORKeyStream)", func(i benchImpl, size int) func(*testing.B) { return i.ctr(size) }},
		{"Two streams over the same bytes (crypto/cipher: two passes; tiers: XORKeyStreams)", func(i benchImpl, size int) func(*testing.B) { return i.pair(size) }},
	} {
		fmt.Fprintf(&out, "\n%s, MB/s (× crypto/cipher):\n\n| size |", table.title)
		for _, impl := range impls {
			fmt.Fprintf(&out, " %s |", impl.name)
		}
		out.WriteString("\n|---:|" + strings.Repeat("---:|", len(impls)) + "\n")
		for _, size := range benchSizes {
			// Round-robin over the implementations, keeping each one's best
			// run: load from other processes then hits them all alike.
			mbs := make([]float64, len(impls))
			for range 5 {
				for i, impl := range impls {
					mbs[i] = max(mbs[i], throughput(table.bench(impl, size), size))
				}
			}
			fmt.Fprintf(&out, "| %s | %.0f |", sizeName(size), mbs[0])
			for _, v := range mbs[1:] {
				fmt.Fprintf(&out, " %.0f (%.2f×) |", v, v/mbs[0])
			}
			out.WriteString("\n")
		}
	}
	fmt.Print(out.String())
}

// throughput runs f once as a benchmark and returns its MB/s.
func throughput(f func(*testing.B), size int) float64 {
	r := testing.Benchmark(f)
	return float64(r.N) * float64(size) / float64(r.T.Microseconds())
}
