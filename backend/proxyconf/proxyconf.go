// Package proxyconf reads the two files that configure middle-proxy mode
// (protocol.md §6.1, §6.2): proxy-multi.conf, which lists the middle
// proxies of each DC, and proxy-secret, the key shared with them.
//
// It accepts what the official MTProxy accepts, with these exceptions:
// host names are kept for the caller to resolve instead of being resolved
// while parsing, bracketed hosts must be IPv6 literals, a NUL byte is an
// error rather than the end of the file, and min_connections and
// max_connections apply to the whole file rather than to the targets that
// follow them.
package proxyconf

import (
	"fmt"
	"strings"
)

// Limits of the official proxy (§10).
const (
	MaxFileSize = 16 << 20 // bytes of proxy-multi.conf
	MaxClusters = 1024     // DCs in proxy-multi.conf
	MaxTargets  = 4096     // middle-proxy addresses in proxy-multi.conf
)

// Defaults of the official proxy for the TCP connections kept to each
// middle proxy.
const (
	DefaultMinConnections = 4
	DefaultMaxConnections = 8
)

// A Cluster is the middle proxies serving one DC.
type Cluster struct {
	ID      int      // DC index: negative for media DCs, 0 from "proxy" lines
	Targets []string // "host:port", IPv6 hosts in brackets, in file order
}

// A Config is a parsed proxy-multi.conf. It is immutable, and slices it
// returns must not be modified, so one Config can serve many goroutines.
type Config struct {
	clusters []Cluster   // in file order
	index    map[int]int // cluster ID to position in clusters
	def      int
	minConns int
	maxConns int
}

// Clusters returns the clusters in file order.
func (c *Config) Clusters() []Cluster { return c.clusters }

// Targets returns the addresses of the middle proxies for the DC dc, or
// nil if the file has none.
func (c *Config) Targets(dc int) []string {
	if i, ok := c.index[dc]; ok {
		return c.clusters[i].Targets
	}
	return nil
}

// Lookup returns the cluster that serves clients asking for the DC dc:
// the one with that exact index (negative and test DCs included), else the
// default cluster. ok is false if neither exists; the official proxy then
// drops the client's packets.
func (c *Config) Lookup(dc int) (cl Cluster, ok bool) {
	i, ok := c.index[dc]
	if !ok {
		i, ok = c.index[c.def]
	}
	if !ok {
		return Cluster{}, false
	}
	return c.clusters[i], true
}

// Default returns the DC of the default cluster: the last "default"
// statement's, else 0, which only "proxy" and "proxy_for 0" lines create.
// The file may have no cluster for it.
func (c *Config) Default() int { return c.def }

// MinConnections returns the number of TCP connections to keep open to
// each middle proxy.
func (c *Config) MinConnections() int { return c.minConns }

// MaxConnections returns the most TCP connections to open to each middle
// proxy.
func (c *Config) MaxConnections() int { return c.maxConns }

// String returns c in the file format, one statement a line. Parsing it
// gives back c.
func (c *Config) String() string {
	var b strings.Builder
	if c.def != 0 {
		fmt.Fprintf(&b, "default %d;\n", c.def)
	}
	// Each statement is checked against the other's current value, so
	// the order must keep min ≤ max at every step.
	minLine := fmt.Sprintf("min_connections %d;\n", c.minConns)
	maxLine := fmt.Sprintf("max_connections %d;\n", c.maxConns)
	switch {
	case c.maxConns >= DefaultMinConnections:
		if c.maxConns != DefaultMaxConnections {
			b.WriteString(maxLine)
		}
		if c.minConns != DefaultMinConnections {
			b.WriteString(minLine)
		}
	default:
		b.WriteString(minLine)
		b.WriteString(maxLine)
	}
	for _, cl := range c.clusters {
		for _, t := range cl.Targets {
			fmt.Fprintf(&b, "proxy_for %d %s;\n", cl.ID, t)
		}
	}
	return b.String()
}
