package app

import (
	"github.com/apache/dubbo-admin/pkg/core/discovery"
	"github.com/apache/dubbo-admin/pkg/core/engine"
	"github.com/apache/dubbo-admin/pkg/core/source"
)

// registrySources maps the URL schemes of registry.url to Discovery's
// sources.
func registrySources() source.Registry {
	return discovery.Sources()
}

// engineSources maps the URL schemes of engine.url to Engine's sources.
func engineSources() source.Registry {
	return engine.Sources()
}
