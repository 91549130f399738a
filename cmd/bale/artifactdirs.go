package main

import (
	"fmt"
	"io"

	"github.com/bale-project/bale/layout"
	"github.com/bale-project/bale/layout/chartdir"
	"github.com/bale-project/bale/layout/fileart"
)

// Kinds of location that write the artifacts of a release out as plain files.
const (
	kindFiles  = "files"  // files:DIR, every file artifact as DIR/<name>/<file>
	kindCharts = "charts" // charts:DIR, every Helm chart as DIR/<name>-<version>.tgz and index.yaml
)

// artifactKinds are the prefixes of the kinds above, for the parsers of locations.
var artifactKinds = []string{kindFiles, kindCharts}

// openArtifactDir names the files: or charts: destination l, creating nothing yet: each writes
// its outputs under temporary names and renames them into place when the command succeeds
// (finishArchives commits it), so a failed command leaves DIR as it was.
func openArtifactDir(l location) destination {
	if l.Kind == kindCharts {
		return chartdir.NewWriter(l.Path)
	}
	return fileart.NewWriter(l.Path)
}

var (
	_ archiveDestination = (*fileart.Writer)(nil)
	_ archiveDestination = (*chartdir.Writer)(nil)
)

// artifactNotes says, after a successful command, what each files: or charts: destination
// among sinks got and how many images it skipped, not being its kind of artifact.
func artifactNotes(w io.Writer, sinks []layout.Sink) {
	for _, s := range sinks {
		switch d := s.(type) {
		case *fileart.Writer:
			linked, copied := d.Counts()
			fmt.Fprintf(w, "files:%s: %d files and directories written (%d hard links to their blob, %d copied or extracted); %d images that are not file artifacts skipped\n",
				d.Root(), d.Written(), linked, copied, len(d.Skipped()))
		case *chartdir.Writer:
			linked, copied := d.Counts()
			fmt.Fprintf(w, "charts:%s: %d charts written (%d hard links to their blob, %d copied) and index.yaml; %d images that are not Helm charts skipped\n",
				d.Root(), d.Written(), linked, copied, len(d.Skipped()))
		}
	}
}
