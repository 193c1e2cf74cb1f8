package extconn

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestIDRoundTrip(t *testing.T) {
	for _, loop := range []int{0, 1, 7, 255, MaxLoops - 1} {
		tb := New[int](loop, 100)
		ids := make([]uint64, 0, 100)
		for i := range 100 {
			id, err := tb.Add(i)
			if err != nil {
				t.Fatal(err)
			}
			if id == 0 || int64(id) <= 0 {
				t.Fatalf("id %#x not a positive int64", id)
			}
			if LoopOf(id) != loop {
				t.Fatalf("LoopOf(%#x) = %d, want %d", id, LoopOf(id), loop)
			}
			ids = append(ids, id)
		}
		for i, id := range ids {
			v, ok := tb.Get(id)
			if !ok || v != i {
				t.Fatalf("Get(%#x) = %v,%v want %d", id, v, ok, i)
			}
		}
		if tb.Len() != 100 {
			t.Fatalf("Len = %d", tb.Len())
		}
	}
}

func TestGenerationNoAlias(t *testing.T) {
	tb := New[int](3, 1) // a single slot: every Add reuses it
	seen := make(map[uint64]bool)
	var prev uint64
	for i := range 100_000 {
		id, err := tb.Add(i)
		if err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatalf("cycle %d: id %#x reused", i, id)
		}
		seen[id] = true
		if prev != 0 {
			if _, ok := tb.Get(prev); ok {
				t.Fatalf("cycle %d: stale id %#x still resolves", i, prev)
			}
			if tb.Remove(prev) {
				t.Fatalf("cycle %d: stale id accepted", i)
			}
		}
		if v, ok := tb.Get(id); !ok || v != i {
			t.Fatalf("cycle %d: Get = %v,%v", i, v, ok)
		}
		if !tb.Remove(id) {
			t.Fatal("Remove failed")
		}
		if tb.Remove(id) {
			t.Fatal("double Remove succeeded")
		}
		prev = id
	}
}

func TestGenerationWrap(t *testing.T) {
	tb := New[int](0, 1)
	tb.slots = append(tb.slots, slot[int]{gen: genMask, next: nilIdx})
	tb.freeHead, tb.freeTail = 0, 0
	id, _ := tb.Add(1)
	tb.Remove(id)
	id2, _ := tb.Add(2)
	if id2 == 0 || id2 == id || id2>>genShift&genMask != 1 {
		t.Fatalf("wrap: id %#x -> %#x", id, id2)
	}
	if _, ok := tb.Get(id); ok {
		t.Fatal("pre-wrap id resolves")
	}
}

func TestOtherLoopRejected(t *testing.T) {
	a, b := New[int](1, 10), New[int](2, 10)
	ida, _ := a.Add(10)
	idb, _ := b.Add(20)
	// Same slot index and generation, different loop.
	if ida&^(loopMask<<loopShift) != idb&^(loopMask<<loopShift) {
		t.Fatal("expected identical slot/generation bits")
	}
	if _, ok := a.Get(idb); ok {
		t.Fatal("loop 1 accepted an id of loop 2")
	}
	if a.Remove(idb) {
		t.Fatal("foreign id accepted")
	}
	if _, ok := a.Get(ida | 1<<63); ok {
		t.Fatal("id with bit 63 set accepted")
	}
	if _, ok := a.Get(0); ok {
		t.Fatal("id 0 accepted")
	}
	if _, ok := a.Get(ida + 5); ok { // never-allocated slot
		t.Fatal("unallocated slot accepted")
	}
	if LoopOf(ida) != 1 || LoopOf(idb) != 2 {
		t.Fatal("LoopOf")
	}
}

func TestCapacity(t *testing.T) {
	tb := New[int](0, 5)
	var ids []uint64
	for i := range 5 {
		id, err := tb.Add(i)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := tb.Add(5); !errors.Is(err, ErrFull) {
		t.Fatalf("err = %v, want ErrFull", err)
	}
	if tb.Len() != 5 || len(tb.slots) != 5 {
		t.Fatalf("Len %d slots %d", tb.Len(), len(tb.slots))
	}
	tb.Remove(ids[2])
	if _, err := tb.Add(6); err != nil {
		t.Fatal(err)
	}
	if len(tb.slots) != 5 {
		t.Fatalf("slot storage grew to %d", len(tb.slots))
	}
	for _, bad := range [][2]int{{-1, 1}, {MaxLoops, 1}, {0, 0}, {0, MaxSlots + 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%d,%d) did not panic", bad[0], bad[1])
				}
			}()
			New[int](bad[0], bad[1])
		}()
	}
}

func TestZeroAllocs(t *testing.T) {
	type sess struct{ x int }
	tb := New[*sess](0, 1024)
	s := &sess{}
	var keep []uint64
	for range 512 {
		id, _ := tb.Add(s)
		keep = append(keep, id)
	}
	for _, id := range keep[:256] { // warm up: populate the free list
		tb.Remove(id)
	}
	allocs := testing.AllocsPerRun(10_000, func() {
		id, err := tb.Add(s)
		if err != nil {
			panic(err)
		}
		if _, ok := tb.Get(id); !ok {
			panic("get")
		}
		if !tb.Remove(id) {
			panic("remove")
		}
	})
	if allocs != 0 {
		t.Fatalf("allocs per op = %v", allocs)
	}
}

// model is the reference implementation: a map.
type model struct {
	vals map[uint64]int
	cap  int
}

type harness struct {
	t       testing.TB
	tb      *Table[int]
	m       *model
	loop    int
	issued  []uint64 // every id ever returned (live or stale)
	nextVal int
}

func newHarness(t testing.TB, loop, capacity int) *harness {
	return &harness{t: t, tb: New[int](loop, capacity), m: &model{vals: map[uint64]int{}, cap: capacity}, loop: loop}
}

func (h *harness) pick(r uint32) uint64 {
	if len(h.issued) == 0 {
		return uint64(r)
	}
	switch r % 8 {
	case 0: // a random id of this loop
		return uint64(h.loop)<<loopShift | uint64(r)*2654435761&(1<<loopShift-1)
	case 1: // an issued id from another loop
		return h.issued[int(r>>3)%len(h.issued)] ^ 1<<loopShift
	default:
		return h.issued[int(r>>3)%len(h.issued)]
	}
}

// step applies one operation selected by op with argument r to both.
func (h *harness) step(op byte, r uint32) {
	t := h.t
	switch op % 4 {
	case 0, 1: // add
		v := h.nextVal
		h.nextVal++
		id, err := h.tb.Add(v)
		if len(h.m.vals) >= h.m.cap {
			if !errors.Is(err, ErrFull) {
				t.Fatalf("add on full: err %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("add: %v", err)
		}
		if _, dup := h.m.vals[id]; dup || slices.Contains(h.issued, id) {
			t.Fatalf("add returned previously issued id %#x", id)
		}
		if id == 0 || LoopOf(id) != h.loop {
			t.Fatalf("bad id %#x", id)
		}
		h.issued = append(h.issued, id)
		h.m.vals[id] = v
	case 2: // get
		id := h.pick(r)
		v, ok := h.tb.Get(id)
		mv, mok := h.m.vals[id]
		if ok != mok || v != mv {
			t.Fatalf("Get(%#x) = %d,%v; model %d,%v", id, v, ok, mv, mok)
		}
	case 3: // remove
		id := h.pick(r)
		_, mok := h.m.vals[id]
		if ok := h.tb.Remove(id); ok != mok {
			t.Fatalf("Remove(%#x) = %v; model %v", id, ok, mok)
		}
		delete(h.m.vals, id)
	}
	if h.tb.Len() != len(h.m.vals) {
		t.Fatalf("Len %d model %d", h.tb.Len(), len(h.m.vals))
	}
}

// check verifies every live entry and the free list against the model.
func (h *harness) check() {
	for id, v := range h.m.vals {
		if got, ok := h.tb.Get(id); !ok || got != v {
			h.t.Fatalf("Get(%#x) = %d,%v; model %d", id, got, ok, v)
		}
	}
	free := 0
	for i := h.tb.freeHead; i != nilIdx; i = h.tb.slots[i].next {
		if h.tb.slots[i].live {
			h.t.Fatal("live slot on free list")
		}
		free++
	}
	if free+h.tb.Len() != len(h.tb.slots) {
		h.t.Fatalf("free %d + live %d != slots %d", free, h.tb.Len(), len(h.tb.slots))
	}
}

func TestModelRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	h := newHarness(t, 42, 64)
	for i := range 100_000 {
		h.step(byte(rng.UintN(4)), rng.Uint32())
		if i%1000 == 0 {
			h.check()
		}
	}
	h.check()
}

func FuzzTable(f *testing.F) {
	f.Add(uint8(0), uint8(4), []byte{0, 0, 0, 0, 0, 2, 3, 4, 5, 3, 0, 1})
	f.Add(uint8(255), uint8(1), []byte{0, 3, 0, 3, 0, 2, 0, 5})
	f.Add(uint8(7), uint8(16), []byte("\x00\x01\x00\x04\x05\x02\x03\x00\x00\x05\xff\x04\x11"))
	f.Fuzz(func(t *testing.T, loop, capacity uint8, ops []byte) {
		h := newHarness(t, int(loop), int(capacity%32)+1)
		for len(ops) >= 3 {
			h.step(ops[0], uint32(ops[1])|uint32(ops[2])<<8|uint32(ops[0])<<16)
			ops = ops[3:]
		}
		h.check()
	})
}

func BenchmarkAddRemove(b *testing.B) {
	tb := New[*int](0, 1<<16)
	v := new(int)
	for range 1 << 15 {
		tb.Add(v)
	}
	b.ReportAllocs()
	for b.Loop() {
		id, _ := tb.Add(v)
		tb.Remove(id)
	}
}

func BenchmarkGet(b *testing.B) {
	tb := New[*int](0, 1<<16)
	v := new(int)
	ids := make([]uint64, 1<<16)
	for i := range ids {
		ids[i], _ = tb.Add(v)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := tb.Get(ids[i&(1<<16-1)]); !ok {
			b.Fatal("miss")
		}
		i += 7919
	}
}
