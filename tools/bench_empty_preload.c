/* SPDX-License-Identifier: MIT */
/*
 * librtm-bench-empty.so - an LD_PRELOAD library that does nothing: what
 * loading any preload costs a short command, the floor under
 * rtm-bench-exec's figures for librtm-preload.so.
 */
void rtm_bench_empty(void);

void rtm_bench_empty(void)
{
}
