package imagetest

import (
	"fmt"
	"math/rand/v2"

	"github.com/opencontainers/go-digest"
)

// Releases returns three successive releases of one product, for patch tests. Layers hold
// random (incompressible) bytes, so sizes behave like real gzip layers:
//
//   - A: rel/app-0 … rel/app-5 (Docker and OCI, each a shared base layer of about 1.5 MB plus
//     its own top layer of about 300 KB), rel/multi (an OCI index, linux/amd64 and
//     linux/arm64/v8) and rel/old, all tagged v1;
//   - B: app-4 and app-5 changed (new top layers on the same bases), rel/new added, rel/old
//     removed;
//   - C: app-0 changed, rel/newer added.
//
// Every call returns identical bytes.
func Releases() (a, b, c *Corpus) {
	bl := newBuilder()
	rng := rand.New(rand.NewPCG(7, 0x72656c))
	noise := func(n int) string {
		buf := make([]byte, n)
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		return string(buf)
	}
	amd64 := Platform{Architecture: "amd64", OS: "linux"}
	arm64 := Platform{Architecture: "arm64", OS: "linux", Variant: "v8"}
	bases := []layer{
		bl.layer("/bin/sh -c #(nop) ADD file:rel-base-0 in / ", false, file{name: "usr/lib/base0.bin", mode: 0o644, body: noise(1500 << 10)}),
		bl.layer("/bin/sh -c #(nop) ADD file:rel-base-1 in / ", false, file{name: "usr/lib/base1.bin", mode: 0o644, body: noise(1200 << 10)}),
	}
	app := func(name, version string, base int, f format, p Platform) Descriptor {
		top := bl.layer("/bin/sh -c #(nop) COPY dir:"+name+" in / ", false,
			append(appFiles(name, version), file{name: "opt/" + name + "/payload.bin", mode: 0o644, body: noise(300 << 10)})...)
		return bl.image(imageSpec{format: f, platform: p, layers: []layer{bases[base], top}, cmd: []string{"/usr/local/bin/" + name}})
	}
	formats := []format{docker, oci}
	var apps []Image
	for i := range 6 {
		d := app(fmt.Sprintf("app-%d", i), "1.0", i%2, formats[i%2], amd64)
		apps = append(apps, tagged(fmt.Sprintf("rel/app-%d", i), "v1", d))
	}
	ca, cb := app("multi", "1.0", 0, oci, amd64), app("multi", "1.0-arm", 1, oci, arm64)
	multi := tagged("rel/multi", "v1", bl.index(oci, ca, cb), ca, cb)
	old := tagged("rel/old", "v1", app("old", "1.0", 0, docker, amd64))

	imgsA := append(append([]Image{}, apps...), multi, old)

	imgsB := append([]Image{}, apps...)
	for _, i := range []int{4, 5} {
		imgsB[i] = tagged(fmt.Sprintf("rel/app-%d", i), "v1", app(fmt.Sprintf("app-%d", i), "1.1", i%2, formats[i%2], amd64))
	}
	imgsB = append(imgsB, multi, tagged("rel/new", "v1", app("new", "1.1", 1, oci, amd64)))

	imgsC := append([]Image{}, imgsB...)
	imgsC[0] = tagged("rel/app-0", "v1", app("app-0", "1.2", 0, docker, amd64))
	imgsC = append(imgsC, tagged("rel/newer", "v1", app("newer", "1.2", 0, docker, amd64)))

	return bl.subset(imgsA), bl.subset(imgsB), bl.subset(imgsC)
}

// subset returns the corpus of images with only the blobs they use.
func (b *builder) subset(images []Image) *Corpus {
	c := &Corpus{Images: images, Blobs: map[digest.Digest][]byte{}}
	all := &Corpus{Blobs: b.blobs}
	for _, img := range images {
		c.Blobs[img.Digest] = b.blobs[img.Digest]
		for _, ch := range img.Children {
			c.Blobs[ch] = b.blobs[ch]
		}
		ds, err := all.BlobDigests(img)
		if err != nil {
			panic(fmt.Sprintf("imagetest: %v", err))
		}
		for _, d := range ds {
			c.Blobs[d] = b.blobs[d]
		}
	}
	return c
}
