package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/bankd/internal/peerwire"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
)

// Paths of the endpoints nodes call on each other.
const (
	submitPeerPath = "/internal/v2/submit" // peerwire in and out
	submitPath     = "/internal/v1/submit" // JSON, for nodes of earlier versions
	readIndexPath  = "/internal/v1/read-index"
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

// submitRemote forwards cmds to the leader in the binary peer format; a
// leader of an earlier version, which lacks that endpoint, gets JSON.
func (s *Server) submitRemote(ctx context.Context, cmds []engine.Command) (submitted, error) {
	leader, ok := s.node.Leader()
	if !ok || leader.ID == s.node.ID() {
		return submitted{}, fmt.Errorf("%w: %w", errRetry, errNoLeader)
	}
	body, err := peerwire.EncodeCommands(cmds)
	if err != nil {
		return submitted{}, err
	}
	raw, err := s.exchange(ctx, http.MethodPost, leader.Addr+submitPeerPath, peerwire.ContentType, body)
	if errors.Is(err, errNoSuchPath) {
		return s.submitRemoteJSON(ctx, leader.Addr, cmds)
	}
	if err != nil {
		return submitted{}, err
	}
	index, outs, err := peerwire.DecodeResult(raw, len(cmds))
	if err != nil {
		return submitted{}, fmt.Errorf("api: %s: %w", leader.Addr, err)
	}
	return submitted{index, outs}, nil
}

func (s *Server) submitRemoteJSON(ctx context.Context, addr string, cmds []engine.Command) (submitted, error) {
	batch := wire.Batch{Commands: make([]wire.Command, len(cmds))}
	for i, c := range cmds {
		batch.Commands[i] = wire.FromEngine(c)
	}
	var res wire.BatchResult
	if err := s.callPeer(ctx, http.MethodPost, addr+submitPath, batch, &res); err != nil {
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
// when it leads). A follower's concurrent reads share each call to the
// leader (leaderReads), as the leader's share its confirmations: a call
// that starts after a read arrived answers for it.
func (s *Server) readIndex(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	return untilLeader(ctx, func(ctx context.Context) (uint64, error) {
		index, err := s.node.ReadIndex(ctx)
		if !errors.Is(err, node.ErrNotLeader) {
			return index, err
		}
		return s.leaderReads.Join(ctx)
	})
}

// askLeader is one round of leaderReads.
func (s *Server) askLeader() (uint64, error) {
	leader, ok := s.node.Leader()
	if !ok || leader.ID == s.node.ID() {
		return 0, fmt.Errorf("%w: %w", errRetry, errNoLeader)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
	defer cancel()
	var res wire.ReadIndex
	err := s.callPeer(ctx, http.MethodPost, leader.Addr+readIndexPath, struct{}{}, &res)
	return res.Index, err
}

// callPeer sends a JSON request to another node and decodes the answer
// into out.
func (s *Server) callPeer(ctx context.Context, method, url string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	raw, err := s.exchange(ctx, method, url, "application/json", body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("api: %s: decode answer: %w", strings.TrimPrefix(url, "http://"), err)
	}
	return nil
}

// errNoSuchPath: the peer does not serve the path (an earlier version).
// It is retryable like any other unexpected answer.
var errNoSuchPath = fmt.Errorf("%w: the peer does not serve this path", errRetry)

// peerAnswerBytesMax bounds what is read of a peer's answer: the answer to
// one entry's commands is well under it.
const peerAnswerBytesMax = 64 << 20

// exchange sends body to another node and returns the body of a 200
// answer. Transport failures and retryable problems are wrapped in
// errRetry; other problems come back as *wire.Problem.
func (s *Server) exchange(ctx context.Context, method, url, contentType string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := s.peers.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w", errRetry, ctx.Err())
		}
		return nil, fmt.Errorf("%w: %s: %w", errRetry, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, peerAnswerBytesMax))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: read answer: %w", errRetry, url, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return raw, nil
	case http.StatusNotFound: // the internal endpoints answer 404 for nothing else
		return nil, fmt.Errorf("%w: %s", errNoSuchPath, url)
	}
	var p wire.Problem
	switch {
	case json.Unmarshal(raw, &p) != nil || p.Code == "":
		return nil, fmt.Errorf("%w: %s answered %s", errRetry, url, resp.Status)
	case p.Retryable:
		return nil, fmt.Errorf("%w: %w", errRetry, &p)
	}
	return nil, &p
}
