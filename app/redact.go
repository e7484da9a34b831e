package app

import "net/url"

// redactURL hides a password in a source URL (zookeeper://user:pass@host).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
