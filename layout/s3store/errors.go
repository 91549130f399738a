package s3store

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/bale-project/bale/layout"
)

// Conditions callers test with errors.Is; each error also says which setting to change.
var (
	// ErrCredentials: the endpoint refused the credentials (unknown key, wrong secret, none).
	ErrCredentials = errors.New("S3 credentials refused")
	// ErrNoBucket: the bucket does not exist at the endpoint.
	ErrNoBucket = errors.New("S3 bucket does not exist")
	// ErrAccessDenied: the credentials are valid but may not do this (often: write).
	ErrAccessDenied = errors.New("S3 access denied")
	// ErrEndpoint: the endpoint does not answer (refused, timed out, unknown host, TLS).
	ErrEndpoint = errors.New("S3 endpoint unreachable")
	// ErrFull: the store refused a write for lack of space or quota (507, QuotaExceeded).
	ErrFull = errors.New("S3 store full")
	// ErrLocked: another bale holds the store's lock object.
	ErrLocked = errors.New("S3 store locked by another bale")
)

// explain turns an error of the S3 client about key (or the bucket, when key is "") into
// one that names the condition (a sentinel above, or layout.ErrNotFound for a missing key)
// and the setting to change.
func (s *Store) explain(op, key string, err error) error {
	if err == nil {
		return nil
	}
	what := s.cfg.String()
	if key != "" {
		what = "s3://" + s.cfg.Bucket + "/" + key
	}
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	code := ""
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var ce x509.CertificateInvalidError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	switch {
	case code == "NoSuchKey" || (code == "NotFound" && key != "") || (status == http.StatusNotFound && key != "" && code != "NoSuchBucket"):
		return fmt.Errorf("%s %s: %w", op, what, layout.ErrNotFound)
	case code == "InvalidAccessKeyId" || code == "XAdminUserNotFound" || code == "SignatureDoesNotMatch" || code == "InvalidToken" || code == "ExpiredToken" || code == "InvalidClientTokenId":
		return fmt.Errorf("%s %s: %s refused the credentials (%s): fix %s: %w", op, what, s.endpointName(), code, s.cfg.setting(settingCredentials), ErrCredentials)
	case code == "NoSuchBucket" || (status == http.StatusNotFound && key == ""):
		return fmt.Errorf("%s %s: bucket %q does not exist at %s: create it, or fix %s: %w", op, what, s.cfg.Bucket, s.endpointName(), s.cfg.setting(settingBucket), ErrNoBucket)
	case code == "AuthorizationHeaderMalformed" || code == "InvalidRegion" || code == "IllegalLocationConstraintException":
		return fmt.Errorf("%s %s: %s refused the region %q (%s): fix %s: %w", op, what, s.endpointName(), s.region, code, s.cfg.setting(settingRegion), ErrCredentials)
	case code == "AccessDenied" || code == "AllAccessDisabled" || status == http.StatusForbidden:
		return fmt.Errorf("%s %s: access denied: the credentials (%s) may not do this; grant them s3:GetObject, s3:PutObject, s3:DeleteObject, s3:ListBucket, s3:ListBucketMultipartUploads and s3:AbortMultipartUpload on the bucket, or use others: %w", op, what, s.cfg.setting(settingCredentials), ErrAccessDenied)
	case status == http.StatusInsufficientStorage || code == "XMinioStorageFull" || code == "QuotaExceeded" || code == "XMinioAdminBucketQuotaExceeded" || code == "InsufficientStorage":
		return fmt.Errorf("%s %s: the store is full (%s): free space or raise the bucket's quota, then run this again (what was written is kept and not uploaded again): %w", op, what, errCode(code, status), ErrFull)
	case errors.As(err, &ce) || errors.As(err, &ua) || errors.As(err, &he):
		return fmt.Errorf("%s %s: the TLS certificate of %s is not trusted (%v): set %s: %w", op, what, s.endpointName(), err, s.cfg.setting(settingTLS), ErrEndpoint)
	case errors.As(err, &de) || errors.As(err, &oe) || (errors.As(err, &ne) && ne.Timeout()):
		return fmt.Errorf("%s %s: the endpoint %s does not answer (%v): check that the S3 server runs there, or fix %s: %w", op, what, s.endpointName(), rootCause(err), s.cfg.setting(settingEndpoint), ErrEndpoint)
	}
	return fmt.Errorf("%s %s: %w", op, what, err)
}

func errCode(code string, status int) string {
	if code != "" {
		return code
	}
	return fmt.Sprintf("HTTP %d", status)
}

// rootCause is the innermost error of err's chain, the part that says what happened.
func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// endpointName names the endpoint in messages.
func (s *Store) endpointName() string {
	if s.endpoint == "" {
		return "AWS S3 (region " + s.region + ")"
	}
	return s.endpoint
}

// isNotFound reports whether an explained error is a missing key.
func isNotFound(err error) bool { return errors.Is(err, layout.ErrNotFound) }
