package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// tlsFlags registers a service's TLS flags: --PREFIX-tls turns TLS on, and --PREFIX-tls-ca-file,
// --PREFIX-tls-cert-file with --PREFIX-tls-key-file and --PREFIX-tls-server-name (which need it) say how. The server's
// certificate is always verified. The returned function, called after parse, gives the *tls.Config, nil when TLS is
// off; a flag without --PREFIX-tls, a certificate without its key or a file that cannot be used is a usage error.
func tlsFlags(c *command, prefix, service, port string) func() (*tls.Config, error) {
	on := c.Bool(prefix+"-tls", false, "connect to "+service+" with TLS ("+port+"), verifying its certificate against "+
		"the system's CAs or --"+prefix+"-tls-ca-file")
	ca := c.String(prefix+"-tls-ca-file", "", "PEM `file` of the CA certificates that sign "+service+"'s certificate, "+
		"for a private CA (default: the system's CAs); needs --"+prefix+"-tls")
	cert := c.String(prefix+"-tls-cert-file", "", "PEM `file` of a client certificate (chain), with --"+prefix+
		"-tls-key-file, for a server that verifies clients; needs --"+prefix+"-tls")
	key := c.String(prefix+"-tls-key-file", "", "PEM `file` of the private key of --"+prefix+"-tls-cert-file")
	serverName := c.String(prefix+"-tls-server-name", "", "`name` the server's certificate must carry when it is not "+
		"the host of the address (default: that host); needs --"+prefix+"-tls")
	return func() (*tls.Config, error) {
		if !*on {
			for _, f := range []struct{ name, value string }{{"ca-file", *ca}, {"cert-file", *cert},
				{"key-file", *key}, {"server-name", *serverName}} {
				if f.value != "" {
					return nil, fmt.Errorf("%w: --%s-tls-%s needs --%s-tls", errUsage, prefix, f.name, prefix)
				}
			}
			return nil, nil
		}
		cfg, err := loadTLS(*ca, *cert, *key, *serverName)
		if err != nil {
			return nil, fmt.Errorf("%w: --%s-tls-%v", errUsage, prefix, err)
		}
		return cfg, nil
	}
}

// loadTLS builds a client TLS configuration from PEM files. Its errors start with the flag's suffix ("ca-file …").
func loadTLS(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca-file: %v", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca-file %s: no PEM certificate in it", caFile)
		}
	}
	switch {
	case certFile == "" && keyFile == "":
	case certFile == "" || keyFile == "":
		return nil, errors.New("cert-file and -key-file go together: set both or neither")
	default:
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("cert-file %s with its key %s: %v", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
