// Package extconn implements one event loop's shard of the middle-proxy
// ext_connection table (protocol.md §6.7–6.10, §10).
//
// In middle-proxy mode many clients are multiplexed over a few connections to
// the middle proxies; each client is known to the MP by a 64-bit out_conn_id
// that RPC_PROXY_ANS, RPC_SIMPLE_ACK and RPC_CLOSE_EXT carry back. Every gnet
// event loop owns one [Table]; nothing is shared and nothing is locked, so a
// Table must only be used from the goroutine of its loop.
//
// # Id layout
//
// An out_conn_id is a uint64 laid out as
//
//	bit  63      : always 0 (the id is also a positive int64 on the wire)
//	bits 62..53  : loop index        (10 bits, MaxLoops = 1024 loops)
//	bits 52..22  : slot generation   (31 bits, never 0)
//	bits 21..0   : slot index        (22 bits, MaxSlots = 2^22 per shard)
//
// Because the generation is never 0, no id is ever 0 (the protocol needs a
// non-zero value). [LoopOf] extracts the owning loop from any id, so an answer
// from a middle proxy read on one loop can be routed to the shard that owns it.
//
// A slot's generation is bumped each time its entry is removed, so an id that
// was removed never matches the slot's next occupant (the fd-reuse problem).
// Generations wrap after 2^31-1 reuses of the same slot; freed slots are
// reused in FIFO order, which spreads reuse over all free slots and makes an
// alias after a wrap practically impossible.
//
// # Idle entries
//
// The table keeps no clock: a client's entry lives exactly as long as its
// session, which the loop closes after its idle timeout (the loop's active
// list is the LRU) and which removes the entry when it closes.
package extconn

import "errors"

// Bit layout constants; see the package documentation.
const (
	SlotBits = 22
	GenBits  = 31
	LoopBits = 10

	// MaxSlots is the largest capacity of one shard (the official proxy's
	// 2^22-entry table).
	MaxSlots = 1 << SlotBits
	// MaxLoops is the number of distinct loop indexes an id can carry.
	MaxLoops = 1 << LoopBits

	slotMask  = MaxSlots - 1
	genShift  = SlotBits
	genMask   = 1<<GenBits - 1
	loopShift = SlotBits + GenBits
	loopMask  = MaxLoops - 1
)

// ErrFull is returned by Add when the shard already holds capacity entries.
var ErrFull = errors.New("extconn: ext_connection shard is full (capacity reached)")

const nilIdx = -1

type slot[T any] struct {
	val  T
	gen  uint32
	next int32 // free list when free
	live bool
}

// Table is one loop's shard of the ext_connection table. The zero value is
// not usable; create it with [New]. Not safe for concurrent use.
type Table[T any] struct {
	slots    []slot[T]
	loop     uint64
	capacity int
	n        int

	// FIFO list of free slots threaded through slot.next.
	freeHead, freeTail int32
}

// New returns an empty shard for event loop loopIndex that holds at most
// capacity live entries. It panics if loopIndex is outside [0, MaxLoops) or
// capacity outside [1, MaxSlots]. Slot storage grows on demand up to
// capacity and is then reused, so steady-state operations do not allocate.
func New[T any](loopIndex, capacity int) *Table[T] {
	if loopIndex < 0 || loopIndex >= MaxLoops {
		panic("extconn: loop index out of range")
	}
	if capacity < 1 || capacity > MaxSlots {
		panic("extconn: capacity out of range")
	}
	return &Table[T]{
		loop:     uint64(loopIndex),
		capacity: capacity,
		freeHead: nilIdx, freeTail: nilIdx,
	}
}

// LoopOf returns the index of the event loop whose shard issued id.
func LoopOf(id uint64) int { return int(id >> loopShift & loopMask) }

func makeID(loop uint64, gen uint32, idx int32) uint64 {
	return loop<<loopShift | uint64(gen)<<genShift | uint64(idx)
}

// Loop returns the loop index of this shard.
func (t *Table[T]) Loop() int { return int(t.loop) }

// Len returns the number of live entries.
func (t *Table[T]) Len() int { return t.n }

// Cap returns the capacity bound given to New.
func (t *Table[T]) Cap() int { return t.capacity }

// Add stores v and returns its new out_conn_id. It returns ErrFull when
// the shard holds Cap() entries.
func (t *Table[T]) Add(v T) (uint64, error) {
	if t.n >= t.capacity {
		return 0, ErrFull
	}
	var idx int32
	if t.freeHead != nilIdx {
		idx = t.freeHead
		t.freeHead = t.slots[idx].next
		if t.freeHead == nilIdx {
			t.freeTail = nilIdx
		}
	} else {
		idx = int32(len(t.slots))
		t.slots = append(t.slots, slot[T]{gen: 1})
	}
	s := &t.slots[idx]
	s.val = v
	s.live = true
	t.n++
	return makeID(t.loop, s.gen, idx), nil
}

// lookup returns the slot index of a live id of this shard, or nilIdx.
func (t *Table[T]) lookup(id uint64) int32 {
	if id>>loopShift != t.loop { // also rejects ids with bit 63 set
		return nilIdx
	}
	idx := id & slotMask
	if idx >= uint64(len(t.slots)) {
		return nilIdx
	}
	s := &t.slots[idx]
	if !s.live || uint64(s.gen) != id>>genShift&genMask {
		return nilIdx
	}
	return int32(idx)
}

// Get returns the value stored under id. It reports false for ids issued by
// another loop, removed ids (stale generation) and never-issued ids.
func (t *Table[T]) Get(id uint64) (T, bool) {
	idx := t.lookup(id)
	if idx == nilIdx {
		var zero T
		return zero, false
	}
	return t.slots[idx].val, true
}

// Remove deletes id and reports whether it was live. The slot's generation
// is bumped so id never matches again.
func (t *Table[T]) Remove(id uint64) bool {
	idx := t.lookup(id)
	if idx == nilIdx {
		return false
	}
	t.free(idx)
	return true
}

func (t *Table[T]) free(idx int32) {
	s := &t.slots[idx]
	var zero T
	s.val = zero // drop the reference for the GC
	s.live = false
	s.gen = (s.gen + 1) & genMask
	if s.gen == 0 {
		s.gen = 1
	}
	s.next = nilIdx
	if t.freeTail == nilIdx {
		t.freeHead = idx
	} else {
		t.slots[t.freeTail].next = idx
	}
	t.freeTail = idx
	t.n--
}
