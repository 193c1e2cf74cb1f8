package server

import (
	"crypto/rand"
	"errors"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"

	"github.com/mtproxy-go/mtproxy/codec/faketls"
	"github.com/mtproxy-go/mtproxy/codec/obfuscated2"
)

// tlsHello handles a fake-TLS client's first bytes: a ClientHello signed
// with a secret (protocol.md §4). Nothing is consumed until the hello is
// judged, so that a connection that is not a client can be relayed to the
// real site with every byte it sent.
func (s *session) tlsHello() gnet.Action {
	c := s.client.conn
	cfg := &s.loop.srv.cfg
	buf, _ := c.Peek(-1)
	n, err := faketls.HelloLength(buf)
	switch {
	case errors.Is(err, faketls.ErrNotHello) && cfg.AllowClassic:
		return s.obfs2Header()
	case err != nil:
		s.loop.stats.TLSBadHello++
		return s.front("not a ClientHello")
	case n > len(buf):
		return gnet.None // HelloLength bounds n: gnet holds at most one hello
	}
	if s.loop.hello == nil {
		s.loop.hello = make([]byte, 0, faketls.MaxHelloLen+5)
	}
	rec, err := faketls.Reassemble(s.loop.hello[:0], buf[:n])
	if err != nil {
		s.loop.stats.TLSBadHello++
		return s.front("malformed ClientHello")
	}
	hello, err := faketls.ParseHello(rec)
	if err != nil {
		s.loop.stats.TLSBadHello++
		return s.front("malformed ClientHello")
	}
	if hello.ServerName != nil && !cfg.knownDomain(hello.ServerName) {
		s.loop.stats.TLSUnknownSNI++
		return s.front("unknown server name")
	}
	s.keys = s.loop.secretSet()
	secret, ts, err := s.loop.verifier.Verify(rec)
	if err != nil {
		s.loop.stats.TLSBadDigest++
		return s.front("ClientHello matches no secret")
	}
	now := time.Now()
	if err := cfg.Replay.CheckTime(ts, now); err != nil {
		s.loop.stats.TLSClockSkew++
		return s.front("ClientHello timestamp outside the window")
	}
	if err := cfg.Replay.Add(hello.Random, now); err != nil {
		s.loop.stats.TLSReplay++
		return s.front("replayed ClientHello")
	}
	reply, err := faketls.AppendServerHello(s.loop.reply[:0], &hello, s.keys.keys[secret], cfg.Shape, rand.Reader)
	if err != nil {
		s.loop.stats.TLSBadHello++
		return s.front("no TLS 1.3 cipher suite")
	}
	s.loop.reply = reply
	s.loop.stats.TLSValid++
	c.Discard(n)
	c.Write(reply)
	s.tls, s.secret = true, secret
	s.state = stateTLSHeader
	return s.tlsHeader()
}

// tlsHeader collects the client's 64-byte obfuscated2 header from the
// first records. Inside fake TLS only the secret that signed the hello and
// padded intermediate framing are accepted, as clients do no other. Having
// answered as a proxy, a failure here closes the connection.
func (s *session) tlsHeader() gnet.Action {
	c := s.client.conn
	buf, _ := c.Next(-1)
	for len(buf) > 0 {
		p, rest, err := s.records.Next(buf)
		if err != nil {
			return s.badTLSHeader(err)
		}
		n := copy(s.dcHeader[s.headerN:], p)
		s.headerN += n
		buf = rest
		if s.headerN < obfuscated2.HeaderLen {
			continue
		}
		secrets := s.keys.keys[s.secret : s.secret+1]
		hello, err := obfuscated2.ParseClient(&s.dcHeader, secrets)
		if err == nil && hello.Tag != obfuscated2.TagPadded {
			err = errors.New("inner transport " + hello.Tag.String() + ", want padded")
		}
		if err != nil {
			return s.badTLSHeader(err)
		}
		hello.Secret = s.secret
		if !s.startRelay(hello) {
			return gnet.Close
		}
		s.counted(&s.client, len(p)-n+len(rest))
		s.forwardRecords(p[n:], rest)
		return gnet.None
	}
	return gnet.None
}

func (s *session) badTLSHeader(err error) gnet.Action {
	s.loop.stats.TLSBadHeader++
	s.logger().Debug("closing fake-TLS client after a bad header", zap.Error(err),
		remoteField("client", s.client.conn.RemoteAddr()))
	return gnet.Close
}

// front relays a connection that is not a valid client to the real site,
// starting with every byte it sent (protocol.md §4.7): an active prober
// sees the site's own answers. The relay is bounded and timed like any
// other pair.
func (s *session) front(reason string) gnet.Action {
	c := s.client.conn
	s.loop.stats.Fronted++
	s.logger().Debug("relaying to the fronted site", zap.String("reason", reason), remoteField("client", c.RemoteAddr()))
	buf, _ := c.Next(-1)
	s.pending.Append(buf)
	s.fronting = true
	s.dialBackend(s.loop.srv.cfg.FrontingAddr)
	return gnet.None
}
