// SPDX-License-Identifier: MIT

//go:build !amd64

package rtm

const isAmd64 = false
