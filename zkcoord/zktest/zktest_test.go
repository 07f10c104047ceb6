package zktest

import "testing"

func TestEnsembleStartsAndSurvivesAServerStop(t *testing.T) {
	e := Start(t, 3)
	leaders := 0
	for _, s := range e.Servers {
		if s.Mode() == "leader" {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("%d leaders", leaders)
	}
	s := e.Servers[0]
	s.Stop()
	if s.Mode() != "" || s.PID() != 0 {
		t.Fatal("stopped server still answers")
	}
	s.Start(t)
	s.WaitReady(t)
}
