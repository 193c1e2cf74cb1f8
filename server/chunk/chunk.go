// Package chunk keeps bytes that must outlive a read callback in fixed-size
// pooled chunks, in the spirit of MTProxy's msg_buffers: no per-message
// allocation, no growing slices, and memory that goes back to a pool as soon
// as the bytes are written.
package chunk

import "sync"

// Size is the capacity of one chunk. 16 KiB is the largest TLS record
// payload, so a later fake-TLS layer can map one record onto one chunk.
const Size = 16 << 10

var pool = sync.Pool{New: func() any { return new([Size]byte) }}

// Queue is a FIFO of bytes stored in chunks. The zero value is empty and
// ready to use. A Queue is owned by one event loop and is not safe for
// concurrent use.
type Queue struct {
	chunks []*[Size]byte
	// fill is how much of the last chunk holds data.
	fill int
	n    int
}

// Len returns the number of bytes queued.
func (q *Queue) Len() int { return q.n }

// Append copies p to the end of the queue.
func (q *Queue) Append(p []byte) {
	for len(p) > 0 {
		if len(q.chunks) == 0 || q.fill == Size {
			q.chunks = append(q.chunks, pool.Get().(*[Size]byte))
			q.fill = 0
		}
		n := copy(q.chunks[len(q.chunks)-1][q.fill:], p)
		q.fill += n
		q.n += n
		p = p[n:]
	}
}

// AppendBuffers appends views of the queued bytes to iov, in order, for a
// single writev. The views stay valid until Reset.
func (q *Queue) AppendBuffers(iov [][]byte) [][]byte {
	for i, c := range q.chunks {
		if i == len(q.chunks)-1 {
			iov = append(iov, c[:q.fill])
		} else {
			iov = append(iov, c[:])
		}
	}
	return iov
}

// Reset empties the queue and returns its chunks to the pool.
func (q *Queue) Reset() {
	for i, c := range q.chunks {
		pool.Put(c)
		q.chunks[i] = nil
	}
	q.chunks = q.chunks[:0]
	q.fill = 0
	q.n = 0
}
