// Package stats holds the proxy's counters. Each reactor owns one Counters
// value and bumps its fields without atomics or locks; a reader asks every
// reactor for a copy (on the reactor itself) and sums them, so the hot path
// pays nothing for being observed.
package stats

// Counters are one reactor's running totals.
type Counters struct {
	Accepted          uint64 // client connections accepted
	OverLimit         uint64 // client connections closed at once over the connection cap
	Refused           uint64 // client connections closed at once while draining to stop
	OverIPLimit       uint64 // client connections closed at once over the per-IP cap
	BudgetClosed      uint64 // clients closed because all buffers together passed the budget
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

	// Middle-proxy mode. DCBytes counts the bytes read from middle
	// proxies.
	MPConnected      uint64 // RPC connections whose handshake completed
	MPFailed         uint64 // RPC connections that could not be made or failed their handshake
	MPLost           uint64 // ready RPC connections that closed or failed
	MPRequests       uint64 // client packets sent as RPC_PROXY_REQ
	MPDropped        uint64 // client packets that are not MTProto, not forwarded (§6.7)
	MPAnswers        uint64 // RPC_PROXY_ANS delivered to clients
	MPQuickAcks      uint64 // RPC_SIMPLE_ACK delivered to clients
	MPUnknownID      uint64 // answers for a client that is gone (RPC_CLOSE_CONN sent)
	MPCloseExt       uint64 // clients closed by RPC_CLOSE_EXT
	MPClientsLost    uint64 // clients closed because their RPC connection closed
	MPOverflow       uint64 // clients closed because their queue passed ClientQueueLimit
	MPNoConn         uint64 // clients closed because no RPC connection was ready in time
	MPUnknownCluster uint64 // clients closed because no middle proxy serves their DC
	MPBadAnswer      uint64 // answers that could not be framed for the client (dropped)
}

// Add adds o's totals to c.
func (c *Counters) Add(o *Counters) {
	c.Accepted += o.Accepted
	c.OverLimit += o.OverLimit
	c.Refused += o.Refused
	c.OverIPLimit += o.OverIPLimit
	c.BudgetClosed += o.BudgetClosed
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
	c.MPConnected += o.MPConnected
	c.MPFailed += o.MPFailed
	c.MPLost += o.MPLost
	c.MPRequests += o.MPRequests
	c.MPDropped += o.MPDropped
	c.MPAnswers += o.MPAnswers
	c.MPQuickAcks += o.MPQuickAcks
	c.MPUnknownID += o.MPUnknownID
	c.MPCloseExt += o.MPCloseExt
	c.MPClientsLost += o.MPClientsLost
	c.MPOverflow += o.MPOverflow
	c.MPNoConn += o.MPNoConn
	c.MPUnknownCluster += o.MPUnknownCluster
	c.MPBadAnswer += o.MPBadAnswer
}

// Secret is one client secret's share of the traffic, kept per reactor and
// summed like Counters.
type Secret struct {
	Handshakes uint64 // clients accepted with this secret
	Active     int64  // of which still open
	BytesIn    uint64 // bytes read from these clients after their header
	BytesOut   uint64 // bytes written to them (before TLS framing)
}

// Add adds o's totals to s.
func (s *Secret) Add(o *Secret) {
	s.Handshakes += o.Handshakes
	s.Active += o.Active
	s.BytesIn += o.BytesIn
	s.BytesOut += o.BytesOut
}

// Snapshot is the proxy's state at one moment: the counters summed over
// the reactors and the gauges read on each of them.
type Snapshot struct {
	Counters
	Loops       int   // reactors
	Clients     int   // open client connections
	DCConns     int   // open DC (or fronted site) connections
	MPReady     int   // middle-proxy RPC connections serving clients
	MPStarting  int   // middle-proxy RPC connections connecting or in their handshake
	QueuedBytes int64 // bytes waiting in outbound buffers and pre-connection queues
	// PerSecret is keyed by the 16-byte client key; secrets removed by a
	// reload stay while their clients do.
	PerSecret map[[16]byte]Secret
}
