// Package mirror is relocate's registry I/O: resolving references, walking
// image graphs (index → manifests → configs and layers), fetching blobs with
// their digests checked while they stream, and pushing content back (blobs
// first with existence checks and cross-repository mounts, manifests by
// digest, tags last).
//
// It moves bytes and checks that they are the bytes asked for; it makes no
// trust decision.
package mirror
