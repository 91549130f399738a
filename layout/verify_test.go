package layout_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/bale-project/bale/layout"
)

func TestVerifier(t *testing.T) {
	content := []byte("the quick brown fox jumps over the lazy dog")
	d := layout.Descriptor{Digest: sha(content), Size: int64(len(content))}
	other := append([]byte{}, content...)
	other[5] ^= 1
	readers := map[string]func([]byte) io.Reader{
		"plain":    func(b []byte) io.Reader { return bytes.NewReader(b) },
		"one byte": func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
		"data+EOF": func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
		"half":     func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
	}
	tests := []struct {
		name string
		in   []byte
		d    layout.Descriptor
		ok   bool
	}{
		{"exact", content, d, true},
		{"empty blob", nil, layout.Descriptor{Digest: sha(nil), Size: 0}, true},
		{"short read", content[:len(content)-1], d, false},
		{"nothing", nil, d, false},
		{"long read", append(append([]byte{}, content...), '!'), d, false},
		{"much longer", bytes.Repeat(content, 100), d, false},
		{"wrong bytes, right size", other, d, false},
		{"right bytes, size says more", content, layout.Descriptor{Digest: d.Digest, Size: d.Size + 1}, false},
		{"right bytes, size says less", content, layout.Descriptor{Digest: d.Digest, Size: d.Size - 1}, false},
		{"negative size", content, layout.Descriptor{Digest: d.Digest, Size: -1}, false},
	}
	for _, tt := range tests {
		for rname, mk := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				got, err := io.ReadAll(layout.NewVerifier(mk(tt.in), tt.d))
				if tt.ok {
					if err != nil {
						t.Fatalf("ReadAll: %v", err)
					}
					if !bytes.Equal(got, tt.in) {
						t.Errorf("read %q, want %q", got, tt.in)
					}
					return
				}
				if !errors.Is(err, layout.ErrDigestMismatch) {
					t.Errorf("err = %v, want ErrDigestMismatch", err)
				}
			})
		}
		t.Run(tt.name+"/VerifyBytes", func(t *testing.T) {
			err := layout.VerifyBytes(tt.in, tt.d)
			if tt.ok && err != nil {
				t.Errorf("VerifyBytes: %v", err)
			}
			if !tt.ok && !errors.Is(err, layout.ErrDigestMismatch) {
				t.Errorf("VerifyBytes = %v, want ErrDigestMismatch", err)
			}
		})
	}
}

// countingReader is an endless stream of 'x' that counts what is read from it.
type countingReader struct{ n int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	c.n += int64(len(p))
	return len(p), nil
}

func TestVerifierReadsAtMostSizePlusOne(t *testing.T) {
	const size = 1000
	src := &countingReader{}
	d := layout.Descriptor{Digest: sha(bytes.Repeat([]byte("x"), size)), Size: size}
	_, err := io.Copy(io.Discard, layout.NewVerifier(src, d))
	if !errors.Is(err, layout.ErrDigestMismatch) {
		t.Fatalf("endless stream: err = %v, want ErrDigestMismatch", err)
	}
	if src.n > size+1 {
		t.Errorf("read %d bytes from the source, want at most %d", src.n, size+1)
	}
}

func TestVerifierStickyError(t *testing.T) {
	d := layout.Descriptor{Digest: shaOf("abc"), Size: 3}
	v := layout.NewVerifier(strings.NewReader("abd"), d)
	if _, err := io.ReadAll(v); !errors.Is(err, layout.ErrDigestMismatch) {
		t.Fatalf("err = %v, want ErrDigestMismatch", err)
	}
	if n, err := v.Read(make([]byte, 8)); n != 0 || !errors.Is(err, layout.ErrDigestMismatch) {
		t.Errorf("Read after failure = %d, %v; want 0, ErrDigestMismatch", n, err)
	}
}

func TestVerifierPassesReadErrors(t *testing.T) {
	boom := errors.New("boom")
	d := layout.Descriptor{Digest: shaOf("abc"), Size: 3}
	_, err := io.ReadAll(layout.NewVerifier(iotest.ErrReader(boom), d))
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want the reader's error", err)
	}
}
