package seal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
)

// LocalKeyset returns a Sealer using the AES-256-GCM Tink keyset in the file
// at path (Tink's JSON keyset format, in clear: the file is the key). On first
// use the file is created with mode 0600, its missing parent directories with
// mode 0700; later calls reuse it, so old ciphertexts stay readable. A keyset
// file that group or others may read or write is refused: fix it with
// chmod 600. Creation is atomic, so two processes starting together end up
// with the same keyset.
func LocalKeyset(path string) (Sealer, error) {
	h, err := loadOrCreateKeyset(path)
	if err != nil {
		return nil, err
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("keyset %s is not an AEAD keyset: %w", path, err)
	}
	return &aeadSealer{aead: withContext{a}}, nil
}

func loadOrCreateKeyset(path string) (*keyset.Handle, error) {
	h, err := readKeysetFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return h, err
	}
	return createKeysetFile(path)
}

func readKeysetFile(path string) (*keyset.Handle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open keyset: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat keyset: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keyset %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("keyset %s has mode %#o, open to group or others; run chmod 600 on it", path, perm)
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(f))
	if err != nil {
		return nil, fmt.Errorf("read keyset %s: %w", path, err)
	}
	return h, nil
}

func createKeysetFile(path string) (*keyset.Handle, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("generate keyset: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create keyset directory: %w", err)
	}
	// Write a private temporary file, then link it into place: the keyset
	// appears complete or not at all, and never replaces an existing one.
	tmp, err := os.CreateTemp(dir, ".keyset-*.tmp") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("create keyset: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create keyset: %w", err)
	}
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(tmp)); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write keyset: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write keyset: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write keyset: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created it first: use theirs.
			return readKeysetFile(path)
		}
		return nil, fmt.Errorf("install keyset: %w", err)
	}
	return h, nil
}
