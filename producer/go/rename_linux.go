// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64)

package rtm

import (
	"syscall"
	"unsafe"
)

// renameat2(2) numbers: the syscall package has no wrapper for it.
var sysRenameat2 = map[bool]uintptr{true: 316, false: 276}[isAmd64]

const renameNoreplace = 1

// renameNoReplace renames old to new unless new exists (EEXIST).
func renameNoReplace(oldpath, newpath string) error {
	o, err := syscall.BytePtrFromString(oldpath)
	if err != nil {
		return err
	}
	n, err := syscall.BytePtrFromString(newpath)
	if err != nil {
		return err
	}
	_, _, e := syscall.Syscall6(sysRenameat2, atFdcwd, uintptr(unsafe.Pointer(o)), atFdcwd,
		uintptr(unsafe.Pointer(n)), renameNoreplace, 0)
	if e != 0 {
		return e
	}
	return nil
}
