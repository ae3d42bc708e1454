package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseKeys(t *testing.T) {
	k1, _ := GenerateKey()
	k2, _ := GenerateKey()
	k16 := "AAAAAAAAAAAAAAAAAAAAAA=="
	tests := []struct {
		name string
		in   string
		want []string // base64 keys in order; nil = error
		err  string   // substring of the error
	}{
		{"keygen output", k1 + "\n", []string{k1}, ""},
		{"no newline", k1, []string{k1}, ""},
		{"two keys", k1 + "\n" + k2 + "\n", []string{k1, k2}, ""},
		{"comments and blanks", "# new key, primary since 2025-01-01\n\n  " + k2 + "  \n# old key\n" + k1 + "\n\n", []string{k2, k1}, ""},
		{"CRLF", k1 + "\r\n" + k16 + "\r\n", []string{k1, k16}, ""},
		{"empty", "", nil, "key is 0 bytes long"},
		{"only comments", "# nothing yet\n\n", nil, "key is 0 bytes long"},
		{"one bad key", "AAAA\n", nil, "key is 3 bytes long"},
		{"bad second line", k1 + "\n# c\nnot a key!\n", nil, "line 3: key is not base64"},
		{"short second key", k1 + "\nAAAA\n", nil, "line 2: key is 3 bytes long"},
		{"duplicate", k1 + "\n" + k2 + "\n" + k1 + "\n", nil, "line 3: the same key as line 1"},
		{"two keys on a line", k1 + " " + k2 + "\n", nil, "not base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ParseKeys(tt.in)
			if tt.want == nil {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseKeys = %d keys, %v; want an error with %q", len(keys), err, tt.err)
				}
				return
			}
			if err != nil || len(keys) != len(tt.want) {
				t.Fatalf("ParseKeys = %d keys, %v; want %d", len(keys), err, len(tt.want))
			}
			for i, w := range tt.want {
				wk, _ := ParseKey(w)
				if !bytes.Equal(keys[i], wk) {
					t.Errorf("key %d differs", i)
				}
			}
		})
	}
}

func TestKeysFromFile(t *testing.T) {
	k1, _ := GenerateKey()
	k2, _ := GenerateKey()
	c := valid()
	c.Cluster.Insecure = false
	c.Cluster.KeyFile = writeKeyFile(t, "# rotation in progress\n"+k2+"\n"+k1+"\n", 0o600)
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	keys, err := c.Keys()
	if err != nil || len(keys) != 2 {
		t.Fatalf("Keys() = %d keys, %v; want 2", len(keys), err)
	}
	primary, err := c.Key()
	if want, _ := ParseKey(k2); err != nil || !bytes.Equal(primary, want) || !bytes.Equal(keys[0], want) {
		t.Fatalf("Key() = %v: not the first key of the file", err)
	}

	c.Cluster.KeyFile = writeKeyFile(t, k1+"\nAAAA\n", 0o600)
	ps, _ := errors.AsType[Problems](c.Validate())
	if len(ps) != 1 || ps[0].Path != "cluster.key_file" || !strings.Contains(ps[0].Message, "line 2: key is 3 bytes long") {
		t.Fatalf("Validate of a file with a bad second key = %v", ps)
	}
	if _, err := c.Keys(); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("Keys() of a file with a bad second key = %v", err)
	}

	c.Cluster.Insecure = true
	if keys, err := c.Keys(); keys != nil || err != nil {
		t.Fatalf("Keys() with insecure = %v, %v; want nil, nil", keys, err)
	}
}
