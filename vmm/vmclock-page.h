/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The vmclock page as a reader sees it, shared by the guest's vmclock-reader
 * and the host-side check in vmclock-preload: the ABI of Linux 7.2's
 * <linux/vmclock-abi.h> (little-endian fields as plain integers, x86 only)
 * and the ptp_vmclock arithmetic.
 */
#ifndef VMCLOCK_PAGE_H
#define VMCLOCK_PAGE_H

#include <stdbool.h>
#include <stdint.h>

/* <linux/vmclock-abi.h> of Linux 7.2 (little-endian fields as plain ints) */
struct vmclock_abi {
	uint32_t magic;
	uint32_t size;
	uint16_t version;
	uint8_t counter_id;
	uint8_t time_type;
	uint32_t seq_count;
	uint64_t disruption_marker;
	uint64_t flags;
	uint8_t pad[2];
	uint8_t clock_status;
	uint8_t leap_second_smearing_hint;
	int16_t tai_offset_sec;
	uint8_t leap_indicator;
	uint8_t counter_period_shift;
	uint64_t counter_value;
	uint64_t counter_period_frac_sec;
	uint64_t counter_period_esterror_rate_frac_sec;
	uint64_t counter_period_maxerror_rate_frac_sec;
	uint64_t time_sec;
	uint64_t time_frac_sec;
	uint64_t time_esterror_nanosec;
	uint64_t time_maxerror_nanosec;
	uint64_t vm_generation_counter;
};
#define VMCLOCK_MAGIC			0x4b4c4356
#define VMCLOCK_TIME_UTC		0
#define VMCLOCK_TIME_TAI		1
#define VMCLOCK_FLAG_TAI_OFFSET_VALID	(1 << 0)
#define VMCLOCK_FLAG_NOTIFICATION_PRESENT (1 << 9)

static const char *const status_name[] = {
	"UNKNOWN", "INITIALIZING", "SYNCHRONIZED", "FREERUNNING", "UNRELIABLE",
};

static inline uint64_t rdtsc_ordered(void)
{
	uint32_t lo, hi;

	asm volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi) :: "memory");
	return ((uint64_t)hi << 32) | lo;
}

/*
 * The page's time at TSC value @tsc, in ns since the epoch (as the driver:
 * TAI, or UTC moved to TAI when the page says how).  -1 while the page is
 * being written for more than a while, -2 if it holds no unambiguous time.
 */
static inline __int128 vmclock_page_time_ns(const volatile struct vmclock_abi *clk, uint64_t tsc,
					    uint64_t *marker, uint32_t *seq_out, uint8_t *status)
{
	for (int tries = 0; tries < 1000000; tries++) {
		uint32_t seq = clk->seq_count & ~1U;
		unsigned __int128 t, at;
		uint64_t counter, sec, frac;
		bool back;
		__int128 ns;

		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		/*
		 * @tsc may be before counter_value: a reader that took its
		 * TSC before an update read the page after it.  The line holds
		 * before its anchor too: go back along it, not round 2^64.
		 */
		counter = clk->counter_value;
		back = tsc < counter;
		t = (unsigned __int128)(back ? counter - tsc : tsc - counter) *
		    clk->counter_period_frac_sec;
		t >>= clk->counter_period_shift;
		at = ((unsigned __int128)clk->time_sec << 64) | clk->time_frac_sec;
		at = back ? at - t : at + t;
		sec = (uint64_t)(at >> 64);
		frac = (uint64_t)at;
		if (clk->time_type == VMCLOCK_TIME_UTC &&
		    (clk->flags & VMCLOCK_FLAG_TAI_OFFSET_VALID))
			sec -= clk->tai_offset_sec;
		else if (clk->time_type != VMCLOCK_TIME_TAI)
			sec = 0;
		*marker = clk->disruption_marker;
		*status = clk->clock_status;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (seq != clk->seq_count)
			continue;
		*seq_out = seq;
		if (!sec)
			return -2;
		ns = (__int128)sec * 1000000000 +
		     (__int128)(((unsigned __int128)frac * 1000000000) >> 64);
		return ns;
	}
	return -1;
}

#endif
