package peer

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
)

// Network is the in-memory twin of Transport and Handler: nodes of one
// process reach each other through direct calls, with the same coalescing
// of forwarded writes and the same decoding of pushed entries, but no
// sockets. Tests use it to drive the leader and replica logic, and can
// cut a node off (Cut) to see what a lost peer does.
type Network struct {
	mu    sync.Mutex
	nodes map[string]Service
	cut   map[string]bool
	fwd   *coalescer
}

// NewNetwork returns an empty network.
func NewNetwork() *Network {
	n := &Network{nodes: map[string]Service{}, cut: map[string]bool{}}
	n.fwd = newCoalescer(n.submit, 11*time.Second, nil)
	return n
}

// Add makes svc reachable at addr (a node's advertised address).
func (n *Network) Add(addr string, svc Service) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nodes[addr] = svc
}

// Cut makes addr unreachable (calls fail with node.ErrUnreachable) until
// Heal.
func (n *Network) Cut(addr string) { n.setCut(addr, true) }

// Heal makes addr reachable again.
func (n *Network) Heal(addr string) { n.setCut(addr, false) }

func (n *Network) setCut(addr string, v bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[addr] = v
}

func (n *Network) lookup(addr string) (Service, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	svc, ok := n.nodes[addr]
	if !ok || n.cut[addr] {
		return nil, fmt.Errorf("%w: %s", node.ErrUnreachable, addr)
	}
	return svc, nil
}

var _ node.Transport = (*Network)(nil)

// Forward submits cmds on the node at addr, coalesced like Transport's.
func (n *Network) Forward(ctx context.Context, addr string, bv uint32, cmds []engine.Command) (uint64, []node.Outcome, error) {
	return n.fwd.forward(ctx, addr, bv, cmds)
}

// submit goes through the body encoding as Transport's does, so that a
// command a body version cannot carry fails here too.
func (n *Network) submit(ctx context.Context, addr string, bv uint32, cmds []engine.Command) (uint64, []node.Outcome, error) {
	svc, err := n.lookup(addr)
	if err != nil {
		return 0, nil, err
	}
	body, err := engine.EncodeBody(bv, cmds)
	if err != nil {
		return 0, nil, err
	}
	if cmds, err = engine.DecodeBody(bv, body); err != nil {
		return 0, nil, err
	}
	return svc.Submit(ctx, cmds)
}

// ReadIndex asks the node at addr for a read index.
func (n *Network) ReadIndex(ctx context.Context, addr string) (uint64, error) {
	svc, err := n.lookup(addr)
	if err != nil {
		return 0, err
	}
	return svc.ReadIndex(ctx)
}

// Entries follows the entry stream of the node at addr, decoding each
// entry from its bytes as a follower across the network would.
func (n *Network) Entries(ctx context.Context, addr string, deliver func(*entry.Envelope)) error {
	svc, err := n.lookup(addr)
	if err != nil {
		return err
	}
	stream, err := svc.Entries()
	if err != nil {
		return err
	}
	defer stream.Close()
	for {
		batch, err := stream.Next(ctx)
		if err != nil {
			return err
		}
		if _, err := n.lookup(addr); err != nil {
			return err // cut meanwhile
		}
		for _, raw := range batch {
			e, err := entry.Decode(raw)
			if err != nil {
				return err
			}
			deliver(e)
		}
	}
}

// Snapshot opens the newest snapshot of the node at addr.
func (n *Network) Snapshot(ctx context.Context, addr string) (io.ReadCloser, error) {
	svc, err := n.lookup(addr)
	if err != nil {
		return nil, err
	}
	f, _, err := svc.OpenSnapshot()
	return f, err
}

// Keys streams the key store of the node at addr.
func (n *Network) Keys(ctx context.Context, addr string) (io.ReadCloser, error) {
	svc, err := n.lookup(addr)
	if err != nil {
		return nil, err
	}
	r, w := io.Pipe()
	go func() { w.CloseWithError(svc.ExportKeys(w)) }()
	return r, nil
}
