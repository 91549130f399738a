package catalog

// WriteNested writes c settled, with meta/format set to format: for 1 to 3, as bale 0.3
// wrote catalogs (a bucket per repository). The tests of the reader's old path use it, beside
// the committed seed of that time.
func WriteNested(path string, c *Catalog, format int) error {
	c.settle()
	c.Meta.Format = format
	return Write(path, c)
}
