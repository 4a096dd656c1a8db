package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// encode encodes Kafka fields, each a string (int16 length), an int16, an int32 or raw bytes.
func encode(fields ...any) []byte {
	var b bytes.Buffer
	for _, v := range fields {
		switch v := v.(type) {
		case string:
			_ = binary.Write(&b, binary.BigEndian, int16(len(v)))
			b.WriteString(v)
		case []byte:
			b.Write(v)
		default:
			_ = binary.Write(&b, binary.BigEndian, v)
		}
	}
	return b.Bytes()
}

// frameOf prefixes b with its size.
func frameOf(b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// request encodes a request frame: header v1 (correlation id 1, client id "test") and fields (see encode).
func request(key, version int16, fields ...any) []byte {
	return frameOf(append(encode(key, version, int32(1), "test"), encode(fields...)...))
}

// joinGroupV2 is a JoinGroup v2 request as kafka-go's consumer groups send it: member "" for a new member,
// subscribing to topic with the range assignor.
func joinGroupV2(group, member, topic string, sessionMs, rebalanceMs int32) []byte {
	meta := encode(int16(1), int32(1), topic, int32(0)) // consumer protocol metadata: version, topics, user data
	return request(keyJoinGroup, 2, group, sessionMs, rebalanceMs, member, "consumer", int32(1), "range",
		int32(len(meta)), meta)
}

// joinReplyV2 is the reply to a JoinGroup v2 as kfake writes it, for member (the leader).
func joinReplyV2(member string) []byte {
	return frameOf(encode(int32(1), int32(0), int16(0), int32(3), "range", member, member, int32(0)))
}

// broker reads c frame by frame, as kfake does, and sends each frame read, then the error that ended the reading.
func brokerSide(c net.Conn) (<-chan []byte, <-chan error) {
	frames, end := make(chan []byte, 16), make(chan error, 1)
	go func() {
		for {
			size := make([]byte, 4)
			if _, err := io.ReadFull(c, size); err != nil {
				end <- err
				return
			}
			body := make([]byte, binary.BigEndian.Uint32(size))
			if _, err := io.ReadFull(c, body); err != nil {
				end <- err
				return
			}
			frames <- append(size, body...)
		}
	}()
	return frames, end
}

// within returns the error from end, or nil if none came within d.
func within(end <-chan error, d time.Duration) error {
	select {
	case err := <-end:
		return err
	case <-time.After(d):
		return nil
	}
}

// vanish has the client send frames and close its side.
func vanish(t *testing.T, frames ...[]byte) *groupConn {
	t.Helper()
	client, server := net.Pipe()
	go func() {
		for _, f := range frames {
			client.Write(f)
		}
		client.Close()
	}()
	return newGroupConn(server)
}

func TestConnLeavesTheGroupForAClientThatVanishedWhileItsJoinWaited(t *testing.T) {
	other := request(18, 0) // ApiVersions, answered before the join
	c := vanish(t, other, joinGroupV2("g", "", "t", 6000, 6000))
	frames, end := brokerSide(c)
	<-frames
	<-frames
	if err := within(end, 200*time.Millisecond); err != nil {
		t.Fatalf("the end of the connection came through while the join waits: %v", err)
	}
	c.Write([]byte("api versions reply"))
	if err := within(end, 200*time.Millisecond); err != nil {
		t.Fatalf("the end came through after the reply to the request before the join: %v", err)
	}
	if n, err := c.Write(joinReplyV2("m-1")); err != nil || n == 0 {
		t.Fatalf("the join's reply to the vanished client: %d, %v; want it reported written", n, err)
	}
	select {
	case f := <-frames:
		if want := leaveGroupV0("g", "m-1"); !bytes.Equal(f, want) {
			t.Fatalf("read after the join's reply:\n%q\nwant the member's LeaveGroup\n%q", f, want)
		}
	case err := <-end:
		t.Fatalf("the connection ended without a LeaveGroup for the member: %v", err)
	case <-time.After(time.Second):
		t.Fatal("no LeaveGroup for the member")
	}
	if err := within(end, 200*time.Millisecond); err != nil {
		t.Fatalf("the end came through before the LeaveGroup's reply: %v", err)
	}
	c.Write([]byte("leave reply"))
	if err := within(end, time.Second); !errors.Is(err, io.EOF) {
		t.Fatalf("after the LeaveGroup's reply: %v, want EOF", err)
	}
}

func TestConnLeavesTheGroupForAClientThatVanishedWhileItsSyncWaited(t *testing.T) {
	c := vanish(t, request(keySyncGroup, 0, "g", int32(3), "m-2", int32(0)))
	frames, end := brokerSide(c)
	<-frames
	if err := within(end, 200*time.Millisecond); err != nil {
		t.Fatalf("the end of the connection came through while the sync waits: %v", err)
	}
	c.Write([]byte("sync reply"))
	select {
	case f := <-frames:
		if want := leaveGroupV0("g", "m-2"); !bytes.Equal(f, want) {
			t.Fatalf("read after the sync's reply: %q, want the member's LeaveGroup %q", f, want)
		}
	case <-time.After(time.Second):
		t.Fatal("no LeaveGroup for the member")
	}
}

func TestConnHoldsTheEndForARequestVersionItDoesNotParse(t *testing.T) {
	c := vanish(t, request(keyJoinGroup, 6, []byte{0, 0, 0}))
	frames, end := brokerSide(c)
	<-frames
	if err := within(end, 200*time.Millisecond); err != nil {
		t.Fatalf("the end of the connection came through while the join waits: %v", err)
	}
	c.Write([]byte("join reply"))
	if err := within(end, time.Second); !errors.Is(err, io.EOF) {
		t.Fatalf("after the join's reply: %v, want EOF (and no LeaveGroup)", err)
	}
}

func TestConnPassesTheEndThroughWhenNoGroupRequestWaits(t *testing.T) {
	join := joinGroupV2("g", "", "t", 6000, 6000)
	tests := map[string][]byte{
		"a request that is not a group request": request(18, 0),
		"half a group request":                  join[:len(join)/2],
		"a stream that is not Kafka framing":    {0x16, 0x03, 0x01, 0x02, 0x00, 0x0b, 0x01},
	}
	for name, sent := range tests {
		_, end := brokerSide(vanish(t, sent))
		if err := within(end, time.Second); !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			t.Errorf("%s: %v, want the end at once", name, err)
		}
	}

	// A join answered before the client closed the connection: the client got its reply, nothing to leave.
	client, server := net.Pipe()
	c := newGroupConn(server)
	frames, end := brokerSide(c)
	go client.Write(join)
	<-frames
	go io.Copy(io.Discard, client)
	c.Write(joinReplyV2("m-3"))
	client.Close()
	select {
	case f := <-frames:
		t.Errorf("read %q after a join the client got its reply to", f)
	case err := <-end:
		if !errors.Is(err, io.EOF) {
			t.Errorf("end %v, want EOF", err)
		}
	case <-time.After(time.Second):
		t.Error("the end did not come through")
	}
}

func TestConnCloseReleasesAHeldEnd(t *testing.T) {
	c := vanish(t, joinGroupV2("g", "", "t", 6000, 6000))
	frames, end := brokerSide(c)
	<-frames
	if err := within(end, 100*time.Millisecond); err != nil {
		t.Fatalf("the end came through while the join waits: %v", err)
	}
	c.Close()
	if err := within(end, 5*time.Second); err == nil {
		t.Fatal("Close did not release the held read")
	}
}

func TestConnParsesTheMemberOfEveryRequestVersionKafkaGoMaySend(t *testing.T) {
	body := func(frame []byte) []byte { return frame[8:] } // after size, API key and version
	for version := int16(0); version <= 5; version++ {
		fields := []any{"g", int32(6000)}
		if version >= 1 {
			fields = append(fields, int32(6000)) // rebalance timeout
		}
		fields = append(fields, "m-join", "consumer", int32(0))
		if group, member := groupRequestMember(body(request(keyJoinGroup, version, fields...)), keyJoinGroup, version); group != "g" || member != "m-join" {
			t.Errorf("JoinGroup v%d: group %q member %q", version, group, member)
		}
		var reply []any
		if version >= 2 {
			reply = append(reply, int32(0)) // throttle time
		}
		reply = append(reply, int16(0), int32(1), "range", "m-leader", "m-new", int32(0))
		framed := frameOf(append(encode(int32(1)), encode(reply...)...)) // correlation id, then the fields
		if member, ok := joinReplyMember(framed, version); !ok || member != "m-new" {
			t.Errorf("JoinGroup v%d reply: member %q, %v", version, member, ok)
		}
	}
	for version := int16(0); version <= 3; version++ {
		if group, member := groupRequestMember(body(request(keySyncGroup, version, "g", int32(1), "m-sync", int32(0))),
			keySyncGroup, version); group != "g" || member != "m-sync" {
			t.Errorf("SyncGroup v%d: group %q member %q", version, group, member)
		}
	}
	if group, _ := groupRequestMember(body(request(keySyncGroup, 4, "g")), keySyncGroup, 4); group != "" {
		t.Errorf("SyncGroup v4 (flexible) parsed as group %q, want not parsed", group)
	}
}
