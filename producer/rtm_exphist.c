/* SPDX-License-Identifier: MIT */
/*
 * Exponential histograms' records into shared shard 0 (the window's moves
 * are rtm_shm_exp_add(), beside the format).  FORMAT.md §7 describes the
 * slot.
 */
#define _GNU_SOURCE
#include "rtm.h"

#include "rtm_segment_priv.h"

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() __atomic_signal_fence(__ATOMIC_SEQ_CST)
#endif

/* Shard 0 has many writers: an exponential record there may move every
 * bucket, so its seq is the writers' lock too (taken by compare-and-swap
 * from even to odd).  Only threads without a private shard of their own
 * come here: past max_threads, or inside a registration. */
void rtm__exp_record_shared(struct rtm_shm_exphist *s, uint32_t size, double v)
{
	uint64_t mag = rtm_shm_f64_bits(v) & ~(1ull << 63);
	uint64_t q = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);

	if (mag >= 0x7ff0000000000000ull)
		return;
	for (;;) {
		if (!(q & 1) &&
		    /* Acquire: pairs with the release store below by the
		     * writer before us; its stores are visible to ours. */
		    __atomic_compare_exchange_n(&s->seq, &q, q + 1, true, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			break;
		cpu_relax();
		q = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
	}
	/* Orders the odd seq before the data stores, as
	 * rtm_shm_seq_write_begin() does; pairs with the reader's acquire
	 * fence in rtm_shm_seq_read_retry(). */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	rtm__exp_record_held(s, size, v, mag);
	rtm_shm_seq_write_end(&s->seq);
}
