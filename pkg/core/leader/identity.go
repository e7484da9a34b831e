package leader

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"
)

// MaxHolderLength bounds a holder identity, in bytes.
const MaxHolderLength = 255

// NewIdentity returns "host-pid-nonce": the host name and pid say where the
// holder runs, and the random nonce makes a restarted process (or a second
// elector in one process) a different holder.
func NewIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	nonce := make([]byte, 4)
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("leader: read random nonce: %v", err)) // crypto/rand never fails on supported platforms
	}
	suffix := fmt.Sprintf("-%d-%s", os.Getpid(), hex.EncodeToString(nonce))
	for len(host)+len(suffix) > MaxHolderLength {
		_, size := utf8.DecodeLastRuneInString(host)
		host = host[:len(host)-size]
	}
	return host + suffix
}

func validateHolder(holder string) error {
	if holder == "" || len(holder) > MaxHolderLength || !utf8.ValidString(holder) || strings.TrimSpace(holder) != holder {
		return fmt.Errorf("%w: holder identity %q: must be 1..%d bytes of UTF-8 without surrounding white space", ErrInvalidConfig, holder, MaxHolderLength)
	}
	return nil
}
