// Package layout models the OCI image layout that relocate archives carry:
// descriptors, index.json, the table of contents, blob paths, the order in
// which entries are written so that small metadata precedes large layers,
// the graph of an image (its closure, with one walk every archive shares),
// reference names, and checking content against its digest.
//
// Trust metadata (a TUF repository's files, a Notary GUN's) is packed here
// as an OCI artifact of named files (PackTrust, UnpackTrust): layout moves
// those files, it never interprets them. It knows nothing of networks, tar
// streams, TUF's rules or the command line.
package layout
