// SPDX-License-Identifier: MIT

//go:build !race

package rtm

import "sync/atomic"

// A P's own shard has one writer at a time: the goroutine pinned to that P
// (Segment.pinned).  Its words take plain loads and stores, as a C thread's
// shard does; a reader in another process loads each aligned word whole.

func ownAdd(p *uint64, n uint64) { *p += n }

func ownStore(p *uint64, v uint64) { *p = v }

// ownSeqBegin makes the slot's seq odd before the record's stores.  On
// amd64 stores are not reordered with stores and the compiler keeps them
// in program order: a plain store.  Elsewhere an atomic add, which orders
// the stores after it (it pairs with the reader's acquire fence).
func ownSeqBegin(seq *uint64) uint64 {
	q := *seq
	if isAmd64 {
		*seq = q + 1
	} else {
		atomic.AddUint64(seq, 1)
	}
	return q
}

// ownSeqEnd publishes the record (release; pairs with the reader's acquire
// load of seq).
func ownSeqEnd(seq *uint64, q uint64) {
	if isAmd64 {
		*seq = q + 2
	} else {
		atomic.StoreUint64(seq, q+2)
	}
}
