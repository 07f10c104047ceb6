package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/zkcoord"
)

// The log's body version moves forward once, at one index, when every
// expected member can read the new one (like etcd's cluster version):
// each node writes into the registry the newest version its binary reads;
// the leader publishes the newest version every registered member reads,
// then writes its entries in it, and publishes the index of the first
// once it is applied. A node whose binary reads less than the published
// version refuses to start; one already running stops at the first entry
// it cannot read, saying so.

// ErrBinaryTooOld: the log holds a body version this binary cannot read.
var ErrBinaryTooOld = errors.New("node: this bankd is too old for the log")

// versionCheckInterval is how often the leader looks at the registry.
const versionCheckInterval = time.Second

// register refuses to start a binary too old for the log, then records
// this node in the registry of expected members with what it reads.
func (n *Node) register() error {
	cv, err := n.sess.ClusterVersion()
	if err != nil {
		return err
	}
	if v := max(cv.BodyVersion, n.eng.BodyVersion()); v > n.cfg.BodyVersionMax {
		return fmt.Errorf("%w: the log is at body version %d since index %d, and this bankd reads versions up to %d: upgrade it",
			ErrBinaryTooOld, v, max(cv.Since, n.eng.VersionSince()), n.cfg.BodyVersionMax)
	}
	if err := n.checkOwnCertificate(); err != nil {
		return n.leaveRevoked(err)
	}
	return n.RecordCertificate()
}

// checkBody refuses an entry whose body version this binary does not read
// (a test may run a node as an older binary: Config.BodyVersionMax).
func (n *Node) checkBody(version uint32, index uint64) error {
	if version > n.cfg.BodyVersionMax {
		return fmt.Errorf("%w: entry %d has body version %d, and this bankd reads versions up to %d: upgrade it",
			ErrBinaryTooOld, index, version, n.cfg.BodyVersionMax)
	}
	return nil
}

// bodyVersionTarget is the newest body version every expected member
// reads, this one included.
func (n *Node) bodyVersionTarget() (uint32, error) {
	recs, err := n.sess.Registry()
	if err != nil {
		return 0, err
	}
	target := n.cfg.BodyVersionMax
	for _, r := range recs {
		target = min(target, r.Reads)
	}
	return target, nil
}

// raiseBodyVersion moves the term's body version up to what every
// expected member reads: the next entry is written in it.
func (n *Node) raiseBodyVersion(ls *leaderState) error {
	target, err := n.bodyVersionTarget()
	if err != nil {
		return err
	}
	cur := ls.bodyVersion.Load()
	if target <= cur {
		return nil
	}
	if err := n.sess.PublishClusterVersion(zkcoord.ClusterVersion{BodyVersion: target}); err != nil {
		return err // not switched: an old binary must be able to tell before it starts
	}
	ls.bodyVersion.Store(target)
	n.cfg.Logger.Info("every expected member reads a newer body version: switching the log to it", "from", cur, "to", target)
	return nil
}

// chooseSealKey sets the data key the term seals with: the newest that
// every expected member holds, so that none stalls on an entry it cannot
// open (and no new leader lacks the key to an entry it must keep).
func (n *Node) chooseSealKey(ls *leaderState) {
	if n.cfg.Seal == nil {
		return
	}
	keys := n.cfg.Seal.Trust.Keys
	if ls.sealKey.Load() == 0 {
		ls.sealKey.Store(keys.Common(nil))
	}
	recs, err := n.sess.Registry()
	if err != nil {
		n.cfg.Logger.Warn("reading the registry failed; keeping the data key for now", "key", ls.sealKey.Load(), "err", err)
		return
	}
	var held [][]uint32
	for _, r := range recs {
		held = append(held, r.Keys)
	}
	if id := keys.Common(held); id != ls.sealKey.Swap(id) {
		n.cfg.Logger.Info("sealing the log with a data key every expected member holds", "key", id)
	}
}

// keepVersion raises the term's body version as the registry allows and
// publishes the index of the log's version once its first entry is
// applied, until the term ends.
func (n *Node) keepVersion(ls *leaderState) {
	tick := time.NewTicker(versionCheckInterval)
	defer tick.Stop()
	var published zkcoord.ClusterVersion
	for {
		if err := n.raiseBodyVersion(ls); err != nil {
			n.cfg.Logger.Warn("reading the registry failed; trying again later", "err", err)
		}
		n.chooseSealKey(ls)
		n.mu.RLock()
		cv := zkcoord.ClusterVersion{BodyVersion: n.eng.BodyVersion(), Since: n.eng.VersionSince()}
		n.mu.RUnlock()
		if cv.BodyVersion > engine.BodyV1 && cv != published {
			if err := n.sess.PublishClusterVersion(cv); err != nil {
				n.cfg.Logger.Warn("publishing the cluster version failed; trying again later", "err", err)
			} else {
				published = cv
			}
		}
		select {
		case <-tick.C:
		case <-ls.term.Done():
			return
		}
	}
}
