package entry

import (
	"errors"
	"fmt"

	"github.com/zkbank/zkbank/engine/internal/pack"
)

// Fields of the envelope, as bits of the set of fields seen.
const (
	fieldV uint16 = 1 << iota
	fieldIndex
	fieldEpoch
	fieldPrevHash
	fieldTime
	fieldCommands // layout 1's inline body
	fieldBV       // layout 2's body version
	fieldBody     // layout 2's body
	fieldKeyID    // layout 3's key id
	fieldCert     // layout 3's certificate (a term entry)
	fieldCluster  // layout 3's cluster id (a term entry)
	fieldSig      // layout 3's signature
)

// complete reports whether seen holds exactly the fields of layout v.
func complete(v uint64, seen uint16) bool {
	const common = fieldV | fieldIndex | fieldEpoch | fieldPrevHash | fieldTime
	const sealed = common | fieldBV | fieldBody | fieldKeyID | fieldSig
	switch v {
	case 1:
		return seen == common|fieldCommands
	case 2:
		return seen == common|fieldBV|fieldBody
	case 3:
		return seen == sealed || seen == sealed|fieldCert|fieldCluster
	}
	return false
}

// scan is the fast path of Decode (pack.Scanner): ok is false when it
// cannot vouch for raw, and read then decides.
func scan(raw []byte) (*Envelope, bool) {
	s := pack.Scanner{B: raw}
	e := &Envelope{}
	var seen uint16
	var v uint64
	for n := s.MapLen(); n > 0 && !s.Bad; n-- {
		var bit uint16
		switch string(s.Bytes(16)) {
		case "v":
			v, bit = s.Uint(), fieldV
		case "index":
			e.Index, bit = s.Uint(), fieldIndex
		case "epoch":
			e.Epoch, bit = s.Uint(), fieldEpoch
		case "prev_hash":
			if b := s.Bytes(len(e.PrevHash)); len(b) == len(e.PrevHash) {
				copy(e.PrevHash[:], b)
			} else {
				s.Bad = true
			}
			bit = fieldPrevHash
		case "time_ms":
			e.TimeMs, bit = int64(s.Uint()), fieldTime // the Decoder wraps the same way
		case "commands":
			e.Body, e.BodyVersion, bit = inlineBody(&s, n == 1), BodyV1, fieldCommands
		case "bv":
			e.BodyVersion, bit = bodyVersion(s.Uint(), &s.Bad), fieldBV
		case "body":
			e.Body, bit = s.Bytes(BytesMax), fieldBody
		case "kid":
			e.KeyID, bit = keyID(s.Uint(), &s.Bad), fieldKeyID
		case "cert":
			e.Cert, bit = s.Bytes(CertBytesMax), fieldCert
		case "cluster":
			e.Cluster, bit = s.Bytes(ClusterBytesMax), fieldCluster
		case "sig":
			e.Sig, bit = s.Bytes(SigBytesMax), fieldSig
		default:
			return nil, false
		}
		if seen&bit != 0 {
			return nil, false
		}
		seen |= bit
	}
	return e, s.Done() && complete(v, seen) && layout(e.BodyVersion) == v && e.checkSeal() == nil
}

// keyID reads a key id, which fits 32 bits.
func keyID(v uint64, bad *bool) uint32 {
	if v > 1<<32-1 {
		*bad = true
		return 0
	}
	return uint32(v)
}

// inlineBody takes layout 1's body: the value of "commands". When it is
// the map's last field (as our encoder writes it), it is the rest of the
// bytes, taken without walking them; the body decoder, which reads every
// byte anyway, refuses anything but one well-formed body.
func inlineBody(s *pack.Scanner, last bool) []byte {
	if last {
		return s.Take(s.Left())
	}
	return s.Value()
}

func bodyVersion(v uint64, bad *bool) uint32 {
	if v <= BodyV1 || v >= BodyVersionMax {
		*bad = true
		return 0
	}
	return uint32(v)
}

// read decodes raw with the msgpack Decoder (pack.Reader): the reference
// for what is an envelope, and the judge of whatever scan does not take.
func read(raw []byte) (*Envelope, error) {
	r := pack.NewReader(raw)
	e := &Envelope{}
	if err := readFields(r, e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if r.Left() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, r.Left())
	}
	return e, nil
}

func readFields(r *pack.Reader, e *Envelope) error {
	n, err := r.MapLen()
	if err != nil {
		return err
	}
	var seen uint16
	var v uint64
	for i := 0; i < n; i++ {
		k, err := r.Key()
		if err != nil {
			return err
		}
		bit, err := readField(r, k, e, &v, i == n-1)
		if err != nil {
			return fmt.Errorf("field %q: %w", k, err)
		}
		if seen&bit != 0 {
			return fmt.Errorf("field %q repeated", k)
		}
		seen |= bit
	}
	if v < 1 || v > 3 {
		return fmt.Errorf("unknown layout %d", v)
	}
	if !complete(v, seen) {
		return fmt.Errorf("fields of layout %d missing or out of place (have %08b)", v, seen)
	}
	if layout(e.BodyVersion) != v {
		return fmt.Errorf("body version %d in layout %d", e.BodyVersion, v)
	}
	return e.checkSeal()
}

func readField(r *pack.Reader, k string, e *Envelope, v *uint64, last bool) (uint16, error) {
	var err error
	switch k {
	case "v":
		*v, err = r.Uint()
		return fieldV, err
	case "index":
		e.Index, err = r.Uint()
		return fieldIndex, err
	case "epoch":
		e.Epoch, err = r.Uint()
		return fieldEpoch, err
	case "prev_hash":
		return fieldPrevHash, r.Fixed(e.PrevHash[:])
	case "time_ms":
		e.TimeMs, err = r.Int()
		return fieldTime, err
	case "commands":
		if last { // as inlineBody
			e.Body, err = r.Rest(), nil
		} else {
			e.Body, err = r.Value()
		}
		e.BodyVersion = BodyV1
		return fieldCommands, err
	case "bv":
		var bv uint64
		bv, err = r.Uint()
		bad := false
		e.BodyVersion = bodyVersion(bv, &bad)
		if err == nil && bad {
			err = fmt.Errorf("body version %d", bv)
		}
		return fieldBV, err
	case "body":
		e.Body, err = r.Bytes(BytesMax)
		return fieldBody, err
	case "kid":
		var id uint64
		id, err = r.Uint()
		bad := false
		e.KeyID = keyID(id, &bad)
		if err == nil && bad {
			err = fmt.Errorf("key id %d", id)
		}
		return fieldKeyID, err
	case "cert":
		e.Cert, err = r.Bytes(CertBytesMax)
		return fieldCert, err
	case "cluster":
		e.Cluster, err = r.Bytes(ClusterBytesMax)
		return fieldCluster, err
	case "sig":
		e.Sig, err = r.Bytes(SigBytesMax)
		return fieldSig, err
	}
	return 0, errors.New("unknown field")
}
