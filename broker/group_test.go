package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/broker"
)

// TestGroupMemberWhoseClientVanishedInAJoinIsDropped is a worker SIGKILLed while its JoinGroup waits for a
// rebalance: the join reaches the broker, then the connection ends before the answer. The broker must drop that
// member (Apache Kafka does after its session timeout; the embedded broker as soon as the join is answered), so the
// live worker gets every partition back. kfake alone keeps such a member, with the partitions it was assigned, for as
// long as no other rebalance happens: half the time, at random; several groups side by side make a pass by luck
// unlikely (1 in 2^groups).
func TestGroupMemberWhoseClientVanishedInAJoinIsDropped(t *testing.T) {
	const partitions, groups = 6, 8
	// Even a member that expires only after its session timeout (6s) is gone well within this.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	b := start(t, broker.Config{Partitions: partitions})
	topic := "vanished"
	produce(t, ctx, b.Addr(), topic, "x")

	errs := make(chan error, groups)
	for i := range groups {
		group := fmt.Sprintf("g%d", i)
		go func() { errs <- vanishAndRecover(ctx, b.Addr(), topic, group, partitions) }()
	}
	for range groups {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// vanishAndRecover runs one live member in group, has a second member join and vanish, and waits until the live
// member holds every partition again.
func vanishAndRecover(ctx context.Context, addr, topic, group string, partitions int) error {
	live, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: group, Brokers: []string{addr}, Topics: []string{topic},
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 10 * time.Second, HeartbeatInterval: 500 * time.Millisecond,
		JoinGroupBackoff: 100 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	defer live.Close()
	gens := make(chan *kafka.Generation, 16)
	go func() {
		for {
			gen, err := live.Next(ctx)
			switch {
			case ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed):
				return
			case err != nil:
				continue // a failed join or sync (a rebalance under way): the group tries again
			}
			gens <- gen
		}
	}()
	waitGen := func(what string, ok func(*kafka.Generation) bool) error {
		for {
			select {
			case gen := <-gens:
				if ok(gen) {
					return nil
				}
			case <-ctx.Done():
				state := describe(addr, group)
				return fmt.Errorf("group %s: %s: gave up waiting; the broker says %s", group, what, state)
			}
		}
	}
	var first int32
	owned := func(gen *kafka.Generation) int { return len(gen.Assignments[topic]) }
	if err := waitGen("live member alone", func(g *kafka.Generation) bool {
		first = g.ID
		return owned(g) == partitions
	}); err != nil {
		return err
	}

	// The vanishing member: a JoinGroup as kafka-go sends it, then the connection ends without waiting for the answer.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	if _, err := conn.Write(broker.JoinGroupV2(group, "", topic, 6000, 6000)); err != nil {
		return err
	}
	conn.Close()

	// The join makes a new generation, which the vanished member may or may not be part of; in the end the live
	// member must be alone again.
	return waitGen("live member alone again", func(g *kafka.Generation) bool {
		return g.ID > first && owned(g) == partitions
	})
}

// describe returns the group's state and members as the broker reports them, for failure messages.
func describe(addr, group string) string {
	c := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 5 * time.Second}
	resp, err := c.DescribeGroups(context.Background(), &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil || len(resp.Groups) != 1 {
		return fmt.Sprintf("(describe failed: %v)", err)
	}
	g := resp.Groups[0]
	var members []string
	for _, m := range g.Members {
		n := 0
		for _, t := range m.MemberAssignments.Topics {
			n += len(t.Partitions)
		}
		members = append(members, fmt.Sprintf("%s (%d partitions)", m.MemberID, n))
	}
	return fmt.Sprintf("%s with members %s", g.GroupState, strings.Join(members, ", "))
}
