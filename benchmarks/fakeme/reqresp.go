package fakeme

import (
	"container/heap"
	"encoding/binary"
	"sync"
	"time"

	"github.com/mtproxy-go/mtproxy/benchmarks/fakedc"
	"github.com/mtproxy-go/mtproxy/benchmarks/framing"
	"github.com/mtproxy-go/mtproxy/codec/rpc"
)

// reqResp answers payload, one client packet of request r, as the
// fakedc.Request at its start asks. A packet that is not a valid request
// gets RPC_CLOSE_EXT for its id, which closes that client only.
func (c *conn) reqResp(r *rpc.ProxyReq, payload []byte) error {
	s := c.s
	// The proxy forwards a padded client's packet with its padding cut to
	// a multiple of 4 (protocol.md §3.3), so up to 12 bytes may follow the
	// request; the flags do not tell padded intermediate from
	// intermediate, only abridged from both.
	f := framing.Padded
	if r.Flags&rpc.FlagAbridged != 0 {
		f = framing.Abridged
	}
	q, err := fakedc.ParseRequest(payload, f)
	if err != nil {
		s.badRequests.Add(1)
		s.logf("fakeme: id %#x: %v", r.ConnID, err)
		delete(c.ids, r.ConnID)
		s.closeExts.Add(1)
		return c.frame(rpc.AppendCloseExt(nil, r.ConnID))
	}
	if d := c.delay; d != nil || q.ReplyDelay > 0 {
		if d == nil {
			d = newDelayer(c)
			c.delay = d
		}
		if d.schedule(r.ConnID, q) {
			return nil
		}
	}
	c.rrbuf = replyInto(c.rrbuf, q)
	return c.sendReply(r.ConnID, c.rrbuf)
}

// replyInto returns the reply to q in buf, reallocated only when too
// small: the request id, then fakedc.NewPattern(id) from offset 8, what
// fakedc's ReqResp sends.
func replyInto(buf []byte, q fakedc.Request) []byte {
	if cap(buf) < q.ReplySize {
		buf = make([]byte, q.ReplySize)
	}
	buf = buf[:q.ReplySize]
	binary.LittleEndian.PutUint64(buf, q.ID)
	fakedc.NewPattern(q.ID).ReadAt(buf[8:], 8)
	return buf
}

// sendReply sends reply to id in RPC_PROXY_ANS frames of at most
// Config.ReplyChunk payload bytes.
func (c *conn) sendReply(id int64, reply []byte) error {
	chunk := c.s.cfg.ReplyChunk
	if chunk == 0 {
		chunk = len(reply)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for off := 0; off < len(reply); off += chunk {
		c.appendAnswer(id, reply[off:min(off+chunk, len(reply))])
		if err := c.flushFull(); err != nil {
			return err
		}
	}
	return nil
}

// delayer sends the replies that wait for a ReplyDelay, from a goroutine
// of its own, so that one client's delay holds back no other client on the
// same RPC connection. Like fakedc, which reads a connection's next request
// only after answering the previous one, it answers each id in request
// order: a reply is due its delay after the later of its request's arrival
// and the id's previous reply, and a request without a delay waits for
// the id's delayed replies still pending.
type delayer struct {
	c    *conn
	mu   sync.Mutex
	q    replyHeap
	seq  uint64
	ids  map[int64]idDue // ids with replies in q
	wake chan struct{}   // q has a new head
	stop chan struct{}
	done chan struct{}
}

type idDue struct {
	last    time.Time // when the id's last reply in q is due
	pending int       // its replies in q
}

type delayedReply struct {
	due time.Time
	seq uint64 // breaks ties, in request order
	id  int64
	q   fakedc.Request
}

func newDelayer(c *conn) *delayer {
	d := &delayer{
		c:    c,
		ids:  make(map[int64]idDue),
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go d.run()
	return d
}

// schedule queues the reply to q for id if it must wait, and reports
// whether it did; otherwise the caller sends it at once.
func (d *delayer) schedule(id int64, q fakedc.Request) bool {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.ids[id]
	if st.pending == 0 && q.ReplyDelay == 0 {
		return false
	}
	base := now
	if st.pending > 0 && st.last.After(now) {
		base = st.last
	}
	r := delayedReply{due: base.Add(q.ReplyDelay), seq: d.seq, id: id, q: q}
	d.seq++
	d.ids[id] = idDue{last: r.due, pending: st.pending + 1}
	heap.Push(&d.q, r)
	if d.q[0].seq == r.seq {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// run sends the replies as they fall due, until close.
func (d *delayer) run() {
	defer close(d.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var buf []byte
	var due []delayedReply
	for {
		d.mu.Lock()
		now := time.Now()
		due = due[:0]
		for len(d.q) > 0 && !d.q[0].due.After(now) {
			due = append(due, heap.Pop(&d.q).(delayedReply))
		}
		wait := time.Hour
		if len(d.q) > 0 {
			wait = d.q[0].due.Sub(now)
		}
		d.mu.Unlock()
		for _, r := range due {
			buf = replyInto(buf, r.q)
			err := d.c.sendReply(r.id, buf)
			// Counted as sent only now, so that a request without a
			// delay that arrives meanwhile still waits its turn.
			d.mu.Lock()
			if st := d.ids[r.id]; st.pending <= 1 {
				delete(d.ids, r.id)
			} else {
				st.pending--
				d.ids[r.id] = st
			}
			d.mu.Unlock()
			if err != nil {
				return // the connection is broken; its reader sees it too
			}
		}
		if len(due) > 0 {
			if err := d.c.flush(); err != nil {
				return
			}
			continue // more may have fallen due while sending
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-d.wake:
		case <-d.stop:
			return
		}
	}
}

// close stops the goroutine and waits for it; replies still queued are
// dropped. The connection must be closed first, so that a blocked write
// returns.
func (d *delayer) close() {
	close(d.stop)
	<-d.done
}

// stopDelay ends ReqResp's delayed replies of the connection, if any.
func (c *conn) stopDelay() {
	if c.delay != nil {
		c.delay.close()
	}
}

// replyHeap orders delayed replies by due time, then request order.
type replyHeap []delayedReply

func (h replyHeap) Len() int { return len(h) }
func (h replyHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h replyHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *replyHeap) Push(x any)   { *h = append(*h, x.(delayedReply)) }
func (h *replyHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}
