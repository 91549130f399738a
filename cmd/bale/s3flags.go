package main

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/layout/s3store"
)

// kindS3 is registry storage in a bucket, s3://BUCKET[/ROOTDIRECTORY].
const kindS3 = "s3"

// s3Commands are the commands that take locations, and so the --s3-* flags.
var s3Commands = []string{"pack", "unpack", "copy", "push", "list", "verify", "diff", "catalog"}

// s3Flags are the settings of s3:// locations; whatever they leave unset is taken the AWS way
// (environment, ~/.aws files).
func s3Flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "s3-endpoint", Usage: "S3 endpoint `URL` of s3:// locations (MinIO, Ceph RGW; default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's endpoint_url, else AWS)"},
		&cli.StringFlag{Name: "s3-region", Usage: "S3 `REGION` (default: AWS_REGION, the profile's region, else us-east-1)"},
		&cli.BoolFlag{Name: "s3-path-style", Usage: "path-style S3 addressing (default: on for an endpoint other than AWS's; --s3-path-style=false for virtual-host style)"},
		&cli.BoolFlag{Name: "s3-tls-verify", Value: true, Usage: "verify the S3 endpoint's TLS certificate"},
		&cli.StringFlag{Name: "s3-ca-cert", Usage: "trust the CA certificates of PEM `FILE` for the S3 endpoint (or AWS_CA_BUNDLE)"},
		&cli.StringFlag{Name: "registry-config", Usage: "take s3:// settings (bucket, rootdirectory, endpoint, region, keys) from the storage section of the registry's config.yml `FILE`; unpack writes where it says (storage.s3 or storage.filesystem) when no --to is given"},
	}
}

// s3Settings are the --s3-* flags of a command and the storage section of its
// --registry-config file: how it opens s3:// locations, read from its flags (s3SettingsOf)
// where it opens one.
type s3Settings struct {
	cfg     s3store.Config // Bucket and Root unset
	fromReg *s3store.RegistryStorage
}

// withS3Flags adds the --s3-* flags to the commands that take locations, and a Before hook
// that checks them before any work.
func withS3Flags(cmds []*cli.Command) []*cli.Command {
	for _, c := range cmds {
		if !slices.Contains(s3Commands, c.Name) {
			continue
		}
		c.Flags = append(c.Flags, s3Flags()...)
		before := c.Before
		c.Before = func(cx *cli.Context) error {
			if _, err := s3SettingsOf(cx); err != nil {
				return err
			}
			if before != nil {
				return before(cx)
			}
			return nil
		}
	}
	return cmds
}

// s3SettingsOf reads the s3 settings from the command's flags.
func s3SettingsOf(cx *cli.Context) (s3Settings, error) {
	var s s3Settings
	c := s3store.Config{Endpoint: cx.String("s3-endpoint"), Region: cx.String("s3-region"), NoTLSVerify: cx.IsSet("s3-tls-verify") && !cx.Bool("s3-tls-verify"), CACert: cx.String("s3-ca-cert")}
	if cx.IsSet("s3-path-style") {
		ps := cx.Bool("s3-path-style")
		c.PathStyle = &ps
	}
	if cx.IsSet("jobs") {
		c.Jobs = cx.Int("jobs")
	}
	s.cfg = c
	if f := cx.String("registry-config"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return s, usagef("--registry-config: %v", err)
		}
		rs, err := s3store.ParseRegistryConfig(f, b)
		if err != nil {
			return s, usageError{err}
		}
		s.fromReg = &rs
	}
	return s, nil
}

// registryConfigLocation is the location the --registry-config file's storage section names
// (none for a file the command's Before hook refused).
func registryConfigLocation(cx *cli.Context) (location, bool) {
	s, _ := s3SettingsOf(cx)
	rs := s.fromReg
	switch {
	case rs == nil:
		return location{}, false
	case rs.S3 != nil:
		return location{Kind: kindS3, Path: rs.S3.String()}, true
	}
	return location{Kind: kindRegistry, Path: rs.Filesystem}, true
}

// openS3 connects to the bucket of an s3:// location with the command's settings: those of
// --registry-config when it names that bucket, then the --s3-* flags on top.
func openS3(cx *cli.Context, l location) (*s3store.Store, error) {
	cfg, err := s3store.ParseURL(l.Path)
	if err != nil {
		return nil, usageError{err}
	}
	s, err := s3SettingsOf(cx)
	if err != nil {
		return nil, err
	}
	flags := s.cfg
	if rs := s.fromReg; rs != nil && rs.S3 != nil && rs.S3.Bucket == cfg.Bucket {
		root := cfg.Root
		cfg = *rs.S3
		cfg.Root = root
	}
	if flags.Endpoint != "" {
		cfg.Endpoint = flags.Endpoint
	}
	if flags.Region != "" {
		cfg.Region = flags.Region
	}
	if flags.PathStyle != nil {
		cfg.PathStyle = flags.PathStyle
	}
	cfg.NoTLSVerify = cfg.NoTLSVerify || flags.NoTLSVerify
	if flags.CACert != "" {
		cfg.CACert = flags.CACert
	}
	if flags.Jobs > 0 {
		cfg.Jobs = flags.Jobs
	}
	ctx := cx.Context
	if ctx == nil {
		ctx = context.Background()
	}
	st, err := s3store.Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.Path, err)
	}
	return st, nil
}

// s3Destination is a bucket as a copy destination.
type s3Destination struct{ *s3store.Store }

// Root is empty: a bucket has no file system to flush.
func (s3Destination) Root() string { return "" }
