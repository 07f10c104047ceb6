package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/cmd/internal/tlsconf"
	"github.com/zkbank/zkbank/zkcoord/zkserver"
)

func (a *app) zookeeperCommand() *cobra.Command {
	zk := &cobra.Command{Use: "zookeeper", Short: "Ask ZooKeeper servers directly (an operator's checks, no bankd needed)"}
	zk.AddCommand(&cobra.Command{
		Use:   "mode ADDR...",
		Short: "Each server's role (leader, follower, standalone) over TLS; exit 0 when every one serves, 6 when one does not",
		Long: `Asks each ZooKeeper server for its role with its srvr command, over TLS
with the certificate of --cert and --key-file (ZooKeeper requires one of
the cluster CA: a node's or a ZooKeeper server's own) and --cacert. A
server that does not answer, or answers that it is not serving (no
quorum), shows "not serving". A restart of one server in a rolling
change waits on this before the next (docs/deployment.md).`,
		Example: "  bankctl zookeeper mode 10.0.0.11:2281 --cacert ca.crt --cert node-n1.crt --key-file node-n1.key",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, addrs []string) error {
			if a.tls.CA == "" || a.tls.Cert == "" || a.tls.Key == "" {
				return usageError{errors.New("zookeeper mode needs --cacert, --cert and --key-file: ZooKeeper takes only clients with a certificate of the cluster CA")}
			}
			mat, err := tlsconf.Load(a.tls)
			if err != nil {
				return usageError{err}
			}
			type server struct {
				Addr string `json:"addr"`
				Mode string `json:"mode"`
			}
			var out []server
			all := true
			for _, addr := range addrs {
				mode := zkserver.Mode(addr, mat.Client(nil))
				if !zkserver.Serving(mode) {
					all, mode = false, "not serving"
				}
				out = append(out, server{addr, mode})
			}
			if done, err := a.showJSON(out); !done {
				rows := make([][]string, len(out))
				for i, s := range out {
					rows[i] = []string{s.Addr, s.Mode}
				}
				table(a.stdout, []string{"ZOOKEEPER SERVER", "MODE"}, rows)
			} else if err != nil {
				return err
			}
			if !all {
				return exitError(ExitDegraded)
			}
			return nil
		},
	})
	return zk
}
