package app

import "runtime"

// Version is the build's version, set by the Makefile with
// -ldflags "-X github.com/apache/dubbo-admin/app.Version=...".
var Version = "dev"

// VersionString is what `dubbo-admin version` prints.
func VersionString() string {
	return "dubbo-admin " + Version + " (" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")"
}
