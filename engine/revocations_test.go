package engine

import (
	"bytes"
	"testing"
)

// TestACertificateIsRevokedAtOneIndex: a revocation through the log is in
// the state from its index on, survives a snapshot, and is idempotent.
func TestACertificateIsRevokedAtOneIndex(t *testing.T) {
	e, _ := New(DefaultConfig())
	revoke := func(key, serial string) Code {
		t.Helper()
		ent := entryAt(e, BodyV2, Command{Op: OpRevokeCertificate, Key: key, Serial: serial})
		if _, err := EncodeEntry(ent); err != nil {
			t.Fatal(err)
		}
		dec, err := DecodeEntry(ent.Raw())
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Apply(dec)
		if err != nil {
			t.Fatal(err)
		}
		return res[0].Code
	}
	if code := revoke("r1", "7f3a"); code != CodeOK {
		t.Fatalf("revoke: %s", code)
	}
	if at, ok := e.Revoked("7f3a"); !ok || at != 1 {
		t.Fatalf("revoked at %d (%v), want 1", at, ok)
	}
	if code := revoke("r2", "7f3a"); code != CodeOK {
		t.Fatalf("revoking again: %s", code)
	}
	if at, _ := e.Revoked("7f3a"); at != 1 {
		t.Fatalf("revoking again moved the index to %d", at)
	}
	for _, bad := range []string{"", "07f", "7F3A", "xyz", "123456789012345678901234567890123"} {
		if code := revoke("bad-"+bad, bad); code != CodeInvalidSerial {
			t.Errorf("serial %q: %s, want invalid_serial", bad, code)
		}
	}
	again, err := Restore(e.Config(), bytes.NewReader(stateBytes(t, e)))
	if err != nil || again.StateHash() != e.StateHash() {
		t.Fatalf("restore: %v", err)
	}
	if got := again.Revocations(); len(got) != 1 || got[0] != (Revocation{Serial: "7f3a", Index: 1}) {
		t.Fatalf("restored revocations %+v", got)
	}
}

func TestAVersion1BodyCarriesNoRevocation(t *testing.T) {
	cmd := Command{Op: OpRevokeCertificate, Key: "k", Serial: "7f"}
	if _, err := EncodeBody(BodyV1, []Command{cmd}); err == nil {
		t.Fatal("a revocation written into a version 1 body")
	}
	body, _ := EncodeBody(BodyV2, []Command{cmd})
	if _, err := DecodeBody(BodyV1, body); err == nil {
		t.Fatal("a revocation read from a version 1 body")
	}
}
