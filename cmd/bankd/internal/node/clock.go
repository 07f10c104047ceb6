package node

import (
	"time"

	"github.com/zkbank/zkbank/zkcoord"
)

// maxLeaderSkew is how far a leader's stamps may stray from ZooKeeper's
// clock (docs/format.md, "Entry time").
const maxLeaderSkew = time.Second

// stampMs is the time a leader writes into its next entry: its own clock
// held within maxLeaderSkew of ZooKeeper's (zk), and never before prevMs,
// the entry it follows (the previous leader's last, at a term's start).
// A leader whose clock runs minutes ahead therefore moves the log's time
// at most maxLeaderSkew past ZooKeeper's, so the leaders after it are not
// held back for minutes; one minutes behind still moves time forward.
func stampMs(prevMs int64, local, zk time.Time) int64 {
	lo, hi := zk.Add(-maxLeaderSkew), zk.Add(maxLeaderSkew)
	t := local
	if t.Before(lo) {
		t = lo
	} else if t.After(hi) {
		t = hi
	}
	return max(prevMs, t.UnixMilli())
}

// warnClockSkew says, once a term, when this node's clock is off
// ZooKeeper's by more than maxLeaderSkew: its entries are stamped by
// ZooKeeper's clock instead, and the operator should fix NTP.
func (n *Node) warnClockSkew(term *zkcoord.Term) {
	if off := n.cfg.Clock().Sub(term.ZooKeeperNow()); off > maxLeaderSkew || off < -maxLeaderSkew {
		n.cfg.Logger.Warn("this node's clock is off ZooKeeper's; entries are stamped within a second of ZooKeeper's time", "epoch", term.Epoch, "offset", off.Round(time.Millisecond))
	}
}
