package main

import (
	"context"
	"fmt"
	"io"

	"github.com/leadthrough/leadthrough/broker"
)

func runBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("broker", "Runs franz-go's kfake, an embedded Kafka-compatible broker, with topics created on first use. "+
		"For local use, the demo and fast tests; use Apache Kafka in production.", stderr)
	listen := c.String("listen", broker.DefaultListen, "address to listen on (host:port); clients use it as --brokers")
	dataDir := c.String("data-dir", "", "directory to persist topics and offsets across restarts; empty keeps everything in memory")
	partitions := c.Int("partitions", broker.DefaultPartitions, "partitions of automatically created topics")
	logger := logFlags(c)
	if err := c.parse(args); err != nil {
		return err
	}
	log := logger()
	b, err := broker.Start(broker.Config{Listen: *listen, DataDir: *dataDir, Partitions: *partitions, Logger: log})
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(stdout, "embedded broker listening on %s (use --brokers %s); Ctrl-C to stop\n", b.Addr(), b.Addr())
	<-ctx.Done()
	log.Info("stopping broker")
	return nil
}
