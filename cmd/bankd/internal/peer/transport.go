package peer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
)

// Config configures a Transport.
type Config struct {
	// Client makes the calls; its Transport should keep connections
	// alive. It must have no overall timeout: an entry stream lasts a
	// term. Default: keep-alive, 256 idle connections per peer.
	Client *http.Client
	// CallTimeout bounds one forwarded write (default 11s: a leader's
	// write timeout and a second).
	CallTimeout time.Duration
	// Stage reports StageForwardWait and StageForwardCall; nil for none.
	Stage func(stage string, took time.Duration)
}

// Transport is node.Transport over HTTP: addresses are base URLs.
type Transport struct {
	client *http.Client
	fwd    *coalescer
}

// NewTransport returns a Transport.
func NewTransport(cfg Config) *Transport {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 11 * time.Second
	}
	t := &Transport{client: cfg.Client}
	t.fwd = newCoalescer(t.submit, cfg.CallTimeout, cfg.Stage)
	return t
}

var _ node.Transport = (*Transport)(nil)

// Forward submits cmds on the leader at addr, coalesced with the other
// writes waiting for it.
func (t *Transport) Forward(ctx context.Context, addr string, bv uint32, cmds []engine.Command) (uint64, []node.Outcome, error) {
	return t.fwd.forward(ctx, addr, bv, cmds)
}

// submit is one call of a coalesced forward.
func (t *Transport) submit(ctx context.Context, addr string, bv uint32, cmds []engine.Command) (uint64, []node.Outcome, error) {
	body, err := engine.EncodeBody(bv, cmds)
	if err != nil {
		return 0, nil, err
	}
	raw, err := t.exchange(ctx, http.MethodPost, addr+SubmitPath, commandsType(bv), body)
	if err != nil {
		return 0, nil, err
	}
	index, out, err := DecodeResult(raw, len(cmds))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %s: %w", node.ErrUnreachable, addr, err)
	}
	return index, out, nil
}

// ReadIndex asks the leader at addr for a linearizable read index.
func (t *Transport) ReadIndex(ctx context.Context, addr string) (uint64, error) {
	raw, err := t.exchange(ctx, http.MethodPost, addr+ReadIndexPath, "application/json", nil)
	if err != nil {
		return 0, err
	}
	var res wire.ReadIndex
	if err := json.Unmarshal(raw, &res); err != nil {
		return 0, fmt.Errorf("%w: %s: read index: %w", node.ErrUnreachable, addr, err)
	}
	return res.Index, nil
}

// Entries follows the leader's entry stream until it or ctx ends.
func (t *Transport) Entries(ctx context.Context, addr string, deliver func(*entry.Envelope)) error {
	resp, err := t.open(ctx, addr+EntriesPath)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return readFrames(bufio.NewReaderSize(resp.Body, 64<<10), deliver)
}

// readFrames reads frames until the stream ends or one does not decode.
func readFrames(r io.Reader, deliver func(*entry.Envelope)) error {
	for {
		e, err := readFrame(r)
		if err != nil {
			return err
		}
		deliver(e)
	}
}

func readFrame(r io.Reader) (*entry.Envelope, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > entry.BytesMax {
		return nil, fmt.Errorf("peer: entry stream: frame of %d bytes, limit %d", n, entry.BytesMax)
	}
	raw := make([]byte, n)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, err
	}
	return entry.Decode(raw)
}

// Snapshot opens the newest snapshot of the node at addr.
func (t *Transport) Snapshot(ctx context.Context, addr string) (io.ReadCloser, error) {
	resp, err := t.open(ctx, addr+SnapshotPath)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Keys opens the key store of the node at addr.
func (t *Transport) Keys(ctx context.Context, addr string) (io.ReadCloser, error) {
	resp, err := t.open(ctx, addr+KeysPath)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// open GETs a stream; anything but a 200 is an error.
func (t *Transport) open(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", node.ErrUnreachable, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, answerError(url, resp)
	}
	return resp, nil
}

// answerBytesMax bounds what is read of a peer's answer: the answer to
// one entry's commands is well under it.
const answerBytesMax = 64 << 20

// exchange sends body to another node and returns the body of a 200
// answer. A transport failure is node.ErrUnreachable; a problem answer is
// the node error it stands for (errorFor).
func (t *Transport) exchange(ctx context.Context, method, url, contentType string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", node.ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, answerError(url, resp)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, answerBytesMax))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: read answer: %w", node.ErrUnreachable, url, err)
	}
	return raw, nil
}

// answerError is the error a non-200 answer stands for.
func answerError(url string, resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var p wire.Problem
	if json.Unmarshal(raw, &p) != nil || p.Code == "" {
		return fmt.Errorf("%w: %s answered %s", node.ErrUnreachable, strings.TrimPrefix(url, "http://"), resp.Status)
	}
	if err, ok := errorFor(&p); ok {
		return fmt.Errorf("%w (the peer said: %s)", err, p.Detail)
	}
	return &p
}
