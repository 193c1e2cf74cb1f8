package rpc

import "hash/crc32"

// A frame is len(4) seq(4) body crc(4), all little-endian; len counts the
// whole frame and crc covers everything before it (§6.3).
const (
	// Overhead is what a frame adds to its body.
	Overhead = 12
	// MinFrameLen is the shortest frame: a body of one word, its type.
	MinFrameLen = 16
	// MaxFrameLen is FrameReader's default length limit, the one
	// mtprotoproxy applies; client packets are at most 1 044 480 bytes.
	MaxFrameLen = 1 << 24
	// BlockSize is the AES block size the encrypted stream is padded to.
	BlockSize = 16
)

// Sequence numbers of the two frames that open each direction; the frames
// after them count up from 0.
const (
	SeqNonce     int32 = -2
	SeqHandshake int32 = -1
)

// fillerLen is the length word that, standing alone, is a padding filler.
const fillerLen = 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum is the frame checksum of b: CRC-32C once the handshake agreed
// on it, CRC-32 (IEEE) before and otherwise.
func checksum(b []byte, crc32c bool) uint32 {
	if crc32c {
		return crc32.Checksum(b, castagnoli)
	}
	return crc32.ChecksumIEEE(b)
}

// AppendFrame appends to dst the frame with sequence number seq around
// body, whose length must be a positive multiple of 4. crc32c selects
// CRC-32C, for the frames after a handshake that agreed on it.
func AppendFrame(dst []byte, seq int32, body []byte, crc32c bool) []byte {
	start := len(dst)
	dst = append(StartFrame(dst), body...)
	return FinishFrame(dst, start, seq, crc32c)
}

// StartFrame appends the room for a frame header to dst, so that the body
// can be appended in place after it (say a PROXY_REQ header and then the
// client's packet) and the frame completed with FinishFrame.
func StartFrame(dst []byte) []byte {
	return append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
}

// FinishFrame completes the frame that StartFrame began at dst[start:]:
// it fills in the header and appends the checksum. The body, everything
// after the header, must be a positive multiple of 4 bytes long, or the
// peer would lose the frame boundaries; FinishFrame panics otherwise.
func FinishFrame(dst []byte, start int, seq int32, crc32c bool) []byte {
	n := len(dst) - start + 4
	if n < MinFrameLen || n%4 != 0 {
		panic("rpc: frame body not a positive multiple of 4 bytes")
	}
	le.PutUint32(dst[start:], uint32(n))
	le.PutUint32(dst[start+4:], uint32(seq))
	return le.AppendUint32(dst, checksum(dst[start:], crc32c))
}

// Pad appends filler words (04 00 00 00), which readers skip, until
// len(dst) is a multiple of BlockSize, so that the CBC stream can be
// flushed. dst must begin on a block boundary of the stream and hold whole
// frames.
func Pad(dst []byte) []byte {
	if len(dst)%4 != 0 {
		panic("rpc: padding a partial frame")
	}
	for len(dst)%BlockSize != 0 {
		dst = append(dst, fillerLen, 0, 0, 0)
	}
	return dst
}
