// The Vault server the tests run: Vault's own command line, built from its Go
// module at a tagged release (see tools/build-vault-testenv.sh for why the
// sdk is replaced by a patched copy).
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
