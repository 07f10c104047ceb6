package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/tlsconf"
	"github.com/zkbank/zkbank/seal"
)

// sealConfig is how this node seals and verifies the log: the data keys,
// the cluster id, the CA bundle of the node certificates, and the node's
// own key. nil with --insecure (the log stays at body version 2).
func (o *options) sealConfig(mat *tlsconf.Material) (*node.SealConfig, error) {
	if mat == nil {
		return nil, nil
	}
	keysFile := o.dataKeys
	if keysFile == "" && o.certsDir != "" {
		keysFile = filepath.Join(o.certsDir, seal.DataKeysFile)
	}
	if keysFile == "" {
		return nil, errors.New("bankd seals the log: give --data-keys (or data.keys in --certs-dir; bankctl certs ca makes one)")
	}
	keys, err := seal.ReadKeys(keysFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w (bankctl certs data-key --dir DIR makes data.keys and cluster.id; copy both to every node)", err)
	}
	if err != nil {
		return nil, err
	}
	cluster, err := o.cluster()
	if err != nil {
		return nil, err
	}
	files, err := o.tlsFiles()
	if err != nil {
		return nil, err
	}
	roots, err := certs.ReadPool(files.CA)
	if err != nil {
		return nil, err
	}
	return &node.SealConfig{Trust: &seal.Trust{Roots: roots, Cluster: cluster, Keys: keys}, Identity: mat.Identity}, nil
}

// cluster is --cluster-id, else the id in --certs-dir's cluster.id.
func (o *options) cluster() ([]byte, error) {
	id := o.clusterID
	if id == "" && o.certsDir != "" {
		b, err := os.ReadFile(filepath.Join(o.certsDir, seal.ClusterIDFile))
		if err != nil {
			return nil, fmt.Errorf("the cluster id: %w (give --cluster-id, or make it with bankctl certs ca)", err)
		}
		id = string(b)
	}
	if id == "" {
		return nil, errors.New("bankd seals the log: give --cluster-id (or cluster.id in --certs-dir)")
	}
	return seal.ParseClusterID(id)
}
