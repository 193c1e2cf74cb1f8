package cbc

import (
	"bytes"
	"math/rand/v2"
	"runtime/debug"
	"syscall"
	"testing"
)

// TestStaysInBounds puts the buffers against inaccessible pages, at either
// end, so that a kernel touching a byte outside src or dst faults (the
// lane loads reach back 16 bytes, and short passes must not load lanes
// past the end).
func TestStaysInBounds(t *testing.T) {
	page := syscall.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, 4*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skip("mmap:", err)
	}
	defer syscall.Munmap(mem)
	for _, guard := range [][]byte{mem[:page], mem[3*page:]} {
		if err := syscall.Mprotect(guard, syscall.PROT_NONE); err != nil {
			t.Skip("mprotect:", err)
		}
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))

	r := rand.New(rand.NewPCG(5, 6))
	key, iv := randKeyIV(r)
	// Every count up to two full zmm passes and then some, and the two
	// usable pages whole.
	var counts []int
	for blocks := range 80 {
		counts = append(counts, blocks)
	}
	counts = append(counts, 2*page/BlockSize-1, 2*page/BlockSize)
	for _, tr := range supportedTiers() {
		for _, blocks := range counts {
			n := blocks * BlockSize
			plain := make([]byte, n)
			fill(r, plain)
			want := make([]byte, n)
			stdEnc, _ := stdModes(&key, &iv)
			stdEnc.CryptBlocks(want, plain)
			// At the start of the usable pages, and at their end.
			for _, buf := range [][]byte{mem[page : page+n], mem[3*page-n : 3*page]} {
				copy(buf, plain)
				newTierEncrypter(tr, &key, &iv).CryptBlocks(buf, buf)
				if !bytes.Equal(buf, want) {
					t.Fatalf("%v: encrypt %d blocks: mismatch", tr, blocks)
				}
				newTierDecrypter(tr, &key, &iv).CryptBlocks(buf, buf)
				if !bytes.Equal(buf, plain) {
					t.Fatalf("%v: decrypt %d blocks: mismatch", tr, blocks)
				}
			}
		}
	}
}
