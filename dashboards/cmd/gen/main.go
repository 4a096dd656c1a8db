// Command gen writes leadthrough's Grafana dashboards as JSON (see package dashboards). Run from the repository root:
//
//	go run ./dashboards/cmd/gen            # or: make dashboards, go generate ./dashboards
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/leadthrough/leadthrough/dashboards"
)

func main() {
	dir := flag.String("dir", "dashboards", "directory to write the dashboard JSON files into")
	flag.Parse()
	if err := dashboards.WriteAll(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	for _, f := range dashboards.Files {
		fmt.Println("wrote", *dir+"/"+f.Name)
	}
}
