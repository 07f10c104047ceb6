package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/cmd/internal/wire"
)

func (a *app) clusterCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Look at the cluster"}
	cmd.AddCommand(&cobra.Command{
		Use: "status", Short: "Leader, members and their progress, log head and trim point", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var cl wire.Cluster
			if _, err := a.read("/v1/cluster", &cl); err != nil {
				return err
			}
			if done, err := a.showJSON(cl); done {
				return err
			}
			leader := "none"
			if cl.Leader != nil {
				leader = fmt.Sprintf("%s (epoch %d, %s)", cl.Leader.ID, cl.Leader.Epoch, cl.Leader.Addr)
			}
			fmt.Fprintf(a.stdout, "leader: %s\nlog: head %d, trimmed below %d\n\n", leader, cl.LogHead, cl.TrimmedBelow)
			var rows [][]string
			for _, m := range cl.Members {
				rows = append(rows, []string{m.ID, m.Role, m.Addr, fmt.Sprint(m.Applied), fmt.Sprint(m.Snapshot)})
			}
			table(a.stdout, []string{"MEMBER", "ROLE", "ADDRESS", "APPLIED", "SNAPSHOT"}, rows)
			return nil
		},
	})
	return cmd
}
