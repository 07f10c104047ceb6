// Package zkcoord is everything zkbank needs from ZooKeeper: the session,
// leader election with an epoch fence, membership, and the operations log
// (fenced pipelined appends, an in-order tailer, trimming). It knows nothing
// about accounts: log entries are envelopes (package engine/entry) whose
// place in the chain it checks and whose bodies it never reads.
//
// Layout under the root (default /zkbank):
//
//	epoch                     leader record: epoch, leader id and address
//	election/n_<seq>          ephemeral-sequential candidates
//	members/<node-id>         ephemeral member records with progress
//	registry/<node-id>        the expected members, live or not, and the body version each reads
//	version                   the log's body version and the index it began at
//	restored                  where a restore left the log (Session.Restore), if one ran
//	operations/seg-<k>/op-<i> log entry i, k = (i-1)/SegmentSize
//
// Log znodes are named by their index rather than by ZooKeeper's sequential
// suffix; see docs/zookeeper.md for why. The index inside the entry remains
// the source of truth and is checked against the name on every read.
package zkcoord
