package faketls

import "encoding/binary"

// cursor reads big-endian TLS fields from the front of a byte slice. Every
// read checks bounds and reports failure instead of panicking, so parsers
// built on it are safe on any input.
type cursor []byte

func (c *cursor) empty() bool { return len(*c) == 0 }

func (c *cursor) u8() (byte, bool) {
	if len(*c) < 1 {
		return 0, false
	}
	v := (*c)[0]
	*c = (*c)[1:]
	return v, true
}

func (c *cursor) u16() (uint16, bool) {
	if len(*c) < 2 {
		return 0, false
	}
	v := binary.BigEndian.Uint16(*c)
	*c = (*c)[2:]
	return v, true
}

func (c *cursor) u24() (int, bool) {
	if len(*c) < 3 {
		return 0, false
	}
	v := int((*c)[0])<<16 | int((*c)[1])<<8 | int((*c)[2])
	*c = (*c)[3:]
	return v, true
}

// bytes returns the next n bytes, aliasing the input.
func (c *cursor) bytes(n int) ([]byte, bool) {
	if n < 0 || len(*c) < n {
		return nil, false
	}
	v := (*c)[:n:n]
	*c = (*c)[n:]
	return v, true
}

// vec8 returns a vector with a one-byte length prefix.
func (c *cursor) vec8() (cursor, bool) {
	n, ok := c.u8()
	if !ok {
		return nil, false
	}
	return c.bytes(int(n))
}

// vec16 returns a vector with a two-byte length prefix.
func (c *cursor) vec16() (cursor, bool) {
	n, ok := c.u16()
	if !ok {
		return nil, false
	}
	return c.bytes(int(n))
}
