// Command dubbo-admin runs Admin's replicas and operates their leader lease.
//
//	dubbo-admin run [--replicas N] [flags]
//	dubbo-admin leader status [-o json]
//	dubbo-admin leader release --force
//	dubbo-admin version
package main

import (
	"os"

	"github.com/apache/dubbo-admin/app"
)

func main() {
	if err := app.NewCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
