package catalog

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
)

// bbolt's on-disk structures (go.etcd.io/bbolt internal/common: page.go, meta.go), as far as
// checkPages needs them. Little-endian: bale runs on amd64 and arm64.
const (
	pageHeaderSize  = 16 // id u64, flags u16, count u16, overflow u32
	pageElementSize = 16 // branch: pos, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	bucketHeader    = 16 // root pgid u64, sequence u64
	metaChecksumOff = 56 // bytes of the meta struct covered by its FNV-64a checksum

	branchPage   = 0x01
	leafPage     = 0x02
	metaMagic    = 0xED0CDAED
	metaVersion  = 2
	bucketLeaf   = 0x01
	maxTreeDepth = 64
)

// checkPages walks the page graph of a bbolt file before bbolt reads it: a catalog comes from
// an untrusted bundle, and bbolt trusts its pages (a page that names itself makes its cursor
// descend forever; a page id past the end faults). It checks the meta page bbolt would pick,
// then every page reachable from the root bucket: in bounds, below the high-water mark, of the
// right type, visited once, with every element inside its page, at most maxTreeDepth deep.
// bbolt's own Check is not used because it runs in a goroutine of its own, where a fault cannot
// be recovered.
func checkPages(b []byte) error {
	const ps = PageSize
	if len(b) < 2*ps || len(b)%ps != 0 {
		return fmt.Errorf("%d bytes is not a whole number of %d-byte pages", len(b), ps)
	}
	type meta struct{ root, pgid, txid uint64 }
	var best *meta
	for i := range 2 {
		m := b[i*ps+pageHeaderSize:]
		le := binary.LittleEndian
		if le.Uint32(m[0:]) != metaMagic || le.Uint32(m[4:]) != metaVersion || le.Uint32(m[8:]) != ps {
			continue
		}
		h := fnv.New64a()
		h.Write(m[:metaChecksumOff])
		if h.Sum64() != le.Uint64(m[metaChecksumOff:]) {
			continue
		}
		cur := &meta{root: le.Uint64(m[16:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}
		if best == nil || cur.txid > best.txid {
			best = cur
		}
	}
	if best == nil {
		return fmt.Errorf("no valid meta page (magic, version, page size %d, checksum)", ps)
	}
	if best.pgid > uint64(len(b)/ps) {
		return fmt.Errorf("the database claims %d pages, the file holds %d", best.pgid, len(b)/ps)
	}
	w := pageWalker{b: b, hw: best.pgid, seen: map[uint64]bool{}}
	return w.page(best.root, 0)
}

type pageWalker struct {
	b    []byte
	hw   uint64 // high-water mark: every page id is below it
	seen map[uint64]bool
}

// page checks the on-disk page id and what it references.
func (w *pageWalker) page(id uint64, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("page tree deeper than %d", maxTreeDepth)
	}
	if id < 2 || id >= w.hw {
		return fmt.Errorf("page id %d out of range [2, %d)", id, w.hw)
	}
	if w.seen[id] {
		return fmt.Errorf("page %d referenced twice", id)
	}
	w.seen[id] = true
	off := id * PageSize
	hdr := w.b[off:]
	le := binary.LittleEndian
	if le.Uint64(hdr) != id {
		return fmt.Errorf("page %d has id %d", id, le.Uint64(hdr))
	}
	overflow := uint64(le.Uint32(hdr[12:]))
	if id+overflow >= w.hw {
		return fmt.Errorf("page %d overflows past the high-water mark", id)
	}
	return w.elements(w.b[off:off+(overflow+1)*PageSize], depth, fmt.Sprintf("page %d", id), false)
}

// elements checks the elements of a page's bytes p (an on-disk page or an inline bucket).
func (w *pageWalker) elements(p []byte, depth int, what string, inline bool) error {
	le := binary.LittleEndian
	if len(p) < pageHeaderSize {
		return fmt.Errorf("%s: shorter than a page header", what)
	}
	flags, count := le.Uint16(p[8:]), int(le.Uint16(p[10:]))
	switch {
	case flags != branchPage && flags != leafPage:
		return fmt.Errorf("%s: type %#x where a branch or leaf page belongs", what, flags)
	case flags == branchPage && count == 0:
		return fmt.Errorf("%s: a branch page without elements", what)
	case flags == branchPage && inline:
		return fmt.Errorf("%s: an inline bucket holds a branch page", what)
	case pageHeaderSize+count*pageElementSize > len(p):
		return fmt.Errorf("%s: %d elements do not fit", what, count)
	}
	for i := range count {
		e := pageHeaderSize + i*pageElementSize
		el := p[e : e+pageElementSize]
		switch flags {
		case branchPage:
			pos, ksize := int(le.Uint32(el[0:])), int(le.Uint32(el[4:]))
			if !inside(len(p), e, pos, ksize) {
				return fmt.Errorf("%s: branch element %d out of the page", what, i)
			}
			if err := w.page(le.Uint64(el[8:]), depth+1); err != nil {
				return err
			}
		case leafPage:
			eflags, pos, ksize, vsize := le.Uint32(el[0:]), int(le.Uint32(el[4:])), int(le.Uint32(el[8:])), int(le.Uint32(el[12:]))
			if !inside(len(p), e, pos, ksize+vsize) || ksize+vsize < 0 {
				return fmt.Errorf("%s: leaf element %d out of the page", what, i)
			}
			if eflags&bucketLeaf == 0 {
				continue
			}
			v := p[e+pos+ksize : e+pos+ksize+vsize]
			if len(v) < bucketHeader {
				return fmt.Errorf("%s: bucket element %d shorter than a bucket header", what, i)
			}
			if root := le.Uint64(v); root != 0 {
				if err := w.page(root, depth+1); err != nil {
					return err
				}
			} else if err := w.elements(v[bucketHeader:], depth+1, what+" inline bucket", true); err != nil {
				return err
			}
		}
	}
	return nil
}

// inside reports whether n bytes at element offset e plus pos lie within a page of size.
func inside(size, e, pos, n int) bool {
	start := e + pos
	return pos >= 0 && n >= 0 && start >= e && start <= size && n <= size-start
}
