package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
)

// Paths of the endpoints nodes call on each other.
const (
	submitPath    = "/internal/v1/submit"
	readIndexPath = "/internal/v1/read-index"
)

// errRetry marks an attempt that failed for a reason that may pass: no
// leader yet, the leader changed, a peer unreachable.
var errRetry = errors.New("api: retry")

// untilLeader runs attempt until it succeeds, fails for good, or ctx ends;
// it backs off between attempts so that an election has time to finish.
func untilLeader[T any](ctx context.Context, attempt func(context.Context) (T, error)) (T, error) {
	backoff := 10 * time.Millisecond
	for {
		v, err := attempt(ctx)
		if err == nil || !errors.Is(err, errRetry) {
			return v, err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return v, err
		}
		backoff = min(2*backoff, 250*time.Millisecond)
	}
}

// submitted is what the log made of a request.
type submitted struct {
	index    uint64
	outcomes []node.Outcome
}

// submit sends cmds through the leader: this node when it leads, else the
// leader it knows, retrying within the write timeout. Every command carries
// an idempotency key, so a retry never applies twice.
func (s *Server) submit(ctx context.Context, cmds []engine.Command) (submitted, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	return untilLeader(ctx, func(ctx context.Context) (submitted, error) {
		index, out, err := s.node.Submit(ctx, cmds)
		switch {
		case err == nil:
			return submitted{index, out}, nil
		case errors.Is(err, node.ErrNotLeader):
			return s.fwd.submit(ctx, cmds)
		case errors.Is(err, node.ErrLeadershipLost), errors.Is(err, node.ErrOverloaded):
			return submitted{}, fmt.Errorf("%w: %w", errRetry, err)
		}
		return submitted{}, err
	})
}

func (s *Server) submitRemote(ctx context.Context, cmds []engine.Command) (submitted, error) {
	leader, ok := s.node.Leader()
	if !ok || leader.ID == s.node.ID() {
		return submitted{}, fmt.Errorf("%w: %w", errRetry, errNoLeader)
	}
	batch := wire.Batch{Commands: make([]wire.Command, len(cmds))}
	for i, c := range cmds {
		batch.Commands[i] = wire.FromEngine(c)
	}
	var res wire.BatchResult
	if err := s.callPeer(ctx, http.MethodPost, leader.Addr+submitPath, batch, &res); err != nil {
		return submitted{}, err
	}
	return fromBatchResult(res, len(cmds))
}

func fromBatchResult(res wire.BatchResult, want int) (submitted, error) {
	if len(res.Results) != want {
		return submitted{}, fmt.Errorf("api: leader answered %d results for %d commands", len(res.Results), want)
	}
	out := make([]node.Outcome, want)
	for i, r := range res.Results {
		code, ok := engine.ParseCode(r.Code)
		if !ok {
			return submitted{}, fmt.Errorf("api: leader answered unknown code %q", r.Code)
		}
		out[i] = node.Outcome{Code: code, Replayed: r.Replayed, Accounts: toEngineAccounts(r.Accounts)}
	}
	return submitted{res.Index, out}, nil
}

func toEngineAccounts(in []wire.Account) []engine.Account {
	out := make([]engine.Account, len(in))
	for i, a := range in {
		out[i] = engine.Account{Number: a.Account, Name: a.Name, Balance: a.Balance, CreatedIndex: a.CreatedIndex, UpdatedIndex: a.UpdatedIndex}
	}
	return out
}

// readIndex gets a linearizable read index from the leader (this node
// when it leads).
func (s *Server) readIndex(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	return untilLeader(ctx, func(ctx context.Context) (uint64, error) {
		index, err := s.node.ReadIndex()
		if !errors.Is(err, node.ErrNotLeader) {
			return index, err
		}
		leader, ok := s.node.Leader()
		if !ok || leader.ID == s.node.ID() {
			return 0, fmt.Errorf("%w: %w", errRetry, errNoLeader)
		}
		var res wire.ReadIndex
		err = s.callPeer(ctx, http.MethodPost, leader.Addr+readIndexPath, struct{}{}, &res)
		return res.Index, err
	})
}

// callPeer sends a JSON request to another node. Transport failures and
// retryable problems are wrapped in errRetry; other problems come back as
// *wire.Problem.
func (s *Server) callPeer(ctx context.Context, method, url string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.peers.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %w", errRetry, ctx.Err())
		}
		return fmt.Errorf("%w: %s: %w", errRetry, url, err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var p wire.Problem
		if err := dec.Decode(&p); err != nil || p.Code == "" {
			return fmt.Errorf("%w: %s answered %s", errRetry, url, resp.Status)
		}
		if p.Retryable {
			return fmt.Errorf("%w: %w", errRetry, &p)
		}
		return &p
	}
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("api: %s: decode answer: %w", strings.TrimPrefix(url, "http://"), err)
	}
	return nil
}
