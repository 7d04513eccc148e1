// Command deadletter is the operator's tool for deadletter: it runs the
// demo, and will inspect, replay and monitor the dead letter queue.
package main

import (
	"os"

	"github.com/deadletter/deadletter/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
