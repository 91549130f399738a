package s3store

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bale-project/bale/layout"
)

// Scheme starts every S3 location: s3://BUCKET[/ROOTDIRECTORY].
const Scheme = "s3://"

// Defaults of Config.
const (
	// DefaultRegion is the region when neither Config, AWS_REGION nor the profile names one.
	DefaultRegion = "us-east-1"
	// DefaultJobs is how many blobs (and parts of a blob) go over the network at once: enough
	// to hide the latency of each request on a local S3 server, few enough that the part
	// buffers stay far below 256 MiB.
	DefaultJobs = 8
	// DefaultPartSize is the size of each part of a multipart upload; a blob up to this size
	// is one PUT. S3 wants at least 5 MiB for every part but the last.
	DefaultPartSize = 8 << 20
	minPartSize     = 5 << 20
)

// Config says where a Store is and how to reach it. Everything left empty is taken the AWS
// way: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, AWS_PROFILE with
// ~/.aws/credentials and ~/.aws/config, AWS_REGION (else DefaultRegion), AWS_ENDPOINT_URL_S3
// or AWS_ENDPOINT_URL (or a profile's endpoint_url), AWS_CA_BUNDLE.
type Config struct {
	// Bucket is the bucket's name.
	Bucket string
	// Root is the registry's rootdirectory without its leading and trailing "/": keys are
	// Root + "/docker/registry/v2/...".
	Root string
	// Endpoint is the S3 endpoint URL (MinIO, Ceph RGW, ...); empty means AWS's, or the
	// endpoint the environment names.
	Endpoint string
	// Region is the signing region.
	Region string
	// PathStyle chooses path-style addressing (http://HOST/BUCKET/KEY); nil means path style
	// exactly when an endpoint other than AWS's is in use, virtual-host style for AWS.
	PathStyle *bool
	// NoTLSVerify accepts any certificate from the endpoint.
	NoTLSVerify bool
	// CACert is a PEM file of CA certificates to trust for the endpoint.
	CACert string
	// AccessKey, SecretKey and SessionToken are static credentials (a registry config's);
	// empty means the AWS credential chain.
	AccessKey, SecretKey, SessionToken string
	// Jobs is how many blobs and parts are uploaded at once (DefaultJobs when 0).
	Jobs int
	// PartSize is the multipart part size (DefaultPartSize when 0).
	PartSize int64
	// From names where the settings came from, for error messages: "" for flags and the
	// environment, or a registry config file.
	From string
}

// rootRegexp is a rootdirectory bale accepts: path components as the storage driver allows
// them (storagedriver.PathRegexp), none of them "." or "..".
// Compiled on first use, not at package init: every bale command links this package, few
// open an s3:// location.
var rootRegexp = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$`)
})

// bucketRegexp is an S3 bucket name (the general-purpose rules, dots allowed).
var bucketRegexp = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
})

// ParseURL parses s3://BUCKET[/ROOTDIRECTORY] into a Config with Bucket and Root set.
func ParseURL(s string) (Config, error) {
	rest, ok := strings.CutPrefix(s, Scheme)
	if !ok {
		return Config{}, fmt.Errorf("%q is not an %sBUCKET[/ROOTDIRECTORY] location: %w", s, Scheme, layout.ErrInvalid)
	}
	bucket, root, _ := strings.Cut(rest, "/")
	c := Config{Bucket: bucket}
	if err := c.setRoot(root); err != nil {
		return Config{}, fmt.Errorf("%s: %w", s, err)
	}
	return c, c.validate()
}

// setRoot sets Root from a rootdirectory ("/a/b", "a/b/", "" ...).
func (c *Config) setRoot(root string) error {
	root = strings.Trim(root, "/")
	if root != "" && !rootRegexp().MatchString(root) {
		return fmt.Errorf("root directory %q: want path components of A-Z a-z 0-9 . _ -: %w", root, layout.ErrInvalid)
	}
	for _, p := range strings.Split(root, "/") {
		if p == "." || p == ".." {
			return fmt.Errorf("root directory %q: no . or .. components: %w", root, layout.ErrInvalid)
		}
	}
	c.Root = root
	return nil
}

func (c Config) validate() error {
	if !bucketRegexp().MatchString(c.Bucket) || strings.Contains(c.Bucket, "..") {
		return fmt.Errorf("bucket name %q: want 3-63 characters of a-z 0-9 . -: %w", c.Bucket, layout.ErrInvalid)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("S3 endpoint %q (%s): want http://HOST[:PORT] or https://HOST[:PORT]: %w", c.Endpoint, c.setting(settingEndpoint), layout.ErrInvalid)
		}
	}
	if c.PartSize != 0 && c.PartSize < minPartSize {
		return fmt.Errorf("S3 part size %d: at least %d bytes: %w", c.PartSize, minPartSize, layout.ErrInvalid)
	}
	return nil
}

// String is the location: s3://BUCKET[/ROOT].
func (c Config) String() string {
	if c.Root == "" {
		return Scheme + c.Bucket
	}
	return Scheme + c.Bucket + "/" + c.Root
}

// The settings an error message may name.
const (
	settingEndpoint = iota
	settingCredentials
	settingBucket
	settingRegion
	settingTLS
)

// setting names what a user changes to fix one kind of problem, where the settings came from.
func (c Config) setting(kind int) string {
	if c.From != "" {
		switch kind {
		case settingEndpoint:
			return "storage.s3.regionendpoint and secure in " + c.From
		case settingCredentials:
			return "storage.s3.accesskey and secretkey in " + c.From
		case settingBucket:
			return "storage.s3.bucket in " + c.From
		case settingRegion:
			return "storage.s3.region in " + c.From
		case settingTLS:
			return "storage.s3.skipverify in " + c.From + ", or --s3-ca-cert FILE"
		}
	}
	switch kind {
	case settingEndpoint:
		if p := os.Getenv("AWS_PROFILE"); p != "" {
			return fmt.Sprintf("--s3-endpoint, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or endpoint_url of profile %q (AWS_PROFILE) in ~/.aws/config", p)
		}
		return "--s3-endpoint, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL"
	case settingCredentials:
		// The SDK takes keys from the environment before any profile.
		if p := os.Getenv("AWS_PROFILE"); p != "" && os.Getenv("AWS_ACCESS_KEY_ID") == "" {
			return fmt.Sprintf("the keys of profile %q (AWS_PROFILE) in ~/.aws/credentials or AWS_SHARED_CREDENTIALS_FILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", p)
		}
		return "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or AWS_PROFILE with ~/.aws/credentials"
	case settingBucket:
		return "the bucket of " + c.String()
	case settingRegion:
		return "--s3-region or AWS_REGION"
	}
	return "--s3-ca-cert FILE or AWS_CA_BUNDLE, or --s3-tls-verify=false"
}

// newClient builds the S3 client of c: the AWS SDK's default configuration chain, with what
// c sets on top. It returns the endpoint in use ("" for AWS's).
func newClient(ctx context.Context, c Config) (*s3.Client, string, error) {
	jobs := c.jobs()
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = 4 * jobs
		t.MaxIdleConnsPerHost = 4 * jobs
		if c.NoTLSVerify {
			if t.TLSClientConfig == nil {
				t.TLSClientConfig = &tls.Config{}
			}
			t.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // the user asked: --s3-tls-verify=false
		}
	}).WithDialerOptions(func(d *net.Dialer) { d.Timeout = 10 * time.Second })
	opts := []func(*config.LoadOptions) error{config.WithHTTPClient(hc)}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.AccessKey != "" || c.SecretKey != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, c.SessionToken)))
	}
	if c.CACert != "" {
		f, err := os.Open(c.CACert)
		if err != nil {
			return nil, "", fmt.Errorf("--s3-ca-cert: %w", err)
		}
		defer f.Close()
		opts = append(opts, config.WithCustomCABundle(f))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("loading the AWS configuration (AWS_PROFILE, ~/.aws/config, ~/.aws/credentials): %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	var endpoint string
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		if o.BaseEndpoint != nil {
			endpoint = *o.BaseEndpoint
		}
		switch {
		case c.PathStyle != nil:
			o.UsePathStyle = *c.PathStyle
		case endpoint != "" && !isAWS(endpoint):
			o.UsePathStyle = true
		}
		// S3-compatible servers differ in the checksums they know; the digest of every
		// blob is checked by bale itself.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return client, endpoint, nil
}

// isAWS reports whether endpoint is one of Amazon's, which takes virtual-host addressing.
func isAWS(endpoint string) bool {
	u, err := url.Parse(endpoint)
	return err == nil && (strings.HasSuffix(u.Hostname(), ".amazonaws.com") || strings.HasSuffix(u.Hostname(), ".amazonaws.com.cn"))
}

func (c Config) jobs() int {
	if c.Jobs > 0 {
		return c.Jobs
	}
	return DefaultJobs
}

func (c Config) partSize() int64 {
	if c.PartSize > 0 {
		return c.PartSize
	}
	return DefaultPartSize
}
