package faketls

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Unix(1700000000, 0)

func random(i int) (r [32]byte) {
	r[0], r[1], r[2] = byte(i), byte(i>>8), byte(i>>16)
	r[31] = 0xff // beyond the key
	return r
}

func TestReplayCacheReplay(t *testing.T) {
	c := NewReplayCache(ReplayConfig{}, t0)
	r := random(1)
	if err := c.Add(r, t0); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(r, t0.Add(time.Hour)); err != ErrReplay {
		t.Fatalf("second Add = %v, want ErrReplay", err)
	}
	// Only the first 16 bytes count.
	r2 := r
	r2[20] ^= 1
	if err := c.Add(r2, t0); err != ErrReplay {
		t.Fatalf("Add of a random differing after byte 16 = %v, want ErrReplay", err)
	}
	r2[15] ^= 1
	if err := c.Add(r2, t0); err != nil {
		t.Fatal(err)
	}
}

func TestReplayCacheEviction(t *testing.T) {
	c := NewReplayCache(ReplayConfig{Size: 3, Window: time.Minute}, t0)
	for i := range 4 {
		if err := c.Add(random(i), t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() != 3 {
		t.Fatalf("Len = %d, want 3", c.Len())
	}
	// The oldest went for room, the others are still there.
	now := t0.Add(4 * time.Second)
	if err := c.Add(random(1), now); err != ErrReplay {
		t.Fatalf("entry 1: %v, want ErrReplay", err)
	}
	if err := c.Add(random(0), now); err != nil {
		t.Fatalf("entry 0 not evicted: %v", err)
	}
	// Entries 1..3 and 0 again were added at 1..4 s; a minute after the
	// first of them it has aged out, the others not yet.
	now = t0.Add(61 * time.Second)
	if err := c.Add(random(2), now); err != ErrReplay {
		t.Fatalf("entry 2 aged out early: %v", err)
	}
	if err := c.Add(random(1), now); err != nil {
		t.Fatalf("entry 1 did not age out: %v", err)
	}
	now = t0.Add(time.Hour)
	if err := c.Add(random(9), now); err != nil || c.Len() != 1 {
		t.Fatalf("after an hour: %v, %d entries", err, c.Len())
	}
}

func TestCheckTime(t *testing.T) {
	cfg := ReplayConfig{Size: 2, Window: time.Hour, MaxFuture: 10 * time.Second, StartupGrace: time.Minute}
	c := NewReplayCache(cfg, t0)
	ts := func(d time.Duration) uint32 { return uint32(t0.Add(d).Unix()) }
	check := func(now time.Time, d time.Duration, want error) {
		t.Helper()
		if err := c.CheckTime(ts(d), now); err != want {
			t.Errorf("now %v, ts %v: %v, want %v", now.Sub(t0), d, err, want)
		}
	}
	// At start-up: the grace before creation (plus the allowed lead,
	// since such a hello may have arrived that much earlier) and the
	// allowed lead ahead.
	check(t0, 10*time.Second, nil)
	check(t0, 11*time.Second, ErrClockSkew)
	check(t0, -50*time.Second+time.Second, nil)
	check(t0, -50*time.Second, ErrClockSkew)
	check(t0, -24*time.Hour, ErrClockSkew)
	check(t0, 0, nil)

	// Later, the window bounds the past.
	later := t0.Add(3 * time.Hour)
	check(later, 2*time.Hour+10*time.Second+time.Second, nil)
	check(later, 2*time.Hour+10*time.Second, ErrClockSkew)

	// Once an entry is evicted for room, hellos from before it are
	// refused: a replay of one would no longer be found.
	for i, d := range []time.Duration{2*time.Hour + 10*time.Minute, 2*time.Hour + 30*time.Minute, 2*time.Hour + 40*time.Minute} {
		if err := c.Add(random(i), t0.Add(d)); err != nil {
			t.Fatal(err)
		}
	}
	check(later, 2*time.Hour+10*time.Minute+10*time.Second, ErrClockSkew)
	check(later, 2*time.Hour+10*time.Minute+11*time.Second, nil)
}

// TestCheckTimeProtects replays accepted hellos under every ordering of
// time and load and checks that CheckTime or Add refuses each replay.
func TestCheckTimeProtects(t *testing.T) {
	cfg := ReplayConfig{Size: 50, Window: time.Hour, MaxFuture: 30 * time.Second, StartupGrace: time.Minute}
	c := NewReplayCache(cfg, t0)
	type hello struct {
		r  [32]byte
		ts uint32
	}
	var accepted []hello
	rnd := detRand(9)
	now := t0.Add(2 * time.Minute) // past the start-up grace
	for i := range 5000 {
		now = now.Add(time.Duration(rnd.Uint64()%20) * time.Second)
		skew := int64(rnd.Uint64()%7200) - 7170 // −2 h .. +30 s
		h := hello{random(i), uint32(now.Unix() + skew)}
		if c.CheckTime(h.ts, now) == nil && c.Add(h.r, now) == nil {
			accepted = append(accepted, h)
		}
		if len(accepted) > 0 && rnd.Uint64()%3 == 0 {
			old := accepted[rnd.Uint64()%uint64(len(accepted))]
			if c.CheckTime(old.ts, now) == nil && c.Add(old.r, now) == nil {
				t.Fatalf("replay of hello %x accepted", old.r[:3])
			}
		}
	}
	if len(accepted) < 1000 {
		t.Fatalf("only %d hellos accepted", len(accepted))
	}
}

func TestReplayCacheConcurrent(t *testing.T) {
	c := NewReplayCache(ReplayConfig{Size: 1 << 12}, t0)
	var wins [1000]atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range wins {
				err := c.Add(random(i), t0)
				switch {
				case err == nil:
					wins[i].Add(1)
				case !errors.Is(err, ErrReplay):
					t.Error(err)
				}
				c.CheckTime(uint32(t0.Unix()), t0)
			}
		})
	}
	wg.Wait()
	for i := range wins {
		if n := wins[i].Load(); n != 1 {
			t.Fatalf("random %d accepted %d times", i, n)
		}
	}
}

// TestReplayCacheMemory fills a default-sized cache and checks the figure
// in DefaultReplaySize's comment.
func TestReplayCacheMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a million entries")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := NewReplayCache(ReplayConfig{}, t0)
	for i := range DefaultReplaySize {
		var r [32]byte
		r[0], r[1], r[2], r[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		if err := c.Add(r, t0); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	mb := float64(after.HeapAlloc-before.HeapAlloc) / 1e6
	t.Logf("%d entries: %.1f MB", c.Len(), mb)
	if mb > 60 {
		t.Fatalf("%.1f MB, more than documented", mb)
	}
	runtime.KeepAlive(c)
}

// TestReplayCacheGrowsAcrossWrap: the ring grows while its oldest entry
// sits in the middle (after evictions by age), and keeps every entry and
// the eviction order.
func TestReplayCacheGrowsAcrossWrap(t *testing.T) {
	c := NewReplayCache(ReplayConfig{Size: 5000, Window: time.Hour}, t0)
	for i := range 100 {
		if err := c.Add(random(i), t0); err != nil {
			t.Fatal(err)
		}
	}
	// These age the first 100 out, then fill the 1024-entry ring so that
	// it wraps past its end, then make it grow.
	t1 := t0.Add(time.Hour)
	for i := 100; i < 1200; i++ {
		at := t1
		if i >= 1124 {
			at = t1.Add(30 * time.Minute)
		}
		if err := c.Add(random(i), at); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() != 1100 {
		t.Fatalf("Len %d, want 1100", c.Len())
	}
	for _, i := range []int{100, 1123, 1124, 1199} {
		if err := c.Add(random(i), t1.Add(30*time.Minute)); err != ErrReplay {
			t.Fatalf("entry %d: Add = %v, want ErrReplay", i, err)
		}
	}
	// An hour after t1 the 1024 added then age out, oldest first; the 76
	// added later stay.
	if err := c.Add(random(9999), t1.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 77 {
		t.Fatalf("Len %d after aging out, want 77", c.Len())
	}
	if err := c.Add(random(1150), t1.Add(time.Hour)); err != ErrReplay {
		t.Fatalf("a later entry was lost: %v", err)
	}
	// Entries from both sides of the wrap have really gone.
	for _, i := range []int{100, 1100} {
		if err := c.Add(random(i), t1.Add(time.Hour)); err != nil {
			t.Fatalf("aged-out entry %d still counts as seen: %v", i, err)
		}
	}
}
