package engine

import (
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/apache/dubbo-admin/pkg/core/source/file"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// File is the content of one runtime instance file (YAML or JSON).
//
//	instances:
//	  - {name: shop-order-0, namespace: shop, node: node-1, podIP: 10.0.1.11,
//	     phase: Running, ready: true, application: shop-order, labels: {app: shop-order}}
type File struct {
	Instances []RuntimeInstance `json:"instances"`
}

// FileOpener opens file:// sources of runtime instance files.
var FileOpener = file.Opener(DecodeFile)

// DecodeFile turns a runtime instance file into resources. Unknown fields
// and duplicate instances make the whole file malformed.
func DecodeFile(name string, data []byte) ([]store.Resource, error) {
	var f File
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	out := make([]store.Resource, 0, len(f.Instances))
	seen := map[string]bool{}
	for _, in := range f.Instances {
		res, err := in.Resource()
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", name, err)
		}
		if seen[res.Key] {
			return nil, fmt.Errorf("decode %s: %s is listed twice", name, res.Key)
		}
		seen[res.Key] = true
		out = append(out, res)
	}
	return out, nil
}
