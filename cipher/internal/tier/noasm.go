//go:build noasm

package tier

const noasm = true
