// SPDX-License-Identifier: MIT

//go:build !(linux && (amd64 || arm64))

package rtm

import "os"

// renameNoReplace without renameat2: link(2) refuses an existing target,
// then the temporary name goes.  Readers may see two links for a moment and
// skip the file until the next scan.
func renameNoReplace(oldpath, newpath string) error {
	if err := os.Link(oldpath, newpath); err != nil {
		return err
	}
	return os.Remove(oldpath)
}
