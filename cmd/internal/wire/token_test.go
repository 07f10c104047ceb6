package wire

import "testing"

func TestOnlyWellFormedTokensAreLookedUp(t *testing.T) {
	good := NewToken()
	if !WellFormedToken(good) || good == NewToken() {
		t.Fatalf("a new token %q is not well formed, or not new", good)
	}
	for _, bad := range []string{"", "zkb_", good[:len(good)-1], good + "A", "zkc_" + good[4:], good[:10] + "*" + good[11:]} {
		if WellFormedToken(bad) {
			t.Errorf("%q passed as a token", bad)
		}
	}
}
