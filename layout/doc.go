// Package layout models the OCI image layout that relocate archives carry:
// descriptors, index.json, the table of contents, blob paths, and the order in
// which entries are written so that small metadata precedes large layers.
//
// It knows nothing of networks, tar streams, TUF or the command line.
package layout
