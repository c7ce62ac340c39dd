// Command kratos is Ory Kratos v1.3.1, built for Fanfare's tests and
// `fanfare dev` (see internal/platform/kratos).
//
// Build it with: go build -tags sqlite -o kratos .
package main

import (
	"os"

	"github.com/ory/kratos/cmd"
	"github.com/ory/kratos/driver/config"
)

func main() {
	// Kratos' release builds set this with -ldflags; without it Kratos
	// reports "master" and warns that the config's version differs.
	config.Version = "v1.3.1"
	os.Exit(cmd.Execute())
}
