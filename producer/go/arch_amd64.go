// SPDX-License-Identifier: MIT

package rtm

const isAmd64 = true
