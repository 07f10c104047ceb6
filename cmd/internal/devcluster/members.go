package devcluster

import (
	"context"

	"github.com/zkbank/zkbank/zkcoord"
)

// watchMembers logs every bankd that joins or leaves the cluster's
// membership in ZooKeeper, so the supervisor's log tells the story of a
// failure and its repair.
func watchMembers(ctx context.Context, cfg Config) {
	zc, err := ZooKeeper(cfg, zkcoord.DefaultRoot)
	if err != nil {
		cfg.Logger.Warn("not watching membership", "err", err)
		return
	}
	s, err := zkcoord.Connect(ctx, zc)
	if err != nil {
		cfg.Logger.Warn("not watching membership", "err", err)
		return
	}
	defer s.Close()
	prev := map[string]bool{}
	for list := range s.WatchMembers(ctx) {
		now := map[string]bool{}
		for _, m := range list {
			now[m.ID] = true
			if !prev[m.ID] {
				cfg.Logger.Info("member joined", "node", m.ID, "addr", m.Addr)
			}
		}
		for id := range prev {
			if !now[id] {
				cfg.Logger.Warn("member left", "node", id)
			}
		}
		prev = now
	}
}
