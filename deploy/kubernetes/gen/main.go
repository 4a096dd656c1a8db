// Command gen writes the PrometheusRule of the Kubernetes base from the Prometheus alerting rules (see package
// kubernetes). Run from the repository root:
//
//	go run ./deploy/kubernetes/gen            # or: make kubernetes, go generate ./deploy/kubernetes
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/leadthrough/leadthrough/deploy/kubernetes"
)

func main() {
	alerts := flag.String("alerts", kubernetes.DefaultAlerts, "Prometheus rule file to read")
	out := flag.String("out", kubernetes.DefaultPrometheusRule, "PrometheusRule manifest to write")
	flag.Parse()
	if err := kubernetes.WritePrometheusRule(*alerts, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Println("wrote", *out)
}
