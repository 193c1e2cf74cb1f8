// Package stats holds the proxy's counters. Each reactor owns one Counters
// value and bumps its fields without atomics or locks; a reader asks every
// reactor for a copy (on the reactor itself) and sums them, so the hot path
// pays nothing for being observed.
package stats

// Counters are one reactor's running totals.
type Counters struct {
	Accepted          uint64 // client connections accepted
	OverLimit         uint64 // client connections closed at once over the connection cap
	HandshakesOK      uint64 // client headers that matched a secret
	HandshakesBad     uint64 // client headers that matched none (swallowed)
	HandshakeTimeouts uint64 // clients closed for sending no valid header in time
	IdleTimeouts      uint64 // pairs closed for carrying nothing in time
	UnknownDC         uint64 // headers naming a DC not in the table (sent to the default)
	DCConnected       uint64 // DC connections established
	DCFailed          uint64 // DC connections that could not be made
	ClientBytes       uint64 // bytes read from clients after their header
	DCBytes           uint64 // bytes read from DCs
	Pauses            uint64 // times a source stopped being read because its peer lagged
}

// Add adds o's totals to c.
func (c *Counters) Add(o *Counters) {
	c.Accepted += o.Accepted
	c.OverLimit += o.OverLimit
	c.HandshakesOK += o.HandshakesOK
	c.HandshakesBad += o.HandshakesBad
	c.HandshakeTimeouts += o.HandshakeTimeouts
	c.IdleTimeouts += o.IdleTimeouts
	c.UnknownDC += o.UnknownDC
	c.DCConnected += o.DCConnected
	c.DCFailed += o.DCFailed
	c.ClientBytes += o.ClientBytes
	c.DCBytes += o.DCBytes
	c.Pauses += o.Pauses
}
