//go:build !noasm

package tier

const noasm = false
