package main

// The rows of the main comparison (rowNames), each timing bale against its reference and
// checking what bale wrote.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/bale-project/bale/layout/dirtree"
	"github.com/bale-project/bale/layout/registry"
)

const copyNA = "n/a (bale copy not available)"

// copySelect: the images of a list, registry storage to registry storage.
func (b *bench) copySelect(*run) error {
	var br *run
	var err error
	if b.copyOK {
		if br, err = b.timed([]string{b.pool, b.listDir}, []string{b.out1}, "",
			b.bale, "copy", "--images", filepath.Join(b.listDir, "images.list"), "registry:"+b.pool, "registry:"+b.out1); err != nil {
			return err
		}
	}
	// The script links blobs relative to the current directory: it must run inside POOL.
	rr, err := b.timed([]string{b.pool, b.listDir}, []string{b.out2}, b.pool,
		b.script("select_registry_images.sh", b.listDir, b.pool, b.out2)...)
	if err != nil {
		return err
	}
	var checks []error
	if br.ok() {
		checks = append(checks, b.verify("registry:"+b.out1), b.countNote("OUT1 (bale)", "registry", b.out1, true))
	}
	if rr.ok() {
		b.countNote("OUT2 (select_registry_images.sh)", "registry", b.out2, false)
	}
	b.ratioRow("copy-select", br, copyNA, rr, copyTarget, checks)
	b.drop(b.out1, b.out2)
	return nil
}

// copyDirToRegistry: a skopeo dir tree to registry storage.
func (b *bench) copyDirToRegistry(tree *run) error {
	if !tree.ok() {
		b.rows = append(b.rows, row{name: "copy-dir-to-registry", bale: "n/a (no TREE)", ref: "n/a (registry_to_skopeo_dir.sh failed)", ratio: "–", target: fmt.Sprintf("≤ %.2f", copyTarget), result: "n/a"})
		return nil
	}
	var br *run
	var err error
	if b.copyOK {
		if br, err = b.timed([]string{b.tree}, []string{b.out3}, "", b.bale, "copy", "dir:"+b.tree, "registry:"+b.out3); err != nil {
			return err
		}
	}
	rr, err := b.timed([]string{b.tree}, []string{b.out4}, "", b.script("skopeo_dir_to_registry.sh", b.tree, b.out4)...)
	if err != nil {
		return err
	}
	var checks []error
	if br.ok() {
		checks = append(checks, b.verify("registry:"+b.out3), b.countNote("OUT3 (bale)", "registry", b.out3, true))
	}
	if rr.ok() {
		b.countNote("OUT4 (skopeo_dir_to_registry.sh)", "registry", b.out4, false)
	}
	b.ratioRow("copy-dir-to-registry", br, copyNA, rr, copyTarget, checks)
	b.drop(b.out3, b.out4)
	return nil
}

// unpackToDir: registry storage to a skopeo dir tree; the reference is the run that made TREE.
func (b *bench) unpackToDir(tree *run) error {
	var br *run
	var err error
	if b.copyOK {
		if br, err = b.timed([]string{b.pool}, []string{b.tree2}, "", b.bale, "copy", "registry:"+b.pool, "dir:"+b.tree2); err != nil {
			return err
		}
	}
	var checks []error
	if br.ok() {
		checks = append(checks, b.verify("dir:"+b.tree2), b.countNote("TREE2 (bale)", "dir", b.tree2, true))
	}
	b.ratioRow("unpack-to-dir", br, copyNA, tree, copyTarget, checks)
	b.drop(b.tree2)
	return nil
}

// packDir: a skopeo dir tree as `skopeo sync` leaves it (every image's layers its own files:
// TREE with its hard links broken by cp -r) packed by bale and by tar | zstd; bale stores
// each blob once. Skipped for -size large (the copied tree would be tens of GB).
func (b *bench) packDir(tree *run) error {
	r := row{name: "pack-dir", bale: "n/a", ref: "n/a", ratio: "–", target: "< 1 (dedup)", result: "n/a"}
	if !tree.ok() || b.size == "large" {
		if b.size == "large" {
			r.bale = "n/a (-size large: the copied tree would be too big)"
		}
		b.rows = append(b.rows, r)
		return nil
	}
	dup, out, ref := filepath.Join(b.work, "TREEC"), filepath.Join(b.work, "BD.tar.zst"), filepath.Join(b.work, "RD.tar.zst")
	if c := execute(b.ctx, "", "cp", "-r", b.tree, dup); !c.ok() {
		return fmt.Errorf("cp -r TREE: %v", c.err)
	}
	du := diskUsage(dup)
	br, err := b.timed([]string{dup}, []string{out}, "", b.bale, "pack", "-o", out, "dir:"+dup)
	if err != nil {
		return err
	}
	rr, err := b.timed([]string{dup}, []string{ref}, "", pipeline("tar -C %s -cf - . | zstd -T0 -3 -q -o %s", dup, ref)...)
	if err != nil {
		return err
	}
	bs, berr := os.Stat(out)
	rs, rerr := os.Stat(ref)
	if br.ok() && rr.ok() && berr == nil && rerr == nil {
		r.bale = fmt.Sprintf("`bale pack -o BD.tar.zst dir:TREEC` (TREEC: TREE copied with cp -r, %s in %d files): %s bytes, %.3f s", mib(du.bytes), du.files, thousands(bs.Size()), br.secs)
		r.ref = fmt.Sprintf("`tar -C TREEC -cf - . | zstd -T0 -3`: %s bytes, %.3f s", thousands(rs.Size()), rr.secs)
		ratio := float64(bs.Size()) / float64(rs.Size())
		r.ratio, r.result = fmt.Sprintf("%.3f (size)", ratio), okMiss(ratio < 1)
	} else if !br.ok() {
		r.result, b.failed = "FAIL", true
	}
	b.rows = append(b.rows, r)
	b.drop(dup, out, ref)
	return nil
}

// pack: the whole pool into one bundle, against tar | zstd -T0 -3.
func (b *bench) pack() error {
	br, err := b.timed([]string{b.pool}, []string{b.bundle}, "", b.bale, "pack", "-o", b.bundle, "registry:"+b.pool)
	if err != nil {
		return err
	}
	var rr *run // the reference, for the pack and unpack rows only
	if b.want("pack") || b.want("unpack") {
		if rr, err = b.timed([]string{b.pool}, []string{b.refBundle}, "",
			pipeline("tar -C %s -cf - docker | zstd -T0 -3 -q -o %s", b.pool, b.refBundle)...); err != nil {
			return err
		}
	}
	b.packRun, b.refPackRun = br, rr
	if !b.want("pack") {
		return nil
	}
	var checks []error
	if br.ok() {
		checks = append(checks, b.verify(b.bundle))
	}
	b.ratioRow("pack", br, "", rr, packTarget, checks)
	sz := row{name: "pack-size", bale: "–", ref: "–", ratio: "–", target: fmt.Sprintf("≤ %.2f", sizeTarget), result: "n/a"}
	bs, berr := os.Stat(b.bundle)
	rs, rerr := os.Stat(b.refBundle)
	if br.ok() && berr == nil {
		sz.bale = "B.tar.zst: " + thousands(bs.Size()) + " bytes"
	}
	if rr.ok() && rerr == nil {
		sz.ref = "R.tar.zst: " + thousands(rs.Size()) + " bytes"
	}
	if br.ok() && rr.ok() && berr == nil && rerr == nil {
		ratio := float64(bs.Size()) / float64(rs.Size())
		sz.ratio, sz.result = fmt.Sprintf("%.3f", ratio), okMiss(ratio <= sizeTarget)
	}
	b.rows = append(b.rows, sz)
	b.rssRow("pack-rss", br)
	return nil
}

// referrers: the pool packed with referrer discovery (the default) against the same pack with
// --no-referrers (issue #12: within 5%). Referrers are added to the pool first (addReferrers:
// cosign signature tags and untagged OCI 1.1 artifacts), after every row that compares with
// the reference scripts has run, so that those rows measure the pool they always measured.
// Both timed runs write BR.tar.zst right after a bundle of that name was removed (an untimed
// pack makes the first one), since on this VM writing a new file costs several times more
// when it does not follow a removal (docs/performance.md, "Machine").
func (b *bench) referrers() error {
	start := time.Now()
	st, err := addReferrers(b.pool, b.images)
	if err != nil {
		return fmt.Errorf("adding referrers to the pool: %w", err)
	}
	syscall.Sync()
	u := diskUsage(b.pool)
	b.header = append(b.header, fmt.Sprintf("Referrers (added to POOL for the referrers row, after the other rows that read it): "+
		"every %dth image has a cosign-style signature (tag sha256-<hex>.sig: an OCI manifest with a simple-signing layer), %d in all; "+
		"every %dth an untagged OCI 1.1 artifact (%s, subject the image, a revision only), %d in all; "+
		"POOL then holds %d files, %s, added in %.2f s.",
		sigEvery, st.sigs, artifactEvery, artifactTypeSBOM, st.artifacts, u.files, mib(u.bytes), time.Since(start).Seconds()))
	out := b.refsBundle
	pool := "registry:" + b.pool
	if err := warm(b.pool); err != nil {
		return err
	}
	b.logf("untimed pack into BR.tar.zst (so that both timed packs follow its removal)")
	if w := execute(b.ctx, "", b.bale, "pack", "--no-referrers", "-o", out, pool); !w.ok() {
		b.note("untimed `%s` failed: %v: %s", b.show(w), w.err, w.tail())
	}
	if err := b.ctx.Err(); err != nil {
		return err
	}
	dr, err := b.timed([]string{b.pool}, []string{out}, "", b.bale, "pack", "-o", out, pool)
	if err != nil {
		return err
	}
	var checks []error
	if dr.ok() {
		checks = append(checks, b.verify(out), b.checkReferrers(out, "BR.tar.zst (discovery)", st.sigs, st.artifacts))
	}
	nr, err := b.timed([]string{b.pool}, []string{out}, "", b.bale, "pack", "--no-referrers", "-o", out, pool)
	if err != nil {
		return err
	}
	if nr.ok() {
		checks = append(checks, b.checkReferrers(out, "BR.tar.zst (--no-referrers)", 0, 0))
	}
	b.ratioRow("referrers", dr, "", nr, referrersTarget, checks)
	if i := len(b.rows) - 1; b.rows[i].ratio != "–" && nr.ok() {
		b.rows[i].ratio += " (discovery / --no-referrers)"
	}
	if dr.ok() && nr.ok() && nr.cpu > 0 {
		// CPU time moves less than wall time when other work shares the machine.
		b.note("referrers: CPU time (user+sys) of pack %.2f s with discovery, %.2f s with --no-referrers: %.3f", dr.cpu, nr.cpu, dr.cpu/nr.cpu)
	}
	b.rssRow("referrers-rss", dr)
	b.drop(out)
	return nil
}

// checkReferrers checks, with `bale list --json`, that bundle holds every image of the pool
// and, under them, sigs cosign signatures and artifacts SBOMs, nothing else.
func (b *bench) checkReferrers(bundle, what string, sigs, artifacts int) error {
	r := execute(b.ctx, "", b.bale, "list", "--json", bundle)
	if !r.ok() {
		return fmt.Errorf("bale list --json %s: %v", what, r.err)
	}
	var doc struct {
		Images []struct {
			Referrers []struct {
				Kind string `json:"kind"`
			} `json:"referrers"`
		} `json:"images"`
	}
	if err := json.Unmarshal([]byte(r.out), &doc); err != nil {
		return fmt.Errorf("bale list --json %s: %v", what, err)
	}
	kinds := map[string]int{}
	total := 0
	for _, im := range doc.Images {
		for _, ref := range im.Referrers {
			kinds[ref.Kind]++
			total++
		}
	}
	if len(doc.Images) != b.n || kinds["sig"] != sigs || kinds[artifactTypeSBOM] != artifacts || total != sigs+artifacts {
		return fmt.Errorf("bale list --json %s: %d images, referrers by kind %v; want %d images, %d sig and %d %s",
			what, len(doc.Images), kinds, b.n, sigs, artifacts, artifactTypeSBOM)
	}
	b.note("check: bale list --json %s shows %d/%d images, %d sig and %d %s referrers", what, len(doc.Images), b.n, kinds["sig"], kinds[artifactTypeSBOM], artifactTypeSBOM)
	return nil
}

// list: the catalog at the head of the bundle.
func (b *bench) list() error {
	r := row{name: "list", bale: "n/a (bale pack failed)", ref: "–", ratio: "–", target: fmt.Sprintf("< %.0f ms", listTargetSecs*1000), result: "n/a"}
	if b.packRun.ok() {
		// One untimed run reads what list reads.
		execute(b.ctx, "", b.bale, "list", b.bundle)
		lr, err := b.timed(nil, nil, "", b.bale, "list", b.bundle)
		if err != nil {
			return err
		}
		r.bale = b.cell(lr, "")
		if lr.ok() {
			r.result = okMiss(lr.secs < listTargetSecs)
			if err := b.checkList(); err != nil {
				r.result += " (check FAILED)"
				b.failed = true
				b.note("check: %v", err)
			}
		} else {
			r.result = "FAIL"
			b.failed = true
		}
	}
	b.rows = append(b.rows, r)
	return nil
}

// checkList compares the image count of `bale list --json` with the pool.
func (b *bench) checkList() error {
	r := execute(b.ctx, "", b.bale, "list", "--json", b.bundle)
	if !r.ok() {
		return fmt.Errorf("bale list --json: %v", r.err)
	}
	var doc struct {
		Images []json.RawMessage `json:"images"`
	}
	if err := json.Unmarshal([]byte(r.out), &doc); err != nil {
		return fmt.Errorf("bale list --json: %v", err)
	}
	if len(doc.Images) != b.n {
		return fmt.Errorf("bale list --json shows %d images, the pool has %d", len(doc.Images), b.n)
	}
	b.note("check: bale list --json B.tar.zst shows %d/%d images", len(doc.Images), b.n)
	return nil
}

// unpack: the bundle into registry storage, against zstd -dc | tar -x.
func (b *bench) unpack() error {
	var br *run
	var err error
	if b.packRun.ok() {
		if br, err = b.timed([]string{b.bundle}, []string{b.unX}, "", b.bale, "unpack", "--to", "registry:"+b.unX, b.bundle); err != nil {
			return err
		}
		b.unpackRun = br
	}
	var checks []error
	if br.ok() {
		checks = append(checks, b.verify("registry:"+b.unX), b.countNote("X (bale unpack)", "registry", b.unX, true))
		if b.want("serve") {
			b.serve()
		}
		if b.want("serve-load") { // in serveload.go
			b.serveLoad()
		}
		if b.want("serve-pulls") { // in servepulls.go
			b.servePulls()
		}
	}
	b.drop(b.unX)
	if !b.want("unpack") { // here for serve only
		return nil
	}
	var rr *run
	if b.refPackRun.ok() {
		if err := os.RemoveAll(b.unY); err != nil {
			return err
		}
		if err := os.MkdirAll(b.unY, 0o755); err != nil {
			return err
		}
		if rr, err = b.timed([]string{b.refBundle}, nil, "", pipeline("zstd -dc %s | tar -x -C %s", b.refBundle, b.unY)...); err != nil {
			return err
		}
		if rr.ok() {
			b.countNote("Y (zstd | tar)", "registry", b.unY, false)
		}
		b.drop(b.unY)
	}
	b.ratioRow("unpack", br, "n/a (bale pack failed)", rr, packTarget, checks)
	b.rssRow("unpack-rss", br)
	return nil
}

// verify runs `bale verify loc` (untimed).
func (b *bench) verify(loc string) error {
	r := execute(b.ctx, "", b.bale, "verify", loc)
	if !r.ok() {
		return fmt.Errorf("`%s`: %v: %s", b.show(r), r.err, r.tail())
	}
	b.note("check: `%s` ok", b.show(r))
	return nil
}

// countNote counts the tags of a registry storage root or dir tree and notes the count; it is
// an error for a bale output (strict) to hold other than every tag of the pool.
func (b *bench) countNote(what, kind, root string, strict bool) error {
	var n int
	var err error
	if kind == "registry" {
		var s *registry.Store
		if s, err = registry.Open(root); err == nil {
			refs, e := s.Refs()
			n, err = len(refs), e
		}
	} else {
		var t *dirtree.Tree
		if t, err = dirtree.Open(root); err == nil {
			refs, e := t.Refs()
			n, err = len(refs), e
		}
	}
	switch {
	case err != nil:
		err = fmt.Errorf("%s: counting tags: %v", what, err)
	case n != b.n:
		err = fmt.Errorf("%s holds %d tags, the pool %d", what, n, b.n)
	}
	if err != nil && !strict {
		b.note("reference output: %v", err)
		return nil
	}
	if err == nil {
		b.note("check: %s holds %d/%d tags", what, n, b.n)
	}
	return err
}
