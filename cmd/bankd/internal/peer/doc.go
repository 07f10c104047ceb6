// Package peer is everything one bankd says to another, on both ends:
//
//   - a follower forwards writes to the leader, coalesced (many callers'
//     commands in one call, by the one batcher of package groupcommit),
//     in a binary format (format.go);
//   - a follower asks the leader for a linearizable read index;
//   - the leader streams the entries ZooKeeper confirmed to each follower
//     (frames of a 4-byte length and an entry's bytes);
//   - a node downloads a peer's newest snapshot.
//
// Transport is the calling end (node.Transport over HTTP), Handler the
// answering end (the /internal/ routes, mounted by package api). Network
// is the in-memory twin of both, for tests of the leader and replica
// logic without sockets. The node's logic stays in package node; this
// package only moves its requests and answers.
package peer
