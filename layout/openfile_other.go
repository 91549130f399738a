//go:build !linux

package layout

import "io"

// OpenRegularReader is OpenRegular for a caller that only reads the file through to its end.
func OpenRegularReader(path string) (io.ReadCloser, int64, error) {
	f, size, err := OpenRegular(path)
	if err != nil {
		return nil, 0, err
	}
	return f, size, nil
}
