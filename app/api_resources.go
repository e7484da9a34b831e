package app

import (
	"fmt"
	"hash/crc32"
	"net/http"
	"slices"
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
	if !a.knownKind(w, kind) {
		return
	}
	q := r.URL.Query()
	var opts store.ListOptions
	if t := q.Get("continue"); t != "" {
		var ok bool
		if opts.Continue, ok = openContinue(kind, t); !ok {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("continue %q: not a token this API returned for kind %s (pass back the continue of the previous page)", t, kind))
			return
		}
	}
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
	writeJSON(w, http.StatusOK, ResourceList{Kind: kind, Items: items, Continue: sealContinue(kind, res.Continue)})
}

// knownKind answers 404 for a kind this replica does not serve, and
// suggests the kind that differs only in case.
func (a *API) knownKind(w http.ResponseWriter, kind string) bool {
	if len(a.Kinds) == 0 || slices.Contains(a.Kinds, kind) {
		return true
	}
	msg := fmt.Sprintf("unknown kind %q: kinds are %s", kind, strings.Join(a.Kinds, ", "))
	for _, k := range a.Kinds {
		if strings.EqualFold(k, kind) {
			msg = fmt.Sprintf("unknown kind %q: did you mean %q? (kinds are case-sensitive: %s)", kind, k, strings.Join(a.Kinds, ", "))
		}
	}
	writeError(w, http.StatusNotFound, msg)
	return false
}

// A continue token of the API is the store's token, a dot and a checksum
// of kind and token, so that a mistyped or truncated token, or one of
// another kind, is a 400 rather than a silently wrong page.
func sealContinue(kind, token string) string {
	if token == "" {
		return ""
	}
	return token + "." + continueSum(kind, token)
}

func openContinue(kind, sealed string) (string, bool) {
	i := strings.LastIndexByte(sealed, '.')
	if i <= 0 || sealed[i+1:] != continueSum(kind, sealed[:i]) {
		return "", false
	}
	return sealed[:i], true
}

func continueSum(kind, token string) string {
	return strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(kind+"\x00"+token))), 36)
}

// getResource serves GET /api/v1/resources/{kind}/{key...}; keys may hold
// slashes ("shop-order/10.0.0.1:20880").
func (a *API) getResource(w http.ResponseWriter, r *http.Request) {
	if !a.knownKind(w, r.PathValue("kind")) {
		return
	}
	res, err := a.Store.Get(r.Context(), r.PathValue("kind"), r.PathValue("key"))
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
