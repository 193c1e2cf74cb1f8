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
	DCConnected       uint64 // backend connections established (DCs, or the fronted site)
	DCFailed          uint64 // backend connections that could not be made
	ClientBytes       uint64 // bytes read from clients after their header
	DCBytes           uint64 // bytes read from DCs
	Pauses            uint64 // times a source stopped being read because its peer lagged

	// Fake TLS outcomes. Every failure before the ServerHello is also
	// counted in Fronted.
	TLSValid       uint64 // ClientHellos accepted
	TLSBadHello    uint64 // first bytes not a (well-formed) ClientHello, or no TLS 1.3 suite
	TLSUnknownSNI  uint64 // a server name that is not one of the domains
	TLSBadDigest   uint64 // HMAC matching no secret
	TLSClockSkew   uint64 // timestamp outside the accepted window
	TLSReplay      uint64 // a client random seen before
	TLSBadHeader   uint64 // bad records or obfuscated2 header after a valid hello (closed)
	Fronted        uint64 // connections relayed to the real site
	FrontedTimeout uint64 // of which for not finishing the handshake in time
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
	c.TLSValid += o.TLSValid
	c.TLSBadHello += o.TLSBadHello
	c.TLSUnknownSNI += o.TLSUnknownSNI
	c.TLSBadDigest += o.TLSBadDigest
	c.TLSClockSkew += o.TLSClockSkew
	c.TLSReplay += o.TLSReplay
	c.TLSBadHeader += o.TLSBadHeader
	c.Fronted += o.Fronted
	c.FrontedTimeout += o.FrontedTimeout
}
