package faketls

import (
	"sync"
	"time"
)

// Defaults for ReplayConfig.
const (
	// DefaultReplaySize bounds the cache to 1<<20 entries, about 60 MB
	// when full: 20 bytes each in the FIFO, the rest in the map (measured
	// by TestReplayCacheMemory). Memory is taken as entries come, and only
	// verified hellos are inserted, so it fills only on a proxy doing a
	// million handshakes within the window (6 per second for two days);
	// beyond that the accepted past shrinks to what the cache covers.
	DefaultReplaySize = 1 << 20

	// DefaultReplayWindow is how long an entry is kept: two days, like
	// the official proxy.
	DefaultReplayWindow = 48 * time.Hour

	// DefaultMaxFuture is how far ahead of the server's clock a client's
	// timestamp may be. The official allows 3 s, which fails clients
	// whose clock runs a little fast; tdlib corrects its clock with the
	// time Telegram's servers report, so two minutes covers the rest
	// without weakening the replay check (see CheckTime).
	DefaultMaxFuture = 2 * time.Minute

	// DefaultStartupGrace is how far back before the cache was created
	// timestamps are accepted: ten minutes, like the official. Hellos
	// replayed from before a restart are only caught within it by the
	// timestamp, so keep it short.
	DefaultStartupGrace = 10 * time.Minute
)

// ReplayConfig sizes a ReplayCache. Zero fields take the defaults;
// durations are used with one-second resolution.
type ReplayConfig struct {
	Size         int           // maximum number of entries
	Window       time.Duration // maximum age of an entry
	MaxFuture    time.Duration // allowed clock lead of clients
	StartupGrace time.Duration // accepted age of timestamps at start-up
}

// ReplayCache remembers the client randoms of accepted hellos, keyed by
// their first 16 bytes as the official proxy does, and judges timestamps
// against what it still remembers. Memory is bounded by both a count and
// an age; the oldest entry goes first. Insert and lookup are O(1). It is
// safe for concurrent use by several event loops (one mutex, held for a
// map operation per handshake).
type ReplayCache struct {
	mu   sync.Mutex
	seen map[[16]byte]struct{}
	fifo []replayEntry // ring of the cached keys in insertion order
	size int           // the most entries fifo grows to
	head int           // index of the oldest entry in fifo
	n    int           // number of entries

	// floor is the Unix second after which every inserted key is still
	// cached, as far as eviction for room goes: it starts at creation
	// minus the start-up grace and moves up to the insertion time of each
	// key evicted before its window ran out.
	floor  int64
	window int64
	future int64
}

type replayEntry struct {
	key [16]byte
	at  uint32 // insertion time, Unix seconds
}

// NewReplayCache returns an empty cache; now is taken as the start-up time.
func NewReplayCache(cfg ReplayConfig, now time.Time) *ReplayCache {
	cfg.Size = orDefault(cfg.Size, DefaultReplaySize)
	cfg.Window = orDefault(cfg.Window, DefaultReplayWindow)
	cfg.MaxFuture = orDefault(cfg.MaxFuture, DefaultMaxFuture)
	cfg.StartupGrace = orDefault(cfg.StartupGrace, DefaultStartupGrace)
	return &ReplayCache{
		seen:   make(map[[16]byte]struct{}),
		size:   cfg.Size,
		floor:  now.Unix() - int64(cfg.StartupGrace/time.Second),
		window: int64(cfg.Window / time.Second),
		future: int64(cfg.MaxFuture / time.Second),
	}
}

// orDefault returns v, or def when v is not positive.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// CheckTime judges the timestamp ts of a verified hello at time now. It
// accepts ts up to MaxFuture ahead of now and as far back as the cache
// still proves freshness: a hello carrying ts was first received no
// earlier than ts − MaxFuture (any earlier arrival would have been too far
// ahead), so if that is after the oldest moment from which every accepted
// random is still cached, a replay of it would be found by Add. The bound
// is therefore the latest of: creation − StartupGrace, now − Window, and
// the insertion time of the last entry evicted for room. This is the
// official rule, made safe for a cache bounded by count. Otherwise it
// returns ErrClockSkew.
//
// Check time before calling Add, so that stale hellos do not take room.
func (c *ReplayCache) CheckTime(ts uint32, now time.Time) error {
	t := int64(ts)
	sec := now.Unix()
	if t > sec+c.future {
		return ErrClockSkew
	}
	c.mu.Lock()
	floor := max(c.floor, sec-c.window)
	c.mu.Unlock()
	if t <= floor+c.future {
		return ErrClockSkew
	}
	return nil
}

// Add records the random of a hello at time now, or returns ErrReplay if
// it is already cached. Insert only hellos whose digest verified (as §12
// recommends, unlike the official, which inserts first): garbage then
// cannot fill the cache and push genuine entries out.
func (c *ReplayCache) Add(random [32]byte, now time.Time) error {
	key := [16]byte(random[:16])
	sec := now.Unix()
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.n > 0 && int64(c.fifo[c.head].at)+c.window <= sec {
		c.evict()
	}
	if _, ok := c.seen[key]; ok {
		return ErrReplay
	}
	if c.n == len(c.fifo) {
		if len(c.fifo) < c.size {
			c.grow()
		} else {
			c.floor = max(c.floor, int64(c.fifo[c.head].at))
			c.evict()
		}
	}
	c.fifo[(c.head+c.n)%len(c.fifo)] = replayEntry{key: key, at: uint32(sec)}
	c.n++
	c.seen[key] = struct{}{}
	return nil
}

// grow doubles the ring, up to size. Memory then follows use: a ring
// allocated whole at start would count as live heap and raise the goal of
// every garbage collection in the process, even if its pages stay untouched.
func (c *ReplayCache) grow() {
	fifo := make([]replayEntry, min(c.size, max(2*len(c.fifo), 1024)))
	k := copy(fifo, c.fifo[c.head:])
	copy(fifo[k:], c.fifo[:c.head])
	c.fifo, c.head = fifo, 0
}

// evict drops the oldest entry.
func (c *ReplayCache) evict() {
	delete(c.seen, c.fifo[c.head].key)
	c.head = (c.head + 1) % len(c.fifo)
	c.n--
}

// Len returns the number of cached randoms.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
