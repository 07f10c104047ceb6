package node

import (
	"testing"
	"time"
)

func TestStampMsFollowsZooKeeperWithinTheSkewAndNeverGoesBack(t *testing.T) {
	zk := time.UnixMilli(1_000_000_000)
	ms := func(d time.Duration) int64 { return zk.Add(d).UnixMilli() }
	for _, c := range []struct {
		name  string
		prev  int64
		local time.Duration // the leader's clock, relative to ZooKeeper's
		want  int64
	}{
		{"in step", 0, 200 * time.Millisecond, ms(200 * time.Millisecond)},
		{"minutes ahead: held at the bound", 0, 5 * time.Minute, ms(maxLeaderSkew)},
		{"minutes behind: raised to the bound", 0, -5 * time.Minute, ms(-maxLeaderSkew)},
		{"after a leader that ran ahead: waits at most the skew", ms(maxLeaderSkew), 0, ms(maxLeaderSkew)},
		{"never before the previous entry", ms(time.Hour), 0, ms(time.Hour)},
	} {
		if got := stampMs(c.prev, zk.Add(c.local), zk); got != c.want {
			t.Errorf("%s: stamp %d, want %d", c.name, got, c.want)
		}
	}
}
