package zkcoord

import (
	"os"
	"testing"

	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// TestMain gives the tests shared ensembles (zktest.Shared); each test
// keeps to its own root.
func TestMain(m *testing.M) { os.Exit(zktest.Main(m)) }
