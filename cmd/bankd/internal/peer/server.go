package peer

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/snapshot"
)

// Service is what a node answers its peers (a *node.Node).
type Service interface {
	// Submit runs commands through the log on the leader; others answer
	// node.ErrNotLeader. It never forwards again.
	Submit(ctx context.Context, cmds []engine.Command) (uint64, []node.Outcome, error)
	ReadIndex(ctx context.Context) (uint64, error)
	Entries() (*node.EntryStream, error)
	OpenSnapshot() (io.ReadCloser, snapshot.Info, error)
	ExportKeys(w io.Writer) error
}

// Limits of the answering end.
const (
	submitBodyBytesMax = 4 << 20 // a forwarded call is at most forwardBytesMax, with room to spare
	pushWriteTimeout   = 10 * time.Second
)

// Handler serves the internal endpoints of svc.
func Handler(svc Service) http.Handler {
	h := &handler{svc: svc}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+SubmitPath, h.submit)
	mux.HandleFunc("POST "+ReadIndexPath, h.readIndex)
	mux.HandleFunc("GET "+EntriesPath, h.entries)
	mux.HandleFunc("GET "+SnapshotPath, h.snapshot)
	mux.HandleFunc("GET "+KeysPath, h.keys)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteProblem(w, wire.NewProblem(wire.CodeNotFound, "no internal route "+r.Method+" "+r.URL.Path))
	})
	return mux
}

type handler struct{ svc Service }

// submit is the leader's end of a forwarded write.
func (h *handler) submit(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, submitBodyBytesMax))
	if err != nil {
		wire.WriteProblem(w, wire.NewProblem(wire.CodeBodyTooLarge, "reading the forwarded commands: "+err.Error()))
		return
	}
	bv, err := commandsVersion(r.Header.Get("Content-Type"))
	if err != nil {
		wire.WriteProblem(w, wire.NewProblem(wire.CodeUnsupportedMedia, err.Error()))
		return
	}
	cmds, err := engine.DecodeBody(bv, body)
	if err != nil {
		wire.WriteProblem(w, wire.NewProblem(wire.CodeInvalidOp, err.Error()))
		return
	}
	index, out, err := h.svc.Submit(r.Context(), cmds)
	if err != nil {
		wire.WriteProblem(w, problemFor(err))
		return
	}
	raw, err := EncodeResult(index, out)
	if err != nil {
		wire.WriteProblem(w, problemFor(err))
		return
	}
	w.Header().Set("Content-Type", ContentType)
	w.Write(raw)
}

func (h *handler) readIndex(w http.ResponseWriter, r *http.Request) {
	index, err := h.svc.ReadIndex(r.Context())
	if err != nil {
		wire.WriteProblem(w, problemFor(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(strconv.AppendUint([]byte(`{"index":`), index, 10))
	w.Write([]byte("}\n"))
}

// entries streams the entries the leader's term confirms from now on,
// until the term ends, the node stops or the follower goes away.
func (h *handler) entries(w http.ResponseWriter, r *http.Request) {
	stream, err := h.svc.Entries()
	if err != nil {
		wire.WriteProblem(w, problemFor(err))
		return
	}
	defer stream.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for err := rc.Flush(); err == nil; err = rc.Flush() {
		batch, err := stream.Next(r.Context())
		if err != nil {
			return
		}
		rc.SetWriteDeadline(time.Now().Add(pushWriteTimeout)) // a follower gone silent frees the handler
		if err := writeFrames(w, batch); err != nil {
			return
		}
	}
}

// writeFrames writes entries as frames of a 4-byte big-endian length and
// the entry's bytes.
func writeFrames(w io.Writer, batch [][]byte) error {
	var size [4]byte
	for _, raw := range batch {
		binary.BigEndian.PutUint32(size[:], uint32(len(raw)))
		if _, err := w.Write(size[:]); err != nil {
			return err
		}
		if _, err := w.Write(raw); err != nil {
			return err
		}
	}
	return nil
}

// snapshot streams this node's newest snapshot file; the receiver
// verifies it before use.
func (h *handler) snapshot(w http.ResponseWriter, r *http.Request) {
	f, info, err := h.svc.OpenSnapshot()
	if errors.Is(err, node.ErrNoSnapshot) {
		wire.WriteProblem(w, wire.NewProblem(wire.CodeNotFound, err.Error()))
		return
	}
	if err != nil {
		wire.WriteProblem(w, problemFor(err))
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
	io.Copy(w, f) // a broken transfer fails the receiver's checksum
}

// keys streams this node's key store (keystore.Store.Export) to a peer
// that installed its snapshot; the receiver checks the stream's count and
// checksum.
func (h *handler) keys(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	h.svc.ExportKeys(w) // a broken transfer fails the receiver's checks
}
