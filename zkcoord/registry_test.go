package zkcoord

import (
	"testing"

	"github.com/zkbank/zkbank/zkcoord/zktest"
)

func TestRegistryKeepsExpectedMembersUntilDeregistered(t *testing.T) {
	s := connect(t, zktest.Shared(t, 1), nil)
	for _, r := range []RegistryRecord{{ID: "n2", Addr: "b", Reads: 1}, {ID: "n1", Addr: "a", Reads: 1}, {ID: "n2", Addr: "b2", Reads: 2}} {
		if err := s.Register(r); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = connect(t, zktest.Shared(t, 1), nil) // durable: not ephemeral
	got, err := s.Registry()
	if err != nil || len(got) != 2 || got[0].ID != "n1" || got[1] != (RegistryRecord{ID: "n2", Addr: "b2", Reads: 2}) {
		t.Fatalf("registry %+v (%v)", got, err)
	}
	if err := s.Deregister("n1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Deregister("n1"); err == nil {
		t.Fatal("deregistered a member twice")
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
