// Package tier picks, once per process, which AES implementation the
// cipher packages run: the fastest the CPU supports, unless the
// MTPROXY_CIPHER environment variable asks for a lower one (so that every
// tier can be tested on a machine that has the highest) or the binary was
// built with the noasm tag.
package tier

import (
	"fmt"
	"os"

	"github.com/klauspost/cpuid/v2"
)

// Tier is an implementation level, from slowest to fastest.
type Tier int

const (
	Generic Tier = iota // portable Go (the standard library's AES)
	AESNI               // AES-NI, 8 blocks in flight
	VAES256             // VAES on 256-bit registers (AVX2 + VAES)
	VAES512             // VAES on 512-bit registers (AVX-512F + VAES)
)

var names = [...]string{Generic: "generic", AESNI: "aesni", VAES256: "vaes256", VAES512: "vaes512"}

func (t Tier) String() string {
	if t >= 0 && int(t) < len(names) {
		return names[t]
	}
	return fmt.Sprintf("tier(%d)", int(t))
}

// Parse maps a name as used in MTPROXY_CIPHER to its tier.
func Parse(name string) (Tier, error) {
	for t, n := range names {
		if n == name {
			return Tier(t), nil
		}
	}
	return 0, fmt.Errorf("unknown cipher tier %q (want generic, aesni, vaes256 or vaes512)", name)
}

// EnvVar names the override.
const EnvVar = "MTPROXY_CIPHER"

// Supported returns the highest tier this CPU and build can run.
func Supported() Tier {
	if noasm || !amd64 {
		return Generic
	}
	switch {
	case cpuid.CPU.Supports(cpuid.AVX512F, cpuid.AVX512VL, cpuid.VAES):
		return VAES512
	case cpuid.CPU.Supports(cpuid.AVX2, cpuid.VAES):
		return VAES256
	case cpuid.CPU.Supports(cpuid.AESNI, cpuid.SSE4):
		return AESNI
	}
	return Generic
}

// Select returns the tier to run: the supported one, or the one the
// override names if that is not higher. It errs on a bad or unsupported
// override so that a typo does not silently run another tier.
func Select(override string) (Tier, error) {
	best := Supported()
	if override == "" {
		return best, nil
	}
	t, err := Parse(override)
	if err != nil {
		return best, fmt.Errorf("%s: %w", EnvVar, err)
	}
	if t > best {
		return best, fmt.Errorf("%s=%s: this CPU or build supports at most %s", EnvVar, t, best)
	}
	return t, nil
}

// Active is the tier chosen at start from the CPU and MTPROXY_CIPHER.
// A bad override falls back to the best tier; ActiveErr says why.
var Active, ActiveErr = Select(os.Getenv(EnvVar))
