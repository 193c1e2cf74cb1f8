package extconn

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func TestIDRoundTrip(t *testing.T) {
	for _, loop := range []int{0, 1, 7, 255, MaxLoops - 1} {
		tb := New[int](loop, 100)
		ids := make([]uint64, 0, 100)
		for i := range 100 {
			id, err := tb.AddAt(i, t0)
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
		id, err := tb.AddAt(i, t0)
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
			if tb.Remove(prev) || tb.Touch(prev, t0) {
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
	tb.slots = append(tb.slots, slot[int]{gen: genMask, prev: nilIdx, next: nilIdx})
	tb.freeHead, tb.freeTail = 0, 0
	id, _ := tb.AddAt(1, t0)
	tb.Remove(id)
	id2, _ := tb.AddAt(2, t0)
	if id2 == 0 || id2 == id || id2>>genShift&genMask != 1 {
		t.Fatalf("wrap: id %#x -> %#x", id, id2)
	}
	if _, ok := tb.Get(id); ok {
		t.Fatal("pre-wrap id resolves")
	}
}

func TestOtherLoopRejected(t *testing.T) {
	a, b := New[int](1, 10), New[int](2, 10)
	ida, _ := a.AddAt(10, t0)
	idb, _ := b.AddAt(20, t0)
	// Same slot index and generation, different loop.
	if ida&^(loopMask<<loopShift) != idb&^(loopMask<<loopShift) {
		t.Fatal("expected identical slot/generation bits")
	}
	if _, ok := a.Get(idb); ok {
		t.Fatal("loop 1 accepted an id of loop 2")
	}
	if a.Remove(idb) || a.Touch(idb, t0) {
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
		id, err := tb.AddAt(i, t0)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := tb.AddAt(5, t0); !errors.Is(err, ErrFull) {
		t.Fatalf("err = %v, want ErrFull", err)
	}
	if tb.Len() != 5 || len(tb.slots) != 5 {
		t.Fatalf("Len %d slots %d", tb.Len(), len(tb.slots))
	}
	tb.Remove(ids[2])
	if _, err := tb.AddAt(6, t0); err != nil {
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

func TestEvictOrderAndCost(t *testing.T) {
	tb := New[int](4, 2000)
	ids := make([]uint64, 1000)
	for i := range ids {
		ids[i], _ = tb.AddAt(i, at(i)) // entry i last active at second i
	}
	// Touch the first 10 at t=2000: they become the most recent.
	for i := range 10 {
		tb.Touch(ids[i], at(2000))
	}
	var got []int
	n := tb.Evict(at(2000), 1500*time.Second, func(id uint64, v int) {
		if id != ids[v] {
			t.Errorf("callback id %#x for value %d, want %#x", id, v, ids[v])
		}
		if _, ok := tb.Get(id); ok {
			t.Error("entry still present in callback")
		}
		got = append(got, v)
	})
	// Idle > 1500s: stamps < 500, excluding the touched 0..9.
	want := make([]int, 0)
	for i := 10; i < 500; i++ {
		want = append(want, i)
	}
	if n != len(want) || !slices.Equal(got, want) {
		t.Fatalf("evicted %d %v..., want %d", n, got[:min(5, len(got))], len(want))
	}
	if tb.scanned != n+1 {
		t.Fatalf("scanned %d nodes to evict %d", tb.scanned, n)
	}
	// Exactly idle == limit is not evicted.
	if n := tb.Evict(at(2000), 1500*time.Second, nil); n != 0 || tb.scanned != 1 {
		t.Fatalf("second evict removed %d, scanned %d", n, tb.scanned)
	}
	id, v, ok := tb.Oldest()
	if !ok || v != 500 || id != ids[500] {
		t.Fatalf("Oldest = %#x %d %v", id, v, ok)
	}
	// Touched entries are the newest.
	if tb.Evict(at(2001), 0, nil) != 1000-len(want) || tb.Len() != 0 {
		t.Fatal("full evict")
	}
	if _, _, ok := tb.Oldest(); ok {
		t.Fatal("Oldest on empty table")
	}
}

func TestEvictCallbackMayMutate(t *testing.T) {
	tb := New[int](0, 10)
	a, _ := tb.AddAt(1, at(0))
	b, _ := tb.AddAt(2, at(1))
	c, _ := tb.AddAt(3, at(2))
	n := tb.Evict(at(100), 10*time.Second, func(id uint64, v int) {
		if id == a {
			tb.Remove(b)
			if _, err := tb.AddAt(9, at(100)); err != nil {
				t.Error(err)
			}
		}
	})
	if n != 2 || tb.Len() != 1 {
		t.Fatalf("n=%d len=%d", n, tb.Len())
	}
	if _, ok := tb.Get(c); ok {
		t.Fatal("c not evicted")
	}
}

func TestNonMonotonicTimeKeepsOrder(t *testing.T) {
	tb := New[int](0, 10)
	a, _ := tb.AddAt(1, at(100))
	b, _ := tb.AddAt(2, at(50)) // clock went backwards: clamped to 100
	_ = b
	if n := tb.Evict(at(160), time.Minute, nil); n != 0 {
		t.Fatalf("evicted %d", n)
	}
	tb.Touch(a, at(200))
	var got []int
	tb.Evict(at(200), 0, func(_ uint64, v int) { got = append(got, v) })
	if !slices.Equal(got, []int{2}) {
		t.Fatalf("got %v", got)
	}
}

func TestZeroAllocs(t *testing.T) {
	type sess struct{ x int }
	tb := New[*sess](0, 1024)
	s := &sess{}
	var keep []uint64
	for range 512 {
		id, _ := tb.AddAt(s, t0)
		keep = append(keep, id)
	}
	for _, id := range keep[:256] { // warm up: populate the free list
		tb.Remove(id)
	}
	now := t0
	allocs := testing.AllocsPerRun(10_000, func() {
		now = now.Add(time.Millisecond)
		id, err := tb.Add(s)
		if err != nil {
			panic(err)
		}
		if _, ok := tb.Get(id); !ok {
			panic("get")
		}
		tb.Touch(id, now)
		tb.Touch(keep[300], now)
		if !tb.Remove(id) {
			panic("remove")
		}
		tb.Evict(now, time.Hour, nil)
	})
	if allocs != 0 {
		t.Fatalf("allocs per op = %v", allocs)
	}
}

// model is the reference implementation: a map plus a recency list.
type model struct {
	vals  map[uint64]int
	order []uint64 // least recently active first
	stamp map[uint64]int64
	clock int64
	cap   int
}

func newModel(capacity int) *model {
	// The clock starts below any time, as the table's does below t0: the
	// harness's time can go below zero.
	return &model{vals: map[uint64]int{}, stamp: map[uint64]int64{}, cap: capacity, clock: math.MinInt64}
}

func (m *model) tick(ns int64) int64 {
	m.clock = max(m.clock, ns)
	return m.clock
}

func (m *model) moveBack(id uint64) {
	m.order = slices.DeleteFunc(m.order, func(x uint64) bool { return x == id })
	m.order = append(m.order, id)
}

func (m *model) remove(id uint64) {
	delete(m.vals, id)
	delete(m.stamp, id)
	m.order = slices.DeleteFunc(m.order, func(x uint64) bool { return x == id })
}

type harness struct {
	t       testing.TB
	tb      *Table[int]
	m       *model
	loop    int
	issued  []uint64 // every id ever returned (live or stale)
	nextVal int
	now     int64 // seconds since t0
}

func newHarness(t testing.TB, loop, capacity int) *harness {
	return &harness{t: t, tb: New[int](loop, capacity), m: newModel(capacity), loop: loop}
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
	switch op % 6 {
	case 0, 1: // add
		v := h.nextVal
		h.nextVal++
		nowT := t0.Add(time.Duration(h.now) * time.Second)
		id, err := h.tb.AddAt(v, nowT)
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
		h.m.stamp[id] = h.m.tick(h.now * int64(time.Second))
		h.m.order = append(h.m.order, id)
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
		h.m.remove(id)
	case 4: // touch, advancing (or occasionally rewinding) time
		h.now += int64(r % 16)
		if r%97 == 0 {
			h.now -= 20
		}
		id := h.pick(r >> 4)
		_, mok := h.m.vals[id]
		if ok := h.tb.Touch(id, t0.Add(time.Duration(h.now)*time.Second)); ok != mok {
			t.Fatalf("Touch(%#x) = %v; model %v", id, ok, mok)
		}
		if mok {
			h.m.stamp[id] = h.m.tick(h.now * int64(time.Second))
			h.m.moveBack(id)
		}
	case 5: // evict
		idle := time.Duration(r%64) * time.Second
		h.now += int64(r>>6) % 8
		nowNs := h.m.tick(h.now * int64(time.Second))
		var want []uint64
		for _, id := range h.m.order {
			if nowNs-h.m.stamp[id] > int64(idle) {
				want = append(want, id)
			} else {
				break
			}
		}
		var got []uint64
		n := h.tb.Evict(t0.Add(time.Duration(h.now)*time.Second), idle, func(id uint64, v int) {
			if v != h.m.vals[id] {
				t.Fatalf("evict callback value %d, model %d", v, h.m.vals[id])
			}
			got = append(got, id)
		})
		if n != len(got) || !slices.Equal(got, want) {
			t.Fatalf("Evict got %v want %v", got, want)
		}
		for _, id := range want {
			h.m.remove(id)
		}
	}
	if h.tb.Len() != len(h.m.vals) {
		t.Fatalf("Len %d model %d", h.tb.Len(), len(h.m.vals))
	}
}

// check verifies the LRU list and free list against the model.
func (h *harness) check() {
	var order []uint64
	for i := h.tb.head; i != nilIdx; i = h.tb.slots[i].next {
		s := &h.tb.slots[i]
		if !s.live {
			h.t.Fatal("free slot on LRU list")
		}
		order = append(order, makeID(h.tb.loop, s.gen, i))
	}
	if !slices.Equal(order, h.m.order) {
		h.t.Fatalf("LRU order %v, model %v", order, h.m.order)
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
		h.step(byte(rng.UintN(6)), rng.Uint32())
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

func BenchmarkAddAtRemove(b *testing.B) {
	tb := New[*int](0, 1<<16)
	v := new(int)
	for range 1 << 15 {
		tb.AddAt(v, t0)
	}
	b.ReportAllocs()
	for b.Loop() {
		id, _ := tb.AddAt(v, t0)
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
