// Command kmig-rehearse runs the full migration rehearsal (`make demo`'s,
// with fewer topics: seeded topics selected by pattern and mapped by the
// reconciler through the emulated Lambda API, the cutover through
// statemachine/cutover.asl.json under aws-local-stepfunctions while
// numbered-message apps produce and consume) on real Apache Kafka brokers,
// once per source profile, and prints one RESULT line per profile
// (`make rehearse-real`, realkafka/README.md):
//
//	go run ./realkafka/cmd/kmig-rehearse -profiles deny-by-default,open,no-authorizer
//
// It starts the brokers and profile sources it needs with
// realkafka/brokers.sh and leaves them running, as the tests do.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/realkafka"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/realkafka/rehearse"
)

func main() {
	var (
		profiles = flag.String("profiles", "", "source profiles, comma-separated: deny-by-default, open, no-authorizer (default all)")
		input    = flag.String("input", "", `JSON object of cutover input fields set over each profile's (null removes one), e.g. '{"drainTimeoutSeconds":30}'`)
		logDir   = flag.String("logdir", "", "directory for each profile's transcript, <profile>.txt (default: a new temp dir)")
		verbose  = flag.Bool("v", false, "also print each profile's transcript")
	)
	flag.Parse()
	o := rehearse.Options{LogDir: *logDir, Verbose: *verbose, Out: os.Stdout}
	var err error
	if o.Profiles, err = realkafka.ParseProfiles(*profiles); err != nil {
		fail(err)
	}
	if *input != "" {
		if err := json.Unmarshal([]byte(*input), &o.Input); err != nil {
			fail(fmt.Errorf("-input: %w", err))
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	failed, err := rehearse.Run(ctx, o)
	if err != nil {
		fail(err)
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "kmig-rehearse: %d of %d profiles failed\n", failed, len(o.Profiles))
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kmig-rehearse:", err)
	os.Exit(2)
}
