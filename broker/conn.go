package broker

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"
)

// Why the embedded broker wraps its client connections.
//
// kfake's classic group coordinator parks a JoinGroup, and a follower's SyncGroup, until the rebalance step they wait
// for completes. A consumer that dies while parked there (SIGKILLed, or a client that gave up on a slow join:
// kafka-go closes the connection after RebalanceTimeout + 5s and joins again under a new member id) never sends the
// LeaveGroup a consumer sends when it closes, and kfake handles the member it leaves behind badly:
//
//   - kfake starts a new member's session timer only when it manages to hand the member its first reply. It notices
//     that the connection ended only if the read side has already failed, and even then picks at random between a
//     buffered send and giving up, so half the time such a member (and every worker that starts, restarts or gives
//     up on a join joins as a new member) stays in the group with no session timer at all. In a stable group it
//     keeps the partitions it was assigned, and nobody reads them, until some other rebalance.
//   - When the reply does get "delivered", the member expires after its session timeout, but if it was elected
//     leader, the followers waiting in SyncGroup for its assignment expire at the same moment, because kfake does not
//     keep members that wait in a JoinGroup or SyncGroup alive as Apache Kafka does. Expiring a SyncGroup waiter also
//     miscounts the joining members, after which only the rebalance timeout can complete the next rebalance, and
//     kfake restarts that timeout at every join.
//
// Measured with three ingest workers SIGKILLed and restarted in turn: the group never settled, workers timing out
// their joins over and over ("Failed to join group …: i/o timeout"), each retry leaving one more such member.
//
// groupConn finishes what the consumer could not: when the client's connection ends while its last JoinGroup or
// SyncGroup waits for a reply, the end of the read side is held back until kfake has written that reply (into the
// void), and then a LeaveGroup for the member is read in, as if the consumer had sent it. kfake removes the member at
// once and rebalances the others. Only the non-flexible request versions that kafka-go sends (JoinGroup v0–v5,
// SyncGroup v0–v3) are parsed; for later versions the end is still held back until the reply, so that kfake at least
// starts the member's session timer and the member expires after its session timeout.

// groupReplyHold bounds how long the end of a connection is held back for a pending group reply: Apache Kafka's
// cap on how long a new member may sit in a join (5 minutes), well beyond any rebalance a working group needs.
const groupReplyHold = 5 * time.Minute

// Kafka API keys.
const (
	keyJoinGroup  = 11
	keyLeaveGroup = 13
	keySyncGroup  = 14
)

// maxFrame is the largest request size taken for Kafka framing (Apache Kafka's socket.request.max.bytes default).
// A larger "size" means the stream is not plain Kafka requests (TLS, garbage): groupConn then stops following it.
const maxFrame = 100 << 20

// maxGroupFrame bounds the group request bodies groupConn keeps to parse; a larger one is not parsed.
const maxGroupFrame = 1 << 20

// leaveClientID is the client id of the LeaveGroup requests groupConn sends on a vanished consumer's behalf.
const leaveClientID = "leadthrough-broker"

// groupListener wraps every accepted connection in a groupConn.
type groupListener struct{ net.Listener }

func (l groupListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newGroupConn(c), nil
}

// groupRequest is a JoinGroup or SyncGroup read from the client, until its reply is written.
type groupRequest struct {
	frame   int // its number among the frames read; its reply is the frame-th reply written
	key     int16
	version int16
	group   string // "" when the request version is not parsed
	member  string // from the request; for a first JoinGroup, from its reply
}

// groupConn is a broker-side client connection that follows the requests the client sends and the replies the
// broker writes (kfake reads one request at a time, answers in order and writes each reply with one Write), so that
// it can tell when a client vanished while a group request of its waited; see the comment at the top of this file.
type groupConn struct {
	net.Conn

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever written or closed changes
	closed  bool
	gone    bool          // the client's side ended: nothing written reaches it any more
	written int           // replies written
	pending *groupRequest // the last group request read, until its reply is written
	orphan  *groupRequest // the group request that was pending when the client vanished
	await   int           // the end of the read side waits until this many replies were written

	// Reader state, touched only by Read (kfake reads from one goroutine at a time).
	header  [8]byte // size, API key and version of the frame being read
	have    int     // bytes of header read so far
	left    int     // body bytes of the frame still to read after its header
	body    []byte  // the body of a group request being read
	keep    bool    // whether the frame being read is a group request whose body is kept
	frames  int     // complete request frames read, including injected ones
	tracked bool    // false once the stream stopped looking like Kafka requests
	readErr error   // the client's end, returned once nothing is pending
	inject  []byte  // the rest of a LeaveGroup being read in on the client's behalf
}

func newGroupConn(c net.Conn) *groupConn {
	return &groupConn{Conn: c, changed: make(chan struct{}), tracked: true}
}

// Read reads from the client; once the client has gone, see the comment at the top of this file.
func (c *groupConn) Read(p []byte) (int, error) {
	if len(c.inject) > 0 {
		n := copy(p, c.inject)
		c.inject = c.inject[n:]
		return n, nil
	}
	if c.readErr == nil {
		n, err := c.Conn.Read(p)
		c.follow(p[:n])
		if err == nil {
			return n, nil
		}
		c.vanished(err)
		if n > 0 {
			return n, nil // the broker takes these bytes first: they may complete the very request to wait for
		}
	}
	c.awaitReplies()
	if leave := c.takeLeave(); leave != nil {
		n := copy(p, leave)
		c.inject = leave[n:]
		return n, nil
	}
	return 0, c.readErr
}

// vanished records that the client's side ended with err.
func (c *groupConn) vanished(err error) {
	c.readErr = err
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gone = true
	if c.pending != nil && c.written < c.pending.frame {
		c.orphan = c.pending
		c.await = c.pending.frame
	}
}

// Write writes one reply of the broker. Once the client has gone, a reply is reported written even if the socket
// refuses it: it goes into the void, as to any client that vanished, and kfake keeps serving the connection (the
// LeaveGroup read in on the client's behalf) instead of dropping it.
func (c *groupConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written++
	if r := c.pending; r != nil && c.written == r.frame {
		if r.key == keyJoinGroup && r.group != "" {
			if member, ok := joinReplyMember(p, r.version); ok && member != "" {
				r.member = member
			}
		}
		c.pending = nil
	}
	c.notifyLocked()
	if c.gone {
		return len(p), nil
	}
	return n, err
}

func (c *groupConn) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		c.notifyLocked()
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

func (c *groupConn) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// awaitReplies waits until the replies the end of the read side waits for were written, the connection was
// closed, or groupReplyHold passed.
func (c *groupConn) awaitReplies() {
	var deadline <-chan time.Time
	for {
		c.mu.Lock()
		done := c.closed || c.written >= c.await
		changed := c.changed
		c.mu.Unlock()
		if done {
			return
		}
		if deadline == nil {
			t := time.NewTimer(groupReplyHold)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-changed:
		case <-deadline:
			return
		}
	}
}

// takeLeave returns, once, the LeaveGroup to read in for the member of the orphaned group request, if its reply
// was written and the member is known. The end of the read side then waits for the LeaveGroup's reply too.
func (c *groupConn) takeLeave() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.orphan
	if c.closed || r == nil || c.written < r.frame || r.group == "" || r.member == "" {
		return nil
	}
	c.orphan = nil
	c.frames++
	c.await = c.frames
	return leaveGroupV0(r.group, r.member)
}

// follow advances the request framing over b, bytes just read from the client.
func (c *groupConn) follow(b []byte) {
	for len(b) > 0 && c.tracked {
		if c.have < len(c.header) {
			k := copy(c.header[c.have:], b)
			c.have += k
			b = b[k:]
			if c.have < len(c.header) {
				return
			}
			size := int64(binary.BigEndian.Uint32(c.header[:4]))
			if size < 4 || size > maxFrame {
				c.tracked = false
				return
			}
			c.left = int(size) - 4
			key := int16(binary.BigEndian.Uint16(c.header[4:6]))
			c.keep = (key == keyJoinGroup || key == keySyncGroup) && c.left <= maxGroupFrame
			c.body = c.body[:0]
		}
		k := min(c.left, len(b))
		if c.keep {
			c.body = append(c.body, b[:k]...)
		}
		c.left -= k
		b = b[k:]
		if c.left == 0 {
			c.frameRead()
		}
	}
}

// frameRead records a complete request frame.
func (c *groupConn) frameRead() {
	c.frames++
	c.have = 0
	key := int16(binary.BigEndian.Uint16(c.header[4:6]))
	if key != keyJoinGroup && key != keySyncGroup {
		return
	}
	r := &groupRequest{frame: c.frames, key: key, version: int16(binary.BigEndian.Uint16(c.header[6:8]))}
	if c.keep {
		r.group, r.member = groupRequestMember(c.body, key, r.version)
	}
	c.mu.Lock()
	c.pending = r
	c.mu.Unlock()
}

// groupRequestMember parses the group and member id out of the body (after API key and version) of a non-flexible
// JoinGroup (v0–v5) or SyncGroup (v0–v3) request; it returns "" for the group if it cannot.
func groupRequestMember(body []byte, key, version int16) (group, member string) {
	if (key == keyJoinGroup && version > 5) || (key == keySyncGroup && version > 3) {
		return "", ""
	}
	r := wire{b: body}
	r.skip(4)          // correlation id
	r.nullableString() // client id
	group = r.string()
	switch key {
	case keyJoinGroup:
		r.skip(4) // session timeout
		if version >= 1 {
			r.skip(4) // rebalance timeout
		}
	case keySyncGroup:
		r.skip(4) // generation
	}
	member = r.string()
	if r.err != nil {
		return "", ""
	}
	return group, member
}

// joinReplyMember parses the member id out of a non-flexible JoinGroup reply (v0–v5) as written: size,
// correlation id, body.
func joinReplyMember(reply []byte, version int16) (string, bool) {
	if version > 5 {
		return "", false
	}
	r := wire{b: reply}
	r.skip(8) // size, correlation id
	if version >= 2 {
		r.skip(4) // throttle time
	}
	r.skip(2 + 4) // error code, generation
	r.string()    // protocol
	r.string()    // leader
	member := r.string()
	return member, r.err == nil
}

// leaveGroupV0 is a LeaveGroup v0 request frame for member of group.
func leaveGroupV0(group, member string) []byte {
	b := make([]byte, 4, 4+2+2+4+2+len(leaveClientID)+2+len(group)+2+len(member))
	b = binary.BigEndian.AppendUint16(b, keyLeaveGroup)
	b = binary.BigEndian.AppendUint16(b, 0)          // version
	b = binary.BigEndian.AppendUint32(b, 0x7fffffff) // correlation id: nobody reads the reply
	for _, s := range []string{leaveClientID, group, member} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// wire reads big-endian Kafka primitives from b; the first short read sets err and makes the rest no-ops.
type wire struct {
	b   []byte
	err error
}

var errShort = errors.New("short Kafka message")

func (w *wire) take(n int) []byte {
	if w.err != nil || n < 0 || n > len(w.b) {
		w.err = errShort
		return nil
	}
	v := w.b[:n]
	w.b = w.b[n:]
	return v
}

func (w *wire) skip(n int) { w.take(n) }

func (w *wire) int16() int16 {
	v := w.take(2)
	if v == nil {
		return 0
	}
	return int16(binary.BigEndian.Uint16(v))
}

func (w *wire) string() string { return string(w.take(int(w.int16()))) }

func (w *wire) nullableString() {
	if n := w.int16(); n > 0 {
		w.skip(int(n))
	}
}
