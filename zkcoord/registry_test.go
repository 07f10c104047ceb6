package zkcoord

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/zkbank/zkbank/zkcoord/zktest"
)

func TestRegistryKeepsExpectedMembersUntilDeregistered(t *testing.T) {
	s := connect(t, zktest.Shared(t, 1), nil)
	for _, r := range []RegistryRecord{{ID: "n2", Addr: "b", Reads: 1}, {ID: "n1", Addr: "a", Reads: 1}, {ID: "n2", Addr: "b2", Reads: 2, Serials: []string{"s1"}}} {
		if err := s.Register(r); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = connect(t, zktest.Shared(t, 1), nil) // durable: not ephemeral
	got, err := s.Registry()
	if err != nil || len(got) != 2 || got[0].ID != "n1" || !reflect.DeepEqual(got[1], RegistryRecord{ID: "n2", Addr: "b2", Reads: 2, Serials: []string{"s1"}}) {
		t.Fatalf("registry %+v (%v)", got, err)
	}
	if err := s.Deregister("n1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Deregister("n1"); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("deregistering a member twice: %v", err)
	}
	if got, _ := s.Registry(); len(got) != 1 {
		t.Fatalf("registry after deregister: %+v", got)
	}
}

func TestTheClusterVersionNeverGoesDown(t *testing.T) {
	s := connect(t, zktest.Shared(t, 1), nil)
	if cv, err := s.ClusterVersion(); err != nil || cv != (ClusterVersion{BodyVersion: 1}) {
		t.Fatalf("before any publish: %+v %v", cv, err)
	}
	for _, cv := range []ClusterVersion{{2, 0}, {2, 10}, {2, 99}, {1, 5}} {
		if err := s.PublishClusterVersion(cv); err != nil {
			t.Fatal(err)
		}
	}
	if cv, _ := s.ClusterVersion(); cv != (ClusterVersion{2, 10}) {
		t.Fatalf("published %+v, want version 2 with the first index known", cv)
	}
}

func TestARecordKeepsTheNewestSerialsOnce(t *testing.T) {
	var rec RegistryRecord
	for i := range SerialsKept + 3 {
		rec = rec.WithSerial(fmt.Sprint(i)).WithSerial("")
	}
	rec = rec.WithSerial("5")
	if len(rec.Serials) != SerialsKept || rec.Serials[0] != "3" || rec.Serials[SerialsKept-1] != "5" {
		t.Fatalf("serials %v", rec.Serials)
	}
}
