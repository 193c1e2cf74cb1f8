//go:build race

package chunk

// sync.Pool drops items at random under the race detector.
const raceEnabled = true
