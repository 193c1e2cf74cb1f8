package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/tgclient"
	"github.com/mtproxy-go/mtproxy/server"
)

// TestGotdClientThroughProxy runs a client no one here wrote (gotd/td's,
// with its MTProxy transports) through our proxy to an MTProto server
// (gotd's tgtest behind the fake DC): auth key exchange, then RPCs that
// upload and download verified data, for every framing and secret form,
// on one and two reactors.
func TestGotdClientThroughProxy(t *testing.T) {
	d := startFakeDC(t, fakedc.Config{Mode: fakedc.MTProto})
	cases := []struct {
		transport tgclient.Transport
		dd        bool
	}{
		{tgclient.Abridged, false},
		{tgclient.Intermediate, false},
		{tgclient.PaddedIntermediate, false},
		{tgclient.PaddedIntermediate, true},
	}
	for _, loops := range []int{1, 2} {
		// Fast mode on two reactors: the DC enciphers for the client.
		p := startProxy(t, d.Addr(), server.Config{Loops: loops, FastMode: loops == 2})
		t.Run(fmt.Sprintf("loops=%d", loops), func(t *testing.T) {
			for _, tc := range cases {
				name := tc.transport.String()
				if tc.dd {
					name += "/dd"
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					err := tgclient.Run(ctx, tgclient.Config{
						ProxyAddr: p.addr,
						Secret:    tgclient.Secret{Key: testKey, DD: tc.dd},
						Transport: tc.transport,
						PublicKey: d.PublicKey(),
					})
					if err != nil {
						t.Fatal(err)
					}
				})
			}
		})
		if st := p.stats(t); st.HandshakesOK < uint64(len(cases)) || st.HandshakesBad != 0 {
			t.Errorf("loops %d: counters %+v", loops, st)
		}
	}
	for _, ci := range d.Conns() {
		if ci.Err != nil {
			t.Errorf("fake DC refused a proxy header: %v", ci)
		}
	}
}
