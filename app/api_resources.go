package app

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/apache/dubbo-admin/pkg/core/store"
)

// ResourceList is the body of GET /api/v1/resources/{kind}.
type ResourceList struct {
	Kind  string           `json:"kind"`
	Items []store.Resource `json:"items"`
	// Continue, when not empty, fetches the next page: ?continue=...
	Continue string `json:"continue,omitempty"`
}

// listResources serves GET /api/v1/resources/{kind}?limit=N&continue=T&label=k=v...
func (a *API) listResources(w http.ResponseWriter, r *http.Request) {
	kind := r.PathValue("kind")
	q := r.URL.Query()
	opts := store.ListOptions{Continue: q.Get("continue")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > MaxListLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: must be a number 0..%d", s, MaxListLimit))
			return
		}
		opts.Limit = n
	}
	for _, l := range q["label"] {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("label %q: want key=value", l))
			return
		}
		if opts.Labels == nil {
			opts.Labels = map[string]string{}
		}
		opts.Labels[k] = v
	}
	res, err := a.Store.List(r.Context(), kind, opts)
	if err != nil {
		storeError(w, err)
		return
	}
	items := res.Items
	if items == nil {
		items = []store.Resource{}
	}
	writeJSON(w, http.StatusOK, ResourceList{Kind: kind, Items: items, Continue: res.Continue})
}

// getResource serves GET /api/v1/resources/{kind}/{key...}; keys may hold
// slashes ("shop-order/10.0.0.1:20880").
func (a *API) getResource(w http.ResponseWriter, r *http.Request) {
	res, err := a.Store.Get(r.Context(), r.PathValue("kind"), r.PathValue("key"))
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
