package testenv

import (
	"os"
	"slices"
	"testing"
)

// Leftovers lists the entries of dir other than the names given: what a failed or finished
// write left beside its result (a temporary file, a stage).
func Leftovers(t testing.TB, dir string, except ...string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !slices.Contains(except, e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}
