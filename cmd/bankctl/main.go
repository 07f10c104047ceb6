// Command bankctl uses and operates a zkbank cluster: see `bankctl --help`.
package main

import (
	"os"

	"github.com/zkbank/zkbank/cmd/bankctl/internal/cli"
)

func main() {
	os.Exit(cli.Execute(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
