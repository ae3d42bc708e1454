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

// ParseKeys decodes a key file: one base64 key per line (see ParseKey), the
// first the primary key, the others accepted too (during a key rotation).
// Blank lines and lines starting with # are ignored. An error names the
// line when the file has more than one key line.
func ParseKeys(data string) ([][]byte, error) {
	type line struct {
		no   int
		text string
	}
	var lines []line
	for i, l := range strings.Split(data, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, line{i + 1, l})
	}
	if len(lines) == 0 {
		_, err := ParseKey("")
		return nil, err
	}
	keys := make([][]byte, 0, len(lines))
	seen := map[string]int{}
	for _, l := range lines {
		key, err := ParseKey(l.text)
		if err == nil {
			if first, dup := seen[string(key)]; dup {
				err = fmt.Errorf("the same key as line %d", first)
			}
		}
		if err != nil {
			if len(lines) > 1 {
				err = fmt.Errorf("line %d: %w", l.no, err)
			}
			return nil, err
		}
		seen[string(key)] = l.no
		keys = append(keys, key)
	}
	return keys, nil
}
