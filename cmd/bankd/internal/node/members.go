package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/zkcoord"
)

// Errors of RemoveMember.
var (
	ErrNoMember   = errors.New("node: no such member")
	ErrMemberLive = errors.New("node: the member is live")
	// ErrRevoked: this node's own certificate is revoked, so the cluster
	// has removed it; it stops rather than serve with it.
	ErrRevoked = errors.New("node: this node's certificate is revoked")
)

// RecordCertificate writes this node's registry record: its address, the
// body version it reads, and the serial of the certificate it presents
// now, added to those it ran with before (SIGHUP calls it again).
func (n *Node) RecordCertificate() error {
	recs, err := n.sess.Registry()
	if err != nil {
		return err
	}
	rec := zkcoord.RegistryRecord{ID: n.cfg.ID}
	if i := slices.IndexFunc(recs, func(r zkcoord.RegistryRecord) bool { return r.ID == n.cfg.ID }); i >= 0 {
		rec = recs[i]
	}
	rec.Addr, rec.Reads, rec.Keys = n.cfg.Addr, n.cfg.BodyVersionMax, nil
	if n.cfg.Seal != nil {
		rec.Keys = n.cfg.Seal.Trust.Keys.IDs()
	}
	return n.sess.Register(rec.WithSerial(n.serial()))
}

func (n *Node) serial() string {
	if n.cfg.Serial == nil {
		return ""
	}
	return n.cfg.Serial()
}

// checkOwnCertificate stops a node whose certificate the log has revoked:
// its peers refuse it already, and it must not go on serving clients.
func (n *Node) checkOwnCertificate() error {
	s := n.serial()
	if s == "" {
		return nil
	}
	n.mu.RLock()
	index, revoked := n.eng.Revoked(s)
	n.mu.RUnlock()
	if revoked {
		return fmt.Errorf("%w: certificate %s was revoked at index %d (was this node removed?); give it a new node certificate to serve again", ErrRevoked, s, index)
	}
	return nil
}

// Removal is what RemoveMember did.
type Removal struct {
	ID      string
	Revoked []string // the serials of the certificates it ran with
	Index   uint64   // the log index of their revocation; 0 when it had none
}

// RemoveMember removes a stopped member for good: the certificates it ran
// with are revoked through the log (every node refuses them from that
// index on), then its registry record is deleted, so the cluster no longer
// waits for it (a body version switch). A live member is refused: stop it
// first. Repeating a removal that failed half way is safe: the revocations
// carry fixed idempotency keys. by is the principal who asked.
func (n *Node) RemoveMember(ctx context.Context, id, by string) (Removal, error) {
	recs, err := n.sess.Registry()
	if err != nil {
		return Removal{}, err
	}
	i := slices.IndexFunc(recs, func(r zkcoord.RegistryRecord) bool { return r.ID == id })
	if i < 0 {
		return Removal{}, fmt.Errorf("%w %q in the registry (removed already?)", ErrNoMember, id)
	}
	live, err := n.sess.Members()
	if err != nil {
		return Removal{}, err
	}
	if slices.ContainsFunc(live, func(m zkcoord.MemberRecord) bool { return m.ID == id }) {
		return Removal{}, fmt.Errorf("%w: stop %s first; a running node is not removed", ErrMemberLive, id)
	}
	out := Removal{ID: id, Revoked: recs[i].Serials}
	if len(out.Revoked) > 0 {
		cmds := make([]engine.Command, len(out.Revoked))
		for j, s := range out.Revoked {
			cmds[j] = engine.Command{Op: engine.OpRevokeCertificate, Serial: s, Key: removalKey(id, s), Principal: by}
		}
		index, outcomes, err := n.Write(ctx, cmds)
		if err != nil {
			return Removal{}, fmt.Errorf("node: revoke %s's certificates: %w", id, err)
		}
		for j, o := range outcomes {
			if o.Code != engine.CodeOK {
				return Removal{}, fmt.Errorf("node: revoke %s's certificate %s: %s", id, out.Revoked[j], o.Code)
			}
		}
		out.Index = index
	}
	if err := n.sess.Deregister(id); err != nil && !errors.Is(err, zkcoord.ErrNotRegistered) {
		return Removal{}, err
	}
	return out, nil
}

// leaveRevoked ends a node whose certificate the log revoked: it deletes
// its registry record (its start wrote one again, if it had been removed
// while down), so that the cluster does not wait for it, and returns why
// it stops.
func (n *Node) leaveRevoked(revoked error) error {
	if err := n.sess.Deregister(n.cfg.ID); err != nil && !errors.Is(err, zkcoord.ErrNotRegistered) {
		return errors.Join(revoked, fmt.Errorf("node: and leaving the registry failed: %w", err))
	}
	return revoked
}

// removalKey is the idempotency key of the revocation of a removed
// member's certificate: the same for every try.
func removalKey(id, serial string) string {
	sum := sha256.Sum256([]byte(id + "\x00" + serial))
	return "remove-member-" + hex.EncodeToString(sum[:16])
}
