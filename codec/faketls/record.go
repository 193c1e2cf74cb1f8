package faketls

import (
	"encoding/binary"
	"fmt"
)

// RecordReader takes the TLS records a client sends after the handshake
// apart (§4.6) and yields their payloads, which concatenated form the
// obfuscated2 stream. It accepts application-data records (17 03 03) of 0
// to MaxClientRecord bytes and ChangeCipherSpec records (14 03 03 00 01 01),
// which tdlib sends once before its first data and which, like mtg and
// mtprotoproxy, it skips wherever they appear. Anything else is
// ErrBadRecord, after which the reader keeps failing.
//
// It never copies payload and never allocates: it keeps only a partly
// received 5-byte header and the length left of the current record across
// calls. The zero value is ready to use; it is not safe for concurrent use.
type RecordReader struct {
	hdr    [recordHeaderLen]byte
	hdrLen int  // bytes of hdr received
	left   int  // payload bytes of the current record still to come
	ccs    bool // the current record is a ChangeCipherSpec
	err    error
}

// Next consumes bytes from the front of buf, the data just received, and
// returns the payload bytes among them, a sub-slice of buf, and the bytes
// it did not look at yet. Call it until rest is empty:
//
//	for len(buf) > 0 {
//		payload, buf, err = r.Next(buf)
//		if err != nil { ... }
//		use(payload) // may be empty
//	}
//
// Each call consumes at least one byte of a non-empty buf and returns at
// most one record's payload.
func (r *RecordReader) Next(buf []byte) (payload, rest []byte, err error) {
	if r.err != nil {
		return nil, nil, r.err
	}
	if r.left == 0 {
		k := copy(r.hdr[r.hdrLen:], buf)
		r.hdrLen += k
		buf = buf[k:]
		if r.hdrLen < recordHeaderLen {
			return nil, buf, nil
		}
		r.hdrLen = 0
		if r.err = r.begin(); r.err != nil {
			return nil, nil, r.err
		}
	}
	n := min(r.left, len(buf))
	payload, rest = buf[:n], buf[n:]
	r.left -= n
	if r.ccs && n > 0 {
		if payload[0] != 0x01 {
			r.err = fmt.Errorf("%w: ChangeCipherSpec payload %#02x", ErrBadRecord, payload[0])
			return nil, nil, r.err
		}
		payload = nil
	}
	return payload, rest, nil
}

// begin checks a complete header and starts its record.
func (r *RecordReader) begin() error {
	typ := r.hdr[0]
	size := int(binary.BigEndian.Uint16(r.hdr[3:]))
	ok := r.hdr[1] == 0x03 && r.hdr[2] == 0x03
	switch typ {
	case recordApplicationData: // any 16-bit length: see MaxClientRecord
	case recordChangeCipherSpec:
		ok = ok && size == 1
	default:
		ok = false
	}
	if !ok {
		return fmt.Errorf("%w: header % x", ErrBadRecord, r.hdr)
	}
	r.left = size
	r.ccs = typ == recordChangeCipherSpec
	return nil
}

// Strip removes the record framing from buf in place: on return buf[:n]
// holds the payload bytes found in buf, in order, ready to be decrypted as
// one contiguous piece. It moves each payload down over the headers before
// it (a memmove of the data; use Next to avoid that). On error, buf[:n]
// holds the payload before the bad record.
func (r *RecordReader) Strip(buf []byte) (n int, err error) {
	for rest := buf; len(rest) > 0; {
		var p []byte
		if p, rest, err = r.Next(rest); err != nil {
			return n, err
		}
		// p ends where rest begins; skip the copy when it is in place.
		if at := len(buf) - len(rest) - len(p); at != n {
			copy(buf[n:], p)
		}
		n += len(p)
	}
	return n, nil
}

// HeadersLen returns the bytes of record headers AppendRecords writes for n
// bytes of payload.
func HeadersLen(n int) int {
	return (n + MaxRecordPayload - 1) / MaxRecordPayload * recordHeaderLen
}

// AppendRecords frames payload, data for the client, as application-data
// records of at most MaxRecordPayload bytes without copying it: it appends
// to iov a header, a part of payload, a header, a part, and so on, the
// headers being appended to hdrs. Both extended slices are returned; write
// iov with writev. With HeadersLen(len(payload)) bytes of spare capacity in
// hdrs and two entries per record in iov nothing is allocated; if hdrs has
// to grow, the iov entries already made still point at valid headers. An
// empty payload makes no record.
func AppendRecords(iov [][]byte, hdrs, payload []byte) ([][]byte, []byte) {
	for len(payload) > 0 {
		n := min(len(payload), MaxRecordPayload)
		at := len(hdrs)
		hdrs = append(hdrs, recordApplicationData, 0x03, 0x03, byte(n>>8), byte(n))
		iov = append(iov, hdrs[at:len(hdrs):len(hdrs)], payload[:n:n])
		payload = payload[n:]
	}
	return iov, hdrs
}
