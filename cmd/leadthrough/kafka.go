package main

import (
	"fmt"
	"strings"

	"github.com/leadthrough/leadthrough/kafkaconn"
)

// kafkaClient is where and how a command reaches Kafka.
type kafkaClient struct {
	Brokers []string
	Conn    kafkaconn.Config
}

// kafkaFlags are shared by every command that talks to Kafka (ingest, serve --ingest, simulate, import): --brokers,
// TLS (--kafka-tls and the files and name that go with it) and SASL (--kafka-sasl-mechanism, -username, and the
// password as --kafka-sasl-password or --kafka-sasl-password-file). The values are complete once parse returns; a
// mechanism without a username and password, or credentials without a mechanism, is a usage error.
func kafkaFlags(c *command) *kafkaClient {
	k := &kafkaClient{}
	brokers := brokersFlag(c)
	tlsConfig := tlsFlags(c, "kafka", "Kafka", "an SSL or SASL_SSL listener; every managed Kafka")
	c.Func("kafka-sasl-mechanism", "", "SASL mechanism: "+strings.Join(kafkaconn.Mechanisms, ", ")+" (Confluent "+
		"Cloud: PLAIN; Amazon MSK: SCRAM-SHA-512; Aiven, Redpanda: SCRAM-SHA-256 or SCRAM-SHA-512); empty for none. "+
		"Needs --kafka-sasl-username and --kafka-sasl-password(-file), and --kafka-tls for a SASL_SSL listener",
		func(s string) error {
			for _, m := range append([]string{""}, kafkaconn.Mechanisms...) {
				if strings.EqualFold(s, m) {
					k.Conn.SASL.Mechanism = m
					return nil
				}
			}
			return fmt.Errorf("want one of %s", strings.Join(kafkaconn.Mechanisms, ", "))
		})
	c.fs.StringVar(&k.Conn.SASL.Username, "kafka-sasl-username", "",
		c.register("kafka-sasl-username", "SASL username (Confluent Cloud: the API key); see --kafka-sasl-mechanism"))
	password := c.Secret("kafka-sasl-password", "SASL password (Confluent Cloud: the API secret)")
	c.parsed = append(c.parsed, func() error {
		k.Brokers = *brokers
		var err error
		if k.Conn.TLS, err = tlsConfig(); err != nil {
			return err
		}
		p, err := password()
		if err != nil {
			return err
		}
		k.Conn.SASL.Password = kafkaconn.Secret(p)
		s := k.Conn.SASL
		switch {
		case s.Mechanism == "" && (s.Username != "" || p != ""):
			return fmt.Errorf("%w: --kafka-sasl-username and --kafka-sasl-password need --kafka-sasl-mechanism", errUsage)
		case s.Mechanism != "" && (s.Username == "" || p == ""):
			return fmt.Errorf("%w: --kafka-sasl-mechanism %s needs --kafka-sasl-username and --kafka-sasl-password or "+
				"--kafka-sasl-password-file", errUsage, s.Mechanism)
		}
		return nil
	})
	return k
}
