// Package tarfile reads and writes the tar files that container runtimes exchange images in
// (oci-archive, docker-archive): the archive formats' own packages say which members they
// hold; this one only moves members in and out, safely.
//
// Reading (Open) makes one pass over the headers and then reads each member in place, by
// offset, as an fs.FS. A gzip- or zstd-compressed file is first decompressed into an unlinked
// temporary file. Member names are checked as they are indexed: an absolute name, one with a
// ".." element, a device, a sparse file or a name given twice refuse the whole archive, naming
// the member. Symbolic and hard links are followed only to other members of the archive
// (docker save links a layer saved twice to its first copy); a link that leaves it is refused.
// Nothing is ever extracted to the file system.
//
// Writing (Create) streams members into a temporary file beside the target, compressed as the
// target's name says (.tar.gz, .tgz: gzip; .tar.zst: zstd; anything else: plain), with fixed
// owners, modes and times, and renames it into place only at Commit: an error or Abort leaves
// nothing at the target.
package tarfile
