package archive

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// SignatureSuffix ends the name of a signature file beside a bundle (bale sign).
const SignatureSuffix = ".sigstore.json"

// SignatureBase is the path signature files of the bundle at path are named after: the bundle
// file, or for a split bundle its first volume (PATH.001).
func SignatureBase(path string) string {
	if first := FirstVolume(path); first != "" {
		return first
	}
	return path
}

// SignatureFileName is the name of signature file n of base: base.sigstore.json for 1, else
// base.<n>.sigstore.json.
func SignatureFileName(base string, n int) string {
	if n == 1 {
		return base + SignatureSuffix
	}
	return base + "." + strconv.Itoa(n) + SignatureSuffix
}

// SignatureFiles returns the signature files beside the bundle at path, in order:
// <base>.sigstore.json and <base>.<n>.sigstore.json (n from 2), where base is
// SignatureBase(path). Package bundlesig reads them; they are named here, with the bundle,
// so that a reader that checks no signature can tell that there are none.
func SignatureFiles(path string) ([]string, error) {
	base := SignatureBase(path)
	entries, err := os.ReadDir(filepath.Dir(base))
	if err != nil {
		return nil, err
	}
	prefix := filepath.Base(base) + "."
	type numbered struct {
		n    int
		path string
	}
	var found []numbered
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, SignatureSuffix) {
			continue
		}
		mid := strings.TrimSuffix(strings.TrimPrefix(name, prefix), SignatureSuffix)
		n := 1
		if name != filepath.Base(base)+SignatureSuffix {
			if n, err = strconv.Atoi(mid); err != nil || n < 2 || strconv.Itoa(n) != mid {
				continue
			}
		}
		found = append(found, numbered{n, filepath.Join(filepath.Dir(base), name)})
	}
	sort.Slice(found, func(i, j int) bool { return found[i].n < found[j].n })
	out := make([]string, len(found))
	for i, f := range found {
		out[i] = f.path
	}
	return out, nil
}
