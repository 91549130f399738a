package s3store

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/bale-project/bale/layout"
)

// RegistryStorage is where a registry's config.yml keeps its storage: exactly one of
// Filesystem (storage.filesystem.rootdirectory) and S3 (storage.s3) is set.
type RegistryStorage struct {
	// Filesystem is the root directory of filesystem storage.
	Filesystem string
	// S3 is the bucket of s3 storage, with its endpoint, region and credentials.
	S3 *Config
}

// maxRegistryConfig bounds the config.yml bale reads.
const maxRegistryConfig = 1 << 20

// defaultFilesystemRoot is Distribution's default storage.filesystem.rootdirectory.
const defaultFilesystemRoot = "/var/lib/registry"

// ParseRegistryConfig reads the storage section of a Distribution config.yml (name names
// the file in messages and in the errors of the Store it configures): storage.filesystem's
// rootdirectory, or storage.s3's bucket, rootdirectory, region, regionendpoint,
// forcepathstyle, secure, skipverify, accesskey, secretkey and sessiontoken. The
// REGISTRY_STORAGE_* environment overrides of the registry are not read.
func ParseRegistryConfig(name string, b []byte) (RegistryStorage, error) {
	if len(b) > maxRegistryConfig {
		return RegistryStorage{}, fmt.Errorf("registry config %s: more than %d bytes: %w", name, maxRegistryConfig, layout.ErrInvalid)
	}
	var doc struct {
		Storage map[string]yaml.Node `yaml:"storage"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return RegistryStorage{}, fmt.Errorf("registry config %s: %v: %w", name, err, layout.ErrInvalid)
	}
	fsNode, hasFS := doc.Storage["filesystem"]
	s3Node, hasS3 := doc.Storage["s3"]
	switch {
	case hasFS && hasS3:
		return RegistryStorage{}, fmt.Errorf("registry config %s: both storage.filesystem and storage.s3: %w", name, layout.ErrInvalid)
	case hasFS:
		m, err := scalars(fsNode)
		if err != nil {
			return RegistryStorage{}, fmt.Errorf("registry config %s: storage.filesystem: %w", name, err)
		}
		root := m["rootdirectory"]
		if root == "" {
			root = defaultFilesystemRoot
		}
		return RegistryStorage{Filesystem: root}, nil
	case hasS3:
		m, err := scalars(s3Node)
		if err != nil {
			return RegistryStorage{}, fmt.Errorf("registry config %s: storage.s3: %w", name, err)
		}
		c := Config{Bucket: m["bucket"], Region: m["region"], AccessKey: m["accesskey"], SecretKey: m["secretkey"], SessionToken: m["sessiontoken"], From: name}
		if err := c.setRoot(m["rootdirectory"]); err != nil {
			return RegistryStorage{}, fmt.Errorf("registry config %s: storage.s3.rootdirectory: %w", name, err)
		}
		secure, err := boolOf(m, "secure", true)
		if err != nil {
			return RegistryStorage{}, fmt.Errorf("registry config %s: %w", name, err)
		}
		if ep := m["regionendpoint"]; ep != "" {
			if !strings.Contains(ep, "://") {
				ep = map[bool]string{true: "https://", false: "http://"}[secure] + ep
			}
			c.Endpoint = ep
		}
		if c.NoTLSVerify, err = boolOf(m, "skipverify", false); err != nil {
			return RegistryStorage{}, fmt.Errorf("registry config %s: %w", name, err)
		}
		if _, ok := m["forcepathstyle"]; ok {
			ps, err := boolOf(m, "forcepathstyle", false)
			if err != nil {
				return RegistryStorage{}, fmt.Errorf("registry config %s: %w", name, err)
			}
			c.PathStyle = &ps
		}
		if err := c.validate(); err != nil {
			return RegistryStorage{}, fmt.Errorf("registry config %s: storage.s3: %w", name, err)
		}
		return RegistryStorage{S3: &c}, nil
	}
	return RegistryStorage{}, fmt.Errorf("registry config %s: neither storage.filesystem nor storage.s3 (bale writes only these): %w", name, layout.ErrInvalid)
}

// scalars reads a mapping of scalar values (nested mappings are skipped).
func scalars(n yaml.Node) (map[string]string, error) {
	m := map[string]string{}
	if n.Kind == yaml.ScalarNode && (n.Value == "" || n.Tag == "!!null") {
		return m, nil // "filesystem:" with nothing under it
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("not a mapping: %w", layout.ErrInvalid)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && v.Kind == yaml.ScalarNode {
			m[strings.ToLower(k.Value)] = v.Value
		}
	}
	return m, nil
}

// boolOf reads a boolean setting, def when absent.
func boolOf(m map[string]string, key string, def bool) (bool, error) {
	v, ok := m[key]
	if !ok || v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("storage.s3.%s: %q is not true or false: %w", key, v, layout.ErrInvalid)
	}
	return b, nil
}
