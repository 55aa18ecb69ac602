// SPDX-License-Identifier: MIT

//go:build race

package rtm

import "sync/atomic"

// Under the race detector, which cannot see that goroutines pinned to one
// P in turn never overlap, a P's own shard takes atomic operations: the
// same values, slower.

func ownAdd(p *uint64, n uint64) { atomic.AddUint64(p, n) }

func ownStore(p *uint64, v uint64) { atomic.StoreUint64(p, v) }

func ownSeqBegin(seq *uint64) uint64 { return atomic.AddUint64(seq, 1) - 1 }

func ownSeqEnd(seq *uint64, q uint64) { atomic.StoreUint64(seq, q+2) }
