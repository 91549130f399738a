package s3store

// PackDirectly reports that bale pack reads a bucket straight into the bundle (archive.Streamer):
// each blob one GET, verified as it is written, with no stage on local disk.
func (s *Store) PackDirectly() bool { return true }
