//go:build !amd64 || noasm

package cbc

import "github.com/mtproxy-go/mtproxy/cipher/internal/tier"

// byTier holds the one tier this build has.
var byTier = [...]kernels{
	tier.Generic: {genericEncrypter, genericDecrypter},
}
