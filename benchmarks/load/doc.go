// Package load is a load generator for MTProxy servers: any proxy, in
// direct mode, whose DCs lead to a fakedc server in ReqResp mode on
// loopback, or in middle-proxy mode (Target.Middle), whose middle proxies
// are fakeme servers in ReqResp mode.
//
// Clients use classic, dd or ee (fake TLS) secrets. Every request carries
// verifiable pattern bytes and every reply is checked byte for byte against
// the request that asked for it, so a proxy that drops, reorders, corrupts
// or cross-wires bytes fails the run instead of flattering it.
//
// Runs are built from connections opened by Open: Bulk streams requests
// and replies both ways, RequestResponse measures latency, and Storm
// measures handshakes per second on connections of its own. Every run is
// bounded in time and in count.
package load
