package cipher

import (
	"os"
	"syscall"
	"testing"

	"github.com/mtproxy-go/mtproxy/cipher/internal/tier"
)

// guarded returns one page of memory between two inaccessible pages, so
// that any access past either end of it faults.
func guarded(t *testing.T) []byte {
	page := os.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, 3*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(mem) })
	if err := syscall.Mprotect(mem[:page], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mprotect(mem[2*page:], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	return mem[page : 2*page : 2*page]
}

// TestGuardPages places source and destination flush against inaccessible
// memory on either side: a kernel that touches a byte outside them, as a
// wrong mask or tail would, crashes the test.
func TestGuardPages(t *testing.T) {
	forEachTier(t, func(t *testing.T, tr tier.Tier) {
		rng := newRand(t)
		srcPage, dstPage := guarded(t), guarded(t)
		for n := range 600 {
			key, iv := randKeyIV(rng)
			_, ivB := randKeyIV(rng)
			msg := make([]byte, n)
			fill(rng, msg)
			want := make([]byte, n)
			stdCTR(&key, &iv).XORKeyStream(want, msg)
			for _, atEnd := range []bool{false, true} {
				src, dst := srcPage[:n], dstPage[:n]
				if atEnd {
					src, dst = srcPage[len(srcPage)-n:], dstPage[len(dstPage)-n:]
				}
				copy(src, msg)
				newCTR(tr, &key, &iv).XORKeyStream(dst, src)
				checkEqual(t, dst, want, "length %d, at end %v", n, atEnd)
				newCTR(tr, &key, &iv).XORKeyStream(src, src)
				checkEqual(t, src, want, "length %d in place, at end %v", n, atEnd)

				copy(src, msg)
				a, b := newCTR(tr, &key, &iv), newCTR(tr, &key, &ivB)
				XORKeyStreams(dst, src, a, b)
				b2 := stdCTR(&key, &ivB)
				b2.XORKeyStream(dst, dst)
				checkEqual(t, dst, want, "fused length %d, at end %v", n, atEnd)
			}
		}
	})
}
