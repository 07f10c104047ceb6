package cli

import (
	"context"
	"fmt"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/cmd/bankctl/internal/bench"
)

func (a *app) benchCommand() *cobra.Command {
	cfg := bench.Config{}
	cmd := &cobra.Command{
		Use:     "bench [--quick] [--only PHASE,...] [--step 5s] [-o json]",
		Example: "  bankctl bench\n  bankctl bench --only baseline,single -o json\n  bankctl bench --quick --step 3s",
		Short:   "Measure a fresh local cluster: baseline, writes, batches, reads, failover, catch-up, memory",
		Long: `Start a fresh local cluster (3 ZooKeeper + 3 bankd, like dev up, in a
temporary directory) and measure it: ZooKeeper's own unbatched create rate
as the baseline; single-command transfers at 1, 16, 64 and 256 clients
spread over every node, and at half the best rate; batches of 100 and
1000; local and linearizable reads per node; failover after kill -9 of the
leader; catch-up of a node that missed a million commands; resident
memory with a million accounts (skipped with --quick). Takes a few
minutes; prints each figure as it comes. --only runs some phases:
baseline, single, batch, reads, failover, catchup.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			asJSON, err := a.jsonOutput()
			if err != nil {
				return err
			}
			if err := bench.CheckPhases(cfg.Only); err != nil {
				return usageError{err}
			}
			if cfg.Bankd == "" {
				cfg.Bankd = findBankd()
			}
			cfg.Progress = a.stderr
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			started := time.Now()
			results, err := bench.Run(ctx, cfg)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, results)
			}
			fmt.Fprintf(a.stdout, "\nzkbank bench, %s, took %v\n\n%s", started.UTC().Format(time.RFC3339), time.Since(started).Round(time.Second), bench.Table(results))
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&cfg.Quick, "quick", false, "skip the million-command catch-up and memory phase")
	f.BoolVar(&cfg.Insecure, "insecure", false, "run the bench cluster without TLS (plain HTTP), to measure what TLS costs")
	f.StringSliceVar(&cfg.Only, "only", nil, "run only these phases: "+strings.Join(bench.Phases, ","))
	f.StringSliceVar(&cfg.Args, "bankd-args", nil, "extra bankd flags for the bench cluster, comma-separated (e.g. --inflight=4)")
	f.DurationVar(&cfg.Step, "step", 5*time.Second, "how long each throughput step runs")
	f.IntVar(&cfg.ZKHeapMB, "zk-heap-mb", 512, "heap of each ZooKeeper JVM of the bench cluster (at least 512)")
	f.IntVar(&cfg.ZKPort, "zk-port", 12181, "first ZooKeeper client port of the bench cluster")
	f.IntVar(&cfg.APIPort, "api-port", 18081, "first bankd port of the bench cluster")
	f.StringVar(&cfg.Bankd, "bankd", "", "bankd binary (default: next to bankctl, else on PATH)")
	return cmd
}
