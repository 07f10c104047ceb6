package node

import (
	"context"
	"time"
)

// tickInterval is how often a leader looks for a hold that has fallen due.
const tickInterval = 100 * time.Millisecond

// keepTime appends an entry with no commands when an open hold is due by
// the time the next entry would be stamped and no entry is in flight, so
// that holds expire on an idle bank too (as TigerBeetle's pulse): the
// engine releases them before the commands of the first entry whose time
// reaches their expiry (docs/format.md, "Holds"). It runs until the term
// ends.
func (n *Node) keepTime(ls *leaderState) {
	tick := time.NewTicker(tickInterval)
	defer tick.Stop()
	for {
		select {
		case <-ls.term.Done():
			return
		case <-tick.C:
		}
		if !n.holdDue(ls) {
			continue
		}
		ctx, cancel := context.WithTimeout(ls.term.Context(), n.cfg.PeerTimeout)
		_, _, err := n.Submit(ctx, nil)
		cancel()
		if err != nil && ls.term.Err() == nil {
			n.cfg.Logger.Warn("appending an entry for a hold that fell due failed; trying again", "err", err)
		}
	}
}

// holdDue reports whether an open hold expires by the stamp the next
// entry would get, with everything appended applied (an entry in flight
// moves the log's time on by itself).
func (n *Node) holdDue(ls *leaderState) bool {
	n.mu.RLock()
	due, open := n.eng.NextExpiryMs()
	logMs, applied := n.eng.TimeMs(), n.eng.Index()
	n.mu.RUnlock()
	if !open || applied < n.appendHead.Load() {
		return false
	}
	return stampMs(logMs, n.cfg.Clock(), ls.term.ZooKeeperNow()) >= due
}
