// Package relocate carries signed software across an air gap. Export packs
// images from registries into one OCI-image-layout tar; Verify checks such an
// archive on removable media; Import verifies it again and republishes its
// content into a disconnected registry with the same digests.
//
// These functions only orchestrate: registry I/O is in package mirror, the
// tar format in archive, the layout model in layout, and decisions in verify.
// The relocate command is a thin layer over them.
package relocate
