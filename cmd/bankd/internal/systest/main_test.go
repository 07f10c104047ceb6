package systest

import (
	"os"
	"testing"

	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// TestMain gives the tests one shared ensemble of each size they ask for:
// starting ZooKeeper costs seconds, and each test keeps to its own root.
func TestMain(m *testing.M) { os.Exit(zktest.Main(m)) }
