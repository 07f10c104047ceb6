package cli

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/seal"
	"github.com/zkbank/zkbank/zkcoord"
)

const certsLong = `Make and inspect the cluster's certificates (no openssl needed), and
revoke them. Everything lives in one directory (--dir, env
BANKCTL_CERTS_DIR, default ./certs):

  ca.crt                    the CA bundle every node and client trusts
  ca.key                    the CA's private key: keep it offline
  node-<id>.crt, .key       a node's certificate (it says zkbank://node/<id>)
  client-<name>.crt, .key   a client's certificate (principal and role)
  zookeeper-<name>.crt, .key, .pem  a ZooKeeper server's certificate, key
                            and PEM keystore (zoo.cfg ssl.keyStore.location)
  cluster.id                the cluster's id, which every log signature covers
  data.keys                 the data keys that seal the log (0600; every node)
  zookeeper.auth            bankd's ZooKeeper digest credentials (0600)

A node runs with --certs-dir pointing at a directory holding ca.crt,
its own node-<id> files, cluster.id, data.keys and zookeeper.auth; copy
only those to its host. Revocation and CA
rollover: docs/security.md.`

func (a *app) certsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "certs", Short: "Make, list and revoke the cluster's certificates", Long: certsLong}
	dir := envOr("BANKCTL_CERTS_DIR", "certs")
	cmd.PersistentFlags().StringVar(&dir, "dir", dir, "certificate directory (env BANKCTL_CERTS_DIR)")
	cmd.AddCommand(a.certsCA(&dir), a.certsNode(&dir), a.certsClient(&dir), a.certsZooKeeper(&dir), a.certsDataKey(&dir), a.certsRollover(&dir),
		a.certsDropOld(&dir), a.certsList(&dir), a.certsRevoke(&dir), a.certsRevocations())
	return cmd
}

func (a *app) certsCA(dir *string) *cobra.Command {
	name := "zkbank CA"
	cmd := &cobra.Command{
		Use: "ca [--name NAME]", Short: "Create the cluster's CA (ca.crt, ca.key) in a new directory",
		Example: "  bankctl certs ca --dir /etc/zkbank/certs",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ca, err := certs.NewCA(*dir, name)
			if err != nil {
				return err
			}
			if err := seal.InitDir(*dir); err != nil {
				return err
			}
			if err := zkcoord.NewAuthFile(filepath.Join(*dir, zkcoord.AuthFile)); err != nil {
				return err
			}
			return a.said(ca.Cert, filepath.Join(*dir, certs.CAFile), "keep "+filepath.Join(*dir, certs.CAKeyFile)+" offline: whoever has it can make nodes")
		},
	}
	cmd.Flags().StringVar(&name, "name", name, "the CA's common name")
	return cmd
}

func (a *app) certsNode(dir *string) *cobra.Command {
	var id string
	var hosts []string
	cmd := &cobra.Command{
		Use: "node --id ID --host HOST [--host HOST]...", Short: "Issue a node certificate (node-<id>.crt, .key), valid for its hosts and IPs",
		Long: `Issue a node certificate: its id, the zkbank://node/<id> marker no client
certificate carries, server and client usage (nodes call each other), and
every --host (a DNS name or an IP) its peers and clients reach it at.
Issuing again for the same id replaces the files: the way to renew one
(then SIGHUP the node; revoke the old serial once it runs the new).`,
		Example: "  bankctl certs node --id n1 --host 10.0.0.11 --host bank-1.internal",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if len(hosts) == 0 {
				return usageError{errors.New("--host is required: the names and IPs the node is reached at (e.g. --host 127.0.0.1)")}
			}
			ca, err := certs.LoadCA(*dir)
			if err != nil {
				return err
			}
			c, err := ca.IssueNode(*dir, id, hosts)
			if err != nil {
				return usageError{err}
			}
			crt, _ := certs.NodeFiles(*dir, id)
			return a.said(c, crt, "")
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "the node's id, as bankd --id gives it (required)")
	cmd.Flags().StringArrayVar(&hosts, "host", nil, "a DNS name or IP the node is reached at (repeat)")
	cmd.MarkFlagRequired("id")
	return cmd
}

func (a *app) certsZooKeeper(dir *string) *cobra.Command {
	var name string
	var hosts []string
	cmd := &cobra.Command{
		Use:   "zookeeper --name NAME --host IP [--host HOST]...",
		Short: "Issue a ZooKeeper server's certificate and PEM keystore (zookeeper-<name>.crt, .key, .pem)",
		Long: `Issue a ZooKeeper server's certificate, for its secureClientPort and
sslQuorum: server and client usage, the zkbank://zookeeper/<name> marker
(it is no node certificate: it cannot join the bank or sign its log), and
every --host. bankd dials ZooKeeper by IP, so list the server's IPs. The
.pem file is the keystore zoo.cfg names (ssl.keyStore.type=PEM); the CA
bundle ca.crt is its trust store (docs/operations.md).`,
		Example: "  bankctl certs zookeeper --name zk1 --host 10.0.0.21",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if len(hosts) == 0 {
				return usageError{errors.New("--host is required: the IPs (and names) the server is reached at")}
			}
			ca, err := certs.LoadCA(*dir)
			if err != nil {
				return err
			}
			c, err := ca.IssueZooKeeper(*dir, name, hosts)
			if err != nil {
				return usageError{err}
			}
			crt, _, _ := certs.ZooKeeperFiles(*dir, name)
			return a.said(c, crt, "")
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the server's name, e.g. zk1 (required)")
	cmd.Flags().StringArrayVar(&hosts, "host", nil, "an IP or DNS name the server is reached at (repeat)")
	cmd.MarkFlagRequired("name")
	return cmd
}

func (a *app) certsDataKey(dir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "data-key",
		Short: "Add a new data key to data.keys, for a key rotation",
		Long: `Add a data key with the next id to data.keys (in a directory from before
sealed logs: make data.keys with key 1, and cluster.id). Copy the file to every node
and restart each; once every expected member holds the new key, the
leader seals new entries with it (older entries keep theirs, so never
drop an old key while a journal or snapshot may need it). See
docs/security.md, key rotation.`,
		Example: "  bankctl certs data-key --dir /etc/zkbank/certs",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			keys := filepath.Join(*dir, seal.DataKeysFile)
			if !fileExists(keys) { // a directory from before sealed logs: its first key, and a cluster id
				if err := seal.InitDir(*dir); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "made %s (key 1) and, if it was missing, %s\n", keys, filepath.Join(*dir, seal.ClusterIDFile))
				return nil
			}
			id, err := seal.AddKey(*dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "added data key %d to %s\n", id, keys)
			return nil
		},
	}
}

func (a *app) certsClient(dir *string) *cobra.Command {
	var name, role string
	cmd := &cobra.Command{
		Use: "client --name NAME --role ROLE", Short: "Issue a client certificate (client-<name>.crt, .key) for a principal and its role",
		Long: "Issue a client certificate for a principal with one role: " + strings.Join(certs.Roles, ", ") + `.
Today any client certificate of the cluster's CA may call /v1/, and only
an admin (or an auditor, reading) may call /v1/admin/.`,
		Example: "  bankctl certs client --name alice --role admin\n  bankctl --cert certs/client-alice.crt --key-file certs/client-alice.key --cacert certs/ca.crt cluster status",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ca, err := certs.LoadCA(*dir)
			if err != nil {
				return err
			}
			c, err := ca.IssueClient(*dir, name, role)
			if err != nil {
				return usageError{err}
			}
			crt, _ := certs.ClientFiles(*dir, name)
			return a.said(c, crt, "")
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the principal (required)")
	cmd.Flags().StringVar(&role, "role", "", "one of "+strings.Join(certs.Roles, ", ")+" (required)")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("role")
	return cmd
}

func (a *app) certsRollover(dir *string) *cobra.Command {
	name := fmt.Sprintf("zkbank CA %s", time.Now().UTC().Format("2006-01-02"))
	cmd := &cobra.Command{
		Use: "rollover [--name NAME]", Short: "Start a CA rollover: a new CA key, and ca.crt the bundle of the new and the old CA",
		Long: `Start a CA rollover. The new CA's key replaces ca.key (the old one is kept
as ca.key.old) and ca.crt becomes the bundle of both, so that every
certificate of either CA is trusted. Then: copy ca.crt to every node and
client and SIGHUP the nodes; reissue every node and client certificate
(certs node, certs client) and SIGHUP again; revoke the old serials; and
end with certs drop-old. No request fails on the way (docs/security.md).`,
		Example: "  bankctl certs rollover --dir /etc/zkbank/certs",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ca, err := certs.Rollover(*dir, name)
			if err != nil {
				return err
			}
			return a.said(ca.Cert, filepath.Join(*dir, certs.CAFile), "now trusted: the new CA and the old; reissue the certificates, then certs drop-old")
		},
	}
	cmd.Flags().StringVar(&name, "name", name, "the new CA's common name")
	return cmd
}

func (a *app) certsDropOld(dir *string) *cobra.Command {
	return &cobra.Command{
		Use: "drop-old", Short: "End a CA rollover: ca.crt keeps only the new CA",
		Long: `End a CA rollover: ca.crt keeps only the CA whose key is ca.key, and
ca.key.old is deleted. Do it once every node and client runs a
certificate of the new CA; then copy ca.crt out and SIGHUP the nodes, and
certificates of the old CA fail from their next handshake.`,
		Example: "  bankctl certs drop-old --dir /etc/zkbank/certs",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := certs.DropOld(*dir); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s now holds only the current CA\n", filepath.Join(*dir, certs.CAFile))
			return nil
		},
	}
}

// certRow is one certificate as certs list shows it.
type certRow struct {
	File     string    `json:"file"`
	What     string    `json:"what"`
	Serial   string    `json:"serial"`
	Issuer   string    `json:"issuer"`
	NotAfter time.Time `json:"not_after"`
	Trusted  bool      `json:"trusted"` // chains to the directory's ca.crt
	Problem  string    `json:"problem,omitempty"`
}

func (a *app) certsList(dir *string) *cobra.Command {
	return &cobra.Command{
		Use: "list [FILE.crt...]", Short: "List the certificates of the directory (or the files given): what each is, serial, expiry, trusted",
		Example: "  bankctl certs list\n  bankctl certs list --dir /etc/zkbank/certs -o json",
		RunE: func(_ *cobra.Command, files []string) error {
			if len(files) == 0 {
				found, err := filepath.Glob(filepath.Join(*dir, "*.crt"))
				if err != nil {
					return err
				}
				files = found
			}
			if len(files) == 0 {
				return fmt.Errorf("no certificates in %s: make some with bankctl certs ca", *dir)
			}
			sort.Strings(files)
			rows, err := listCerts(files, filepath.Join(*dir, certs.CAFile))
			if err != nil {
				return err
			}
			if done, err := a.showJSON(rows); done {
				return err
			}
			out := make([][]string, len(rows))
			for i, r := range rows {
				trusted := "yes"
				if !r.Trusted {
					trusted = "NO: " + r.Problem
				}
				out[i] = []string{filepath.Base(r.File), r.What, r.Serial, r.Issuer, r.NotAfter.Format(time.DateOnly), trusted}
			}
			table(a.stdout, []string{"FILE", "WHAT", "SERIAL", "ISSUER", "EXPIRES", "TRUSTED"}, out)
			return nil
		},
	}
}

// listCerts reads every certificate of files, and says whether each
// chains to the bundle (a missing bundle trusts nothing).
func listCerts(files []string, bundle string) ([]certRow, error) {
	pool, poolErr := certs.ReadPool(bundle)
	var rows []certRow
	for _, f := range files {
		list, err := certs.ReadCerts(f)
		if err != nil {
			return nil, err
		}
		for _, c := range list {
			r := certRow{File: f, What: certs.Describe(c), Serial: certs.Serial(c), Issuer: c.Issuer.CommonName, NotAfter: c.NotAfter}
			switch {
			case poolErr != nil:
				r.Problem = "no CA bundle: " + poolErr.Error()
			default:
				_, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
				r.Trusted = err == nil
				if err != nil {
					r.Problem = err.Error()
				}
			}
			rows = append(rows, r)
		}
	}
	return rows, nil
}

func (a *app) certsRevoke(dir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke SERIAL|FILE.crt",
		Short: "Revoke a certificate through the log: every node refuses it from that index on (admin)",
		Long: `Revoke a certificate by its serial (hex, as certs list shows it) or by
its file. The revocation is a log command: every node refuses the
certificate from the index it is applied at, for client calls and calls
between nodes alike, and keeps refusing it after restarts and snapshot
installs. It cannot be undone; issue a new certificate instead. A node
whose own certificate is revoked stops. To remove a node for good, use
bankctl cluster remove-node, which revokes every certificate it ran with.`,
		Example: "  bankctl certs revoke 3f2a9c0d11e4b5a7\n  bankctl certs revoke certs/client-bob.crt",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			serial, err := serialOf(args[0])
			if err != nil {
				return err
			}
			var out wire.Revocation
			resp, err := a.write("POST", "/v1/admin/revocations", wire.Revocation{Serial: serial}, "", &out)
			if err != nil {
				return err
			}
			if done, err := a.showJSON(out); done {
				return err
			}
			fmt.Fprintf(a.stdout, "certificate %s revoked at index %s: every node refuses it from there on\n", serial, resp.Index)
			return nil
		},
	}
}

// serialOf is a serial given as such, or the serial of the one
// certificate in a file.
func serialOf(arg string) (string, error) {
	if _, err := os.Stat(arg); err != nil {
		return strings.ToLower(arg), nil // the engine checks its form
	}
	list, err := certs.ReadCerts(arg)
	if err != nil {
		return "", err
	}
	if len(list) != 1 {
		return "", usageError{fmt.Errorf("%s holds %d certificates; revoke them by serial", arg, len(list))}
	}
	return certs.Serial(list[0]), nil
}

func (a *app) certsRevocations() *cobra.Command {
	return &cobra.Command{
		Use: "revocations", Short: "List the revoked certificates and the log index of each revocation (admin, auditor)",
		Example: "  bankctl certs revocations -o json",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var out wire.Revocations
			if _, err := a.read("/v1/admin/revocations", &out); err != nil {
				return err
			}
			if done, err := a.showJSON(out); done {
				return err
			}
			rows := make([][]string, len(out.Revocations))
			for i, r := range out.Revocations {
				rows[i] = []string{r.Serial, fmt.Sprint(r.Index)}
			}
			table(a.stdout, []string{"SERIAL", "REVOKED AT"}, rows)
			return nil
		},
	}
}

// said reports a certificate just written.
func (a *app) said(c *x509.Certificate, file, note string) error {
	row := certRow{File: file, What: certs.Describe(c), Serial: certs.Serial(c), Issuer: c.Issuer.CommonName, NotAfter: c.NotAfter, Trusted: true}
	if done, err := a.showJSON(row); done {
		return err
	}
	fmt.Fprintf(a.stdout, "wrote %s: %s, serial %s, expires %s\n", file, row.What, row.Serial, row.NotAfter.Format(time.DateOnly))
	if note != "" {
		fmt.Fprintln(a.stdout, note)
	}
	return nil
}
