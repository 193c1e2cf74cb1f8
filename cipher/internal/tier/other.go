//go:build !amd64

package tier

const amd64 = false
