package registry

import (
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/bale-project/bale/layout"
)

// A command that reads a whole storage it does not write (pack, diff, catalog) used to read
// each tag's current link three times (listing the tags, listing them again for referrer
// discovery, resolving the tag), each revision link three times (loading the image, listing
// the revisions, reading each again for its subject) and each manifest twice (#19). A
// snapshot reads each link once and keeps what it held, and keeps each manifest's subject:
// every link is still read and checked, and every manifest verified by its digest, once.

// snapshot is what a Store made by Snapshot keeps of what it read.
type snapshot struct {
	mu       sync.Mutex
	links    map[PathSpec]digest.Digest     // valid links read, by spec
	tags     map[string][]string            // Tags, by repository
	subjects map[digest.Digest]subjectEntry // manifests read: their subject, if any
}

// subjectEntry is what a manifest says of its subject (a manifest's digest fixes its content).
type subjectEntry struct {
	subject digest.Digest // "" for a manifest without subject
	desc    layout.Descriptor
}

// Snapshot returns a read view of the same storage that reads each link once and each
// manifest once, for a command that reads storage nobody writes while it runs. A write
// through the view forgets what it kept. The snapshot of a snapshot is itself, so that
// a command may take one and hand it to a function that takes its own (catalog.FromSource).
func (s *Store) Snapshot() layout.Source {
	if s.snap != nil {
		return s
	}
	return &Store{root: s.root, snap: &snapshot{}}
}

// link returns the digest a link read before held.
func (sn *snapshot) link(spec PathSpec) (digest.Digest, bool) {
	if sn == nil {
		return "", false
	}
	sn.mu.Lock()
	defer sn.mu.Unlock()
	d, ok := sn.links[spec]
	return d, ok
}

// keepLink keeps the digest a valid link held.
func (sn *snapshot) keepLink(spec PathSpec, d digest.Digest) {
	if sn == nil {
		return
	}
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.links == nil {
		sn.links = map[PathSpec]digest.Digest{}
	}
	sn.links[spec] = d
}

// repoTags returns the tags of repo listed before.
func (sn *snapshot) repoTags(repo string) ([]string, bool) {
	if sn == nil {
		return nil, false
	}
	sn.mu.Lock()
	defer sn.mu.Unlock()
	ts, ok := sn.tags[repo]
	return slices.Clone(ts), ok
}

// keepTags keeps the tags of repo.
func (sn *snapshot) keepTags(repo string, tags []string) {
	if sn == nil {
		return
	}
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.tags == nil {
		sn.tags = map[string][]string{}
	}
	sn.tags[repo] = slices.Clone(tags)
}

// subjectOf returns what manifest d, read before, says of its subject.
func (sn *snapshot) subjectOf(d digest.Digest) (subjectEntry, bool) {
	if sn == nil {
		return subjectEntry{}, false
	}
	sn.mu.Lock()
	defer sn.mu.Unlock()
	e, ok := sn.subjects[d]
	return e, ok
}

// keepManifest keeps what manifest m, read and verified, says of its subject.
func (sn *snapshot) keepManifest(m *layout.Manifest) {
	if sn == nil {
		return
	}
	var e subjectEntry
	if m.Subject != nil {
		e = subjectEntry{subject: m.Subject.Digest, desc: m.ReferrerDescriptor()}
	}
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.subjects == nil {
		sn.subjects = map[digest.Digest]subjectEntry{}
	}
	sn.subjects[m.Digest] = e
}

// forget drops every link and tag list kept, before a write through the view.
func (sn *snapshot) forget() {
	if sn == nil {
		return
	}
	sn.mu.Lock()
	defer sn.mu.Unlock()
	sn.links, sn.tags = nil, nil
}

// indexSubjects is IndexSubjects over the revisions of repo, taking the subject of a
// manifest read before from the snapshot instead of reading it again.
func (s *Store) indexSubjects(repo string, revisions []digest.Digest) SubjectIndex {
	idx := SubjectIndex{}
	for _, d := range revisions {
		e, ok := s.snap.subjectOf(d)
		if !ok {
			m, err := s.ReadManifest(repo, d) // keeps its subject
			if err != nil {
				continue // names no subject bale can carry (IndexSubjects)
			}
			e, _ = s.snap.subjectOf(m.Digest)
		}
		if e.subject != "" {
			idx[e.subject] = append(idx[e.subject], e.desc)
		}
	}
	for k := range idx {
		slices.SortFunc(idx[k], func(a, b layout.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	}
	return idx
}
