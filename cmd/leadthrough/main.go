// Command leadthrough is the whole pipeline in one binary: an embedded broker for local use, schema migrations, the
// ingest worker, the indicator service, a one-shot indicators report, a simulator and a demo. Each subcommand reads
// like a linear main: parse flags → open what it needs → run → stop in reverse order on SIGINT/SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/leadthrough/leadthrough/store"
)

type subcommand struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var subcommands = map[string]subcommand{
	"broker":     {"run the embedded Kafka-compatible broker (for local use and the demo; not for production)", runBroker},
	"migrate":    {"create or upgrade the ClickHouse schema (idempotent)", runMigrate},
	"ingest":     {"consume CRM events from Kafka into ClickHouse; bad input goes to <topic>.dlq", runIngest},
	"serve":      {"serve the report page at /, and /metrics and /healthz with per-manager indicators refreshed on a schedule", runServe},
	"indicators": {"print the per-manager indicators for one window as a table or JSON", runIndicators},
	"import":     {"load CRM exports (CSV: maven-crm or a mapped generic file) as canonical events, to Kafka or ClickHouse", runImport},
	"simulate":   {"publish a synthetic sales organisation's events to Kafka", runSimulate},
	"demo":       {"embedded broker + migrate + simulate + ingest + serve in one process, against a local ClickHouse", runDemo},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "leadthrough tells, per sales manager, whether they lead through their reps or take deals over.")
	fmt.Fprintln(w, "\nUsage: leadthrough <command> [flags]    (leadthrough <command> -h for the command's flags)\n\nCommands:")
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, subcommands[n].summary)
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run returns the exit code: 0 success, 1 failure, 2 usage error.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sc, ok := subcommands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "leadthrough: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := sc.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "leadthrough %s: %v (see leadthrough %s -h)\n", args[0], err, args[0])
		return 2
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return 0 // stopped by a signal after a clean shutdown
	default:
		fmt.Fprintf(stderr, "leadthrough %s: %s\n", args[0], hint(err))
		return 1
	}
}

// hint appends what to do for errors users commonly hit.
func hint(err error) string {
	msg := err.Error()
	if errors.Is(err, store.ErrUnreachable) {
		msg += "; start it with `make clickhouse-up` or point --clickhouse-addr at your server"
	}
	return msg
}
