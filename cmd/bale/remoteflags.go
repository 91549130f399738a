package main

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/remote"
)

// remoteFlags are skopeo's flags for a live registry on one side ("src" or "dest").
func remoteFlags(side string) []cli.Flag {
	what := map[string]string{"src": "source", "dest": "destination"}[side]
	return []cli.Flag{
		&cli.StringFlag{Name: side + "-creds", Usage: "log in to the " + what + " registry as `USER:PASS`"},
		&cli.StringFlag{Name: side + "-authfile", Usage: "take " + what + " registry credentials from `FILE` (docker config.json or containers auth.json; default ~/.docker/config.json, $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json)"},
		&cli.BoolFlag{Name: side + "-tls-verify", Value: true, Usage: "verify the " + what + " registry's TLS certificate (false also allows plain http)"},
		&cli.StringFlag{Name: side + "-cert-dir", Usage: "trust the CA certificates (*.crt) and use the client certificates (*.cert, *.key) in `DIR` for the " + what + " registry"},
	}
}

// jobsFlag is how many blobs go over the network at once.
var jobsFlag = &cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 4, Usage: "pull or push `N` blobs at once (at least 1)", Action: atLeastOne}

// remoteOptions reads the flags of one side.
func remoteOptions(cx *cli.Context, side string) (remote.Options, error) {
	o := remote.Options{
		AuthFile:    cx.String(side + "-authfile"),
		NoTLSVerify: !cx.Bool(side + "-tls-verify"),
		CertDir:     cx.String(side + "-cert-dir"),
		Jobs:        cx.Int("jobs"),
		Context:     cx.Context,
		Flags:       side,
	}
	if c := cx.String(side + "-creds"); c != "" {
		u, p, ok := strings.Cut(c, ":")
		if !ok || u == "" {
			return o, usagef("--%s-creds %q: want USER:PASS", side, c)
		}
		o.Username, o.Password = u, p
	}
	return o, nil
}

// openRemote opens a docker:// location with the flags of side.
func openRemote(cx *cli.Context, l location, side string) (*remote.Registry, error) {
	o, err := remoteOptions(cx, side)
	if err != nil {
		return nil, err
	}
	r, err := remote.Open(l.Path, o)
	if err != nil {
		return nil, usageError{err}
	}
	return r, nil
}

// openSourceFlags is openSource with the --src-* flags for a docker:// location.
func openSourceFlags(cx *cli.Context, l location) (layout.Source, error) {
	if l.Kind == kindDocker {
		return openRemote(cx, l, "src")
	}
	return openSource(cx, l)
}
