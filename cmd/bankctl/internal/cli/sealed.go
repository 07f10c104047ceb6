package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/cmd/internal/devcluster"
	"github.com/zkbank/zkbank/seal"
)

// sealedFlags are what opens a sealed journal (its data keys) and
// verifies it (the CA bundle, --cacert, and the cluster's id). The keys
// and the id default to data.keys and cluster.id beside the CA bundle,
// as bankctl certs ca lays them out.
type sealedFlags struct {
	dataKeys, clusterID string
}

func (f *sealedFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.dataKeys, "data-keys", os.Getenv("BANKCTL_DATA_KEYS"), "the cluster's data keys, to read a sealed journal (env BANKCTL_DATA_KEYS; default data.keys beside --cacert)")
	cmd.Flags().StringVar(&f.clusterID, "cluster-id", os.Getenv("BANKCTL_CLUSTER_ID"), "the cluster's id, to verify signatures (env BANKCTL_CLUSTER_ID; default cluster.id beside --cacert)")
}

// trust is what the flags and --cacert give (without --cacert, the dev
// cluster's CA, as for calls to its nodes): nil when nothing names data
// keys (an unsealed journal reads without). With a CA bundle every sealed
// entry's signature is verified.
func (a *app) trust(f *sealedFlags) (*seal.Trust, error) {
	ca := a.tls.CA
	if dir := findDevDir(); ca == "" && dir != "" && fileExists(devcluster.AdminFiles(dir).CA) {
		ca = devcluster.AdminFiles(dir).CA
	}
	beside := func(name string) string {
		if ca == "" {
			return ""
		}
		return filepath.Join(filepath.Dir(ca), name)
	}
	keysFile := f.dataKeys
	if keysFile == "" {
		if p := beside(seal.DataKeysFile); p != "" && fileExists(p) {
			keysFile = p
		}
	}
	if keysFile == "" {
		return nil, nil
	}
	keys, err := seal.ReadKeys(keysFile)
	if err != nil {
		return nil, err
	}
	t := &seal.Trust{Keys: keys}
	if ca == "" {
		return t, nil
	}
	if t.Roots, err = certs.ReadPool(ca); err != nil {
		return nil, err
	}
	id := f.clusterID
	if id == "" {
		b, err := os.ReadFile(beside(seal.ClusterIDFile))
		if err != nil {
			return nil, usageError{fmt.Errorf("verifying signatures needs the cluster's id: --cluster-id, or %s (%w)", beside(seal.ClusterIDFile), errors.Unwrap(err))}
		}
		id = string(b)
	}
	if t.Cluster, err = seal.ParseClusterID(id); err != nil {
		return nil, usageError{err}
	}
	return t, nil
}
