package relocate

import "golang.org/x/sys/unix"

// freeSpace is what statfs(2) says an unprivileged writer may still use in
// dir's file system.
func freeSpace(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	unit := uint64(st.Frsize) // f_bavail counts fragments
	if unit == 0 {
		unit = uint64(st.Bsize)
	}
	return st.Bavail * unit, nil
}
