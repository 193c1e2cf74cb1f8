package rpc

// The short messages: a type, a 64-bit connection or ping id and, for
// RPC_SIMPLE_ACK, a token. Sizes are exact, as the official checks them.

const (
	idMsgLen     = 12 // RPC_CLOSE_EXT, RPC_CLOSE_CONN, RPC_PING, RPC_PONG
	simpleAckLen = 16
)

// AppendSimpleAck appends an RPC_SIMPLE_ACK to dst. It is for tests that
// play the middle proxy.
func AppendSimpleAck(dst []byte, connID int64, token uint32) []byte {
	dst = appendIDMsg(dst, TypeSimpleAck, connID)
	return le.AppendUint32(dst, token)
}

// ParseSimpleAck parses an RPC_SIMPLE_ACK: the quick-ack token for the
// client connID. Sent as a little-endian word it is what the client
// expects, byte-swapped for abridged clients.
func ParseSimpleAck(body []byte) (connID int64, token uint32, err error) {
	if err := checkBody(body, TypeSimpleAck, simpleAckLen, false); err != nil {
		return 0, 0, err
	}
	return int64(le.Uint64(body[4:])), le.Uint32(body[12:]), nil
}

// AppendCloseExt appends an RPC_CLOSE_EXT, the middle proxy's order to
// close the client connID. It is for tests that play the middle proxy.
func AppendCloseExt(dst []byte, connID int64) []byte {
	return appendIDMsg(dst, TypeCloseExt, connID)
}

// ParseCloseExt parses an RPC_CLOSE_EXT.
func ParseCloseExt(body []byte) (connID int64, err error) {
	return parseIDMsg(body, TypeCloseExt)
}

// AppendCloseConn appends an RPC_CLOSE_CONN, which tells the middle proxy
// that the client connID is gone, or unknown to the proxy.
func AppendCloseConn(dst []byte, connID int64) []byte {
	return appendIDMsg(dst, TypeCloseConn, connID)
}

// ParseCloseConn parses an RPC_CLOSE_CONN.
func ParseCloseConn(body []byte) (connID int64, err error) {
	return parseIDMsg(body, TypeCloseConn)
}

// AppendPing appends an RPC_PING. The official proxy never sends one.
func AppendPing(dst []byte, pingID int64) []byte {
	return appendIDMsg(dst, TypePing, pingID)
}

// ParsePing parses an RPC_PING, to be answered with an RPC_PONG of the
// same id.
func ParsePing(body []byte) (pingID int64, err error) {
	return parseIDMsg(body, TypePing)
}

// AppendPong appends an RPC_PONG, the answer to an RPC_PING.
func AppendPong(dst []byte, pingID int64) []byte {
	return appendIDMsg(dst, TypePong, pingID)
}

// ParsePong parses an RPC_PONG.
func ParsePong(body []byte) (pingID int64, err error) {
	return parseIDMsg(body, TypePong)
}

func appendIDMsg(dst []byte, t Type, id int64) []byte {
	dst = le.AppendUint32(dst, uint32(t))
	return le.AppendUint64(dst, uint64(id))
}

func parseIDMsg(body []byte, t Type) (int64, error) {
	if err := checkBody(body, t, idMsgLen, false); err != nil {
		return 0, err
	}
	return int64(le.Uint64(body[4:])), nil
}
