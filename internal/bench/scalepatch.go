package main

import (
	"fmt"
	"os"
	"strings"
)

// scalePatchTarget is the goal of #19 for a patch: at most this many times the size of the
// tags it adds packed alone.
const scalePatchTarget = 1.5

// patchFigures are the scale-patch measurements of one pool: the patch of the N/20 tags the
// base lacks, those tags packed alone, and the unpacking of the base then the patch.
type patchFigures struct {
	newTags              int
	patchBytes, newBytes int64
	baseUnpack, unpack   *run
	err                  error
}

// scalePatch measures, on set s, the patch pack --base makes (every tag against the base
// that lacks every scaleNewEvery-th): its size against those tags packed alone, and its unpack
// onto the base's unpacked storage against the base's own unpack.
func (b *bench) scalePatch(s *scaleSet) *patchFigures {
	f := &patchFigures{}
	images := poolNames(s.n)
	var list strings.Builder
	for i, im := range images {
		if i%scaleNewEvery == scaleNewEvery/2 {
			list.WriteString(im.String() + "\n")
			f.newTags++
		}
	}
	newList, alone, patch, target := s.at("new.list"), s.at("NEW.tar.zst"), s.at("PATCH.tar.zst"), s.at("U")
	defer b.retire(alone, patch, target)
	if f.err = os.WriteFile(newList, []byte(list.String()), 0o644); f.err != nil {
		return f
	}
	for _, argv := range [][]string{
		{"pack", "--images", newList, "-o", alone, "registry:" + s.pool},
		{"pack", "--base", s.base, "-o", patch, "registry:" + s.pool},
	} {
		if r := execute(b.ctx, "", append([]string{b.bale}, argv...)...); !r.ok() {
			f.err = fmt.Errorf("untimed %s: %v: %s", strings.Join(argv, " "), r.err, r.tail())
			return f
		}
	}
	if f.patchBytes, f.err = fileBytes(patch); f.err != nil {
		return f
	}
	if f.newBytes, f.err = fileBytes(alone); f.err != nil {
		return f
	}
	s.loads["patch"] = loadAvg()
	if f.baseUnpack, f.err = b.timed([]string{s.base}, []string{target}, "", b.bale, "unpack", "--to", "registry:"+target, s.base); f.err != nil {
		return f
	}
	if f.unpack, f.err = b.timed([]string{patch}, nil, "", b.bale, "unpack", "--to", "registry:"+target, patch); f.err != nil {
		return f
	}
	for _, r := range []*run{f.baseUnpack, f.unpack} {
		if !r.ok() {
			f.err = fmt.Errorf("%s: %v: %s", strings.Join(r.argv, " "), r.err, r.tail())
		}
	}
	b.logf("scale %d patch: %d new tags, patch %d bytes, alone %d (%.2fx); unpack base %.2f s, patch %.2f s",
		s.n, f.newTags, f.patchBytes, f.newBytes, f.sizeRatio(), f.baseUnpack.secs, f.unpack.secs)
	return f
}

// sizeRatio is the patch's size over its new tags' packed alone.
func (f *patchFigures) sizeRatio() float64 {
	return float64(f.patchBytes) / float64(max(f.newBytes, 1))
}

// mib2 formats a byte count in MiB with two decimals: patches of a few hundred tags are small.
func mib2(n int64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

func fileBytes(p string) (int64, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// patchRow adds the row of the patches of the small and the big set.
func (b *bench) patchRow(small, big *scaleSet) {
	cell := func(s *scaleSet) string {
		f := s.patch
		if f == nil {
			return "n/a"
		}
		if f.err != nil {
			return fmt.Sprintf("%d tags: FAILED (%v)", s.n, f.err)
		}
		return fmt.Sprintf("%d tags: patch of %d new tags %s, those tags alone %s (%.2fx); unpack onto the base: wall %.2f s, CPU %.2f s, vs the base's %.2f s, %.2f s (load %s)",
			s.n, f.newTags, mib2(f.patchBytes), mib2(f.newBytes), f.sizeRatio(), f.unpack.secs, f.unpack.cpu, f.baseUnpack.secs, f.baseUnpack.cpu, s.loads["patch"])
	}
	r := row{name: "scale-patch", bale: cell(small), ref: cell(big), ratio: "–",
		target: fmt.Sprintf("patch ≤ %.1fx its new tags packed alone; unpack in proportion to them", scalePatchTarget), result: "n/a"}
	sf, bf := small.patch, big.patch
	if sf == nil || bf == nil || sf.err != nil || bf.err != nil {
		r.result, b.failed = "FAIL", true
		b.rows = append(b.rows, r)
		return
	}
	r.ratio = fmt.Sprintf("%.2fx the size at %d tags, %.2fx at %d; unpack %.2fx of the base's wall time at %d tags",
		sf.sizeRatio(), small.n, bf.sizeRatio(), big.n, bf.unpack.secs/max(bf.baseUnpack.secs, 0.001), big.n)
	r.result = okMiss(sf.sizeRatio() <= scalePatchTarget && bf.sizeRatio() <= scalePatchTarget)
	b.rows = append(b.rows, r)
}
