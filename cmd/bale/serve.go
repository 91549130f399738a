package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/archive/serve"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Usage:     "serve bundles as a read-only registry, without unpacking them",
		ArgsUsage: "BUNDLE [PATCH...]",
		Description: `Serves the images of the bundles (a base and its patches, in order, as one view: the
patched release) over the pull side of the OCI distribution-spec 1.1 (Registry HTTP API v2):
/v2/, manifests and blobs by tag or digest with HEAD, GET and Range, tags/list, _catalog and
the referrers API (/v2/NAME/referrers/DIGEST, with ?artifactType=: the signatures, SBOMs and
other artifacts the bundles carry for a manifest, so oras discover lists them; a patch may
add some). A manifest asked for by tag is sent with Cache-Control: no-cache (a patch may move
the tag), one asked for by digest and blobs with a year's caching. Nothing is unpacked: each
request decompresses only the frames it needs (bundles of bale 0.1, without a seek table,
are decoded from their start instead, which is slower). Blobs are verified as they are sent.
A split bundle is given by its first volume (or its name), and its volumes are checked
first. Ctrl-C stops it.

Examples:
   bale serve release-1.0.tar.zst patch-1.1.tar.zst
   skopeo copy --all --src-tls-verify=false docker://127.0.0.1:5000/kubesphere/ks-apiserver:v3.1.0 dir:/tmp/x
   oras discover --plain-http 127.0.0.1:5000/kubesphere/ks-apiserver:v3.1.0
   bale serve --addr 0.0.0.0:443 --tls-cert site.crt --tls-key site.key /media/usb/release.tar.zst.001

` + exitCodesHelp,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:5000", Usage: "listen on `HOST:PORT` (port 0: any free port, printed)"},
			&cli.StringFlag{Name: "tls-cert", Usage: "serve https with the certificate in `FILE` (PEM; with --tls-key)"},
			&cli.StringFlag{Name: "tls-key", Usage: "the private key of --tls-cert, in `FILE` (PEM)"},
			imageKeyFlag,
			imageIdentityFlag,
			imageIdentityRegexpFlag,
			imageIssuerFlag,
			imageIssuerRegexpFlag,
		}, trustFlags()...),
		Action: func(cx *cli.Context) error {
			if cx.NArg() == 0 {
				return usagef("serve takes BUNDLE [PATCH...] (see bale serve --help)")
			}
			if err := checkArgs(cx, cx.NArg(), "BUNDLE [PATCH...]"); err != nil {
				return err
			}
			cert, key := cx.String("tls-cert"), cx.String("tls-key")
			if (cert == "") != (key == "") {
				return usagef("--tls-cert and --tls-key go together")
			}
			for _, a := range cx.Args().Slice() {
				loc, err := parseLocation(a, true)
				if err != nil {
					return err
				}
				if loc.Kind != kindBundle {
					return usagef("%s is not a bundle: bale serve serves bundle files (serve a registry storage dir with docker-registry)", a)
				}
			}
			// Each bundle's own signatures, then its images', before it listens.
			if err := checkBundleTrust(cx, cx.App.ErrWriter, cx.Args().Slice()); err != nil {
				return err
			}
			view, err := serve.Open(cx.Context, cx.Args().Slice())
			if err != nil {
				return err
			}
			defer view.Close()
			if err := checkSourceSignatures(cx, view.Source()); err != nil {
				return err // --image-key: an image without a valid signature is not served
			}
			view.Log = log.New(cx.App.ErrWriter, "", log.LstdFlags) // one line per request the bundle fails
			ln, err := net.Listen("tcp", cx.String("addr"))
			if err != nil {
				return err
			}
			scheme := "http"
			if cert != "" {
				scheme = "https"
			}
			srv := &http.Server{Handler: view, ReadHeaderTimeout: 30 * time.Second}
			fmt.Fprintf(cx.App.ErrWriter, "serving %d images of %s on %s://%s (Ctrl-C stops)\n",
				view.Images(), strings.Join(cx.Args().Slice(), " + "), scheme, ln.Addr())
			errc := make(chan error, 1)
			go func() {
				if cert != "" {
					errc <- srv.ServeTLS(ln, cert, key)
				} else {
					errc <- srv.Serve(ln)
				}
			}()
			select {
			case err := <-errc:
				return err
			case <-cx.Context.Done():
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(ctx)
				if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
					return err
				}
				fmt.Fprintln(cx.App.ErrWriter, "stopped")
				return nil
			}
		},
	}
}
