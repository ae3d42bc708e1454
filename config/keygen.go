package config

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// GenerateKey returns a new random 32-byte cluster key (AES-256), base64
// encoded (standard alphabet, padded), as `ctsync keygen` prints it.
func GenerateKey() (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

// ParseKey decodes a base64 cluster key, ignoring surrounding white space
// (a key file ends in a newline). The key must be 16, 24 or 32 bytes long
// (AES-128, -192 or -256).
func ParseKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("key is not base64: %w", err)
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, fmt.Errorf("key is %d bytes long, want 16, 24 or 32", len(key))
}
