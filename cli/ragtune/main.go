// Command ragtune fine-tunes text-embedding models for retrieval.
package main

import (
	"fmt"
	"os"

	"github.com/ragtune/ragtune/cli"
)

func main() {
	if err := cli.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "ragtune:", err)
		os.Exit(cli.ExitCode(err))
	}
}
