//go:build !amd64 || noasm

package cipher

import (
	"github.com/mtproxy-go/mtproxy/cipher/internal/aes256"
	"github.com/mtproxy-go/mtproxy/cipher/internal/tier"
)

// hasKernels reports false: without assembly every tier, which
// tier.Active is limited to Generic then anyway, runs the standard
// library.
func hasKernels(tier.Tier) bool {
	return false
}

func xorBlocks(tier.Tier, *aes256.Schedule, uint64, uint64, *byte, *byte, int) {
	panic("cipher: no kernels in this build")
}

func xorBlocks2(tier.Tier, *aes256.Schedule, uint64, uint64, *aes256.Schedule, uint64, uint64, *byte, *byte, int) {
	panic("cipher: no kernels in this build")
}
