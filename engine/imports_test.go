package engine

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// allowedImports is everything the engine may import. Anything that could
// do I/O, read the clock, draw random numbers, log or touch the network is
// missing on purpose: the engine must stay a pure function of the log.
var allowedImports = map[string]bool{
	"bufio": true, "bytes": true, "crypto/sha256": true, "encoding/binary": true,
	"encoding/hex": true, "errors": true, "fmt": true, "io": true, "math": true, "math/bits": true,
	"sort": true, "strconv": true, "strings": true, "sync": true, "unicode": true, "unicode/utf8": true,
	// Randomly seeded, but only to place entries in the in-memory indexes:
	// the seed changes where an entry sits, never an outcome or a byte of
	// the state (hashIndex).
	"hash/maphash":                      true,
	"github.com/google/btree":           true,
	"github.com/vmihailenco/msgpack/v5": true,
	// The envelope and the msgpack primitives, held to the same list.
	"github.com/zkbank/zkbank/engine/entry":         true,
	"github.com/zkbank/zkbank/engine/internal/pack": true,
}

// pureDirs are the packages the list applies to.
var pureDirs = []string{".", "entry", "internal/pack"}

func TestEngineImportsNothingImpure(t *testing.T) {
	var files []string
	for _, dir := range pureDirs {
		in, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, in...)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !allowedImports[path] {
				t.Errorf("%s imports %q: the engine must not do I/O, time, randomness, logging or networking", name, path)
			}
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no engine source files found")
	}
}
