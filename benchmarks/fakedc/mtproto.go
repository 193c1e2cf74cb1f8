package fakedc

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net"
	"sync"

	"github.com/gotd/td/crypto"
	"github.com/gotd/td/exchange"
	"github.com/gotd/td/mt"
	"github.com/gotd/td/proto"
	"github.com/gotd/td/proto/codec"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
	"github.com/gotd/td/tgtest/services"
	"github.com/gotd/td/tgtest/services/config"
	"github.com/gotd/td/tmap"
	"github.com/gotd/td/transport"
)

// maxFileLimit caps upload.getFile answers; larger frames than this are not
// carried by an MTProxy anyway (protocol.md §3.4).
const maxFileLimit = 1 << 20

// typesMap is shared by all tgtest servers: tgtest builds a fresh one per
// server otherwise, which costs milliseconds.
var typesMap = sync.OnceValue(func() *tmap.Map {
	return tmap.New(tg.TypesMap(), mt.TypesMap(), proto.TypesMap())
})

func (s *Server) initMTProto() error {
	key := s.cfg.Key
	if key == nil {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, crypto.RSAKeyBits); err != nil {
			return fmt.Errorf("fakedc: %w", err)
		}
	} else if key.N.BitLen() != crypto.RSAKeyBits {
		return fmt.Errorf("fakedc: MTProto needs an RSA-%d key", crypto.RSAKeyBits)
	}
	s.key = exchange.PrivateKey{RSA: key}

	d := tgtest.NewDispatcher()
	config.NewService(&tg.Config{}, &tg.CDNConfig{}).Register(d)
	d.HandleFunc(tg.HelpGetNearestDCRequestTypeID, nearestDC)
	d.HandleFunc(tg.UploadSaveFilePartRequestTypeID, saveFilePart)
	d.HandleFunc(tg.UploadGetFileRequestTypeID, getFile)
	d.Fallback(tgtest.HandlerFunc(fallback))
	s.handler = tgtest.UnpackInvoke(d)
	return nil
}

// serveMTProto runs a tgtest server for this one connection. A server per
// connection is deliberate: tgtest guards its session map with the wrong
// mutex, so concurrent connections on one server race. The price is that an
// auth key is only known on the connection that created it.
func (s *Server) serveMTProto(c *conn, tag uint32) {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	// tgtest closes the connection when it is done with it; that must also
	// end Serve, which otherwise waits for ctx.
	c.onClose = cancel

	var cdc codec.Codec
	switch tag {
	case TagAbridged:
		cdc = codec.Abridged{}
	case TagIntermediate:
		cdc = codec.Intermediate{}
	default:
		cdc = codec.PaddedIntermediate{}
	}
	srv := tgtest.NewServer(s.key, s.handler, tgtest.ServerOptions{
		DC:    s.cfg.DC,
		Types: typesMap(),
	})
	// The tag was in the obfuscated2 header, so the codec reads no header.
	ln := transport.ListenCodec(func() transport.Codec { return codec.NoHeader{Codec: cdc} }, newOneConnListener(c))
	srv.Serve(ctx, ln)
}

// oneConnListener hands one connection to a tgtest server, then blocks in
// Accept until closed.
type oneConnListener struct {
	addr    net.Addr
	pending chan net.Conn
	done    chan struct{}
	once    sync.Once
}

func newOneConnListener(c net.Conn) *oneConnListener {
	l := &oneConnListener{
		addr:    c.LocalAddr(),
		pending: make(chan net.Conn, 1),
		done:    make(chan struct{}),
	}
	l.pending <- c
	return l
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.pending:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr {
	return l.addr
}

func nearestDC(srv *tgtest.Server, req *tgtest.Request) error {
	var r tg.HelpGetNearestDCRequest
	if err := r.Decode(req.Buf); err != nil {
		return err
	}
	return srv.SendResult(req, &tg.NearestDC{Country: "ZZ", ThisDC: req.DC, NearestDC: req.DC})
}

func saveFilePart(srv *tgtest.Server, req *tgtest.Request) error {
	var r tg.UploadSaveFilePartRequest
	if err := r.Decode(req.Buf); err != nil {
		return err
	}
	if len(r.Bytes) == 0 || r.FilePart < 0 {
		return tgerr.New(400, "FILE_PART_INVALID")
	}
	want := make([]byte, len(r.Bytes))
	fill(uint64(r.FileID), int64(r.FilePart)*int64(len(r.Bytes)), want)
	if !bytes.Equal(r.Bytes, want) {
		return tgerr.New(400, "FILE_PART_CORRUPT")
	}
	return srv.SendBool(req, true)
}

func getFile(srv *tgtest.Server, req *tgtest.Request) error {
	var r tg.UploadGetFileRequest
	if err := r.Decode(req.Buf); err != nil {
		return err
	}
	loc, ok := r.Location.(*tg.InputDocumentFileLocation)
	if !ok {
		return tgerr.New(400, "LOCATION_INVALID")
	}
	if r.Offset < 0 || r.Limit <= 0 || r.Limit > maxFileLimit {
		return tgerr.New(400, "LIMIT_INVALID")
	}
	b := make([]byte, r.Limit)
	fill(uint64(loc.ID), r.Offset, b)
	return srv.SendResult(req, &tg.UploadFile{Type: &tg.StorageFilePartial{}, Bytes: b})
}

func fallback(srv *tgtest.Server, req *tgtest.Request) error {
	id, err := req.Buf.PeekID()
	if err != nil {
		return err
	}
	if id == mt.MsgsAckTypeID {
		return nil // acks get no answer
	}
	return services.ErrMethodNotImplemented
}
