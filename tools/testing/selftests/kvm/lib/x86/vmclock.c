// SPDX-License-Identifier: GPL-2.0-only
/*
 * vmclock ABI helpers for x86 selftests; see include/x86/vmclock.h.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <asm/barrier.h>
#include <linux/compiler.h>

#include "kvm_util.h"
#include "processor.h"
#include "vmclock.h"

/*
 * Host-side bracket sampling: untimed rounds first, because the first runs
 * of the vDSO and RDTSC are slow (cold caches, and under emulation the code
 * has yet to be translated) and would only yield wide brackets.
 */
#define VMCLOCK_SAMPLE_WARMUP	16
#define VMCLOCK_SAMPLE_TRIES	64

/*
 * As tai_adjust() in the driver: TAI is used as is; UTC only converts to TAI
 * when the offset is known to be valid. tai_offset_sec is UTC - TAI (-37 s
 * since 2017), so subtracting it turns UTC seconds into TAI seconds.
 */
static bool vmclock_tai_adjust(const struct vmclock_abi *clk, u64 *sec)
{
	if (clk->time_type == VMCLOCK_TIME_TAI)
		return true;

	if (clk->time_type == VMCLOCK_TIME_UTC &&
	    (clk->flags & VMCLOCK_FLAG_TAI_OFFSET_VALID)) {
		*sec -= (int16_t)clk->tai_offset_sec;
		return true;
	}

	return false;
}

/*
 * The time (as the structure's time_type) at counter value @tsc, with the
 * arithmetic of vmclock_get_crosststamp() in ptp_vmclock.c.
 */
void vmclock_time_at(const struct vmclock_abi *clk, u64 tsc, u64 *sec,
		     u64 *nsec)
{
	unsigned __int128 r;

	/*
	 * counter_period_frac_sec is in units of 2^-(64 + shift) s, so the
	 * shifted product is in units of 2^-64 s, the same as time_frac_sec;
	 * carries out of the low 64 bits are seconds.
	 */
	r = (unsigned __int128)(tsc - clk->counter_value) *
	    clk->counter_period_frac_sec;
	r >>= clk->counter_period_shift;
	r += clk->time_frac_sec;
	*sec = clk->time_sec + (u64)(r >> 64);
	*nsec = ((unsigned __int128)(u64)r * NSEC_PER_SEC) >> 64;
}

/*
 * Read the vmclock the way vmclock_get_crosststamp() in ptp_vmclock.c does,
 * so that the test checks what a real guest would compute. x86 is
 * little-endian, so the __le fields are used directly.
 */
enum vmclock_read_status vmclock_read_tai(struct vmclock_abi *clk,
					  struct vmclock_time *t)
{
	u64 tsc, sec, nsec;
	u32 seq;
	int i;

	for (i = 0; i < VMCLOCK_READ_MAX_TRIES; i++) {
		/* An odd count means an update is in progress: never matches. */
		seq = READ_ONCE(clk->seq_count) & ~1U;

		/* Pairs with the hypervisor's write barrier, as virt_rmb(). */
		smp_rmb();

		if (READ_ONCE(clk->clock_status) == VMCLOCK_STATUS_UNRELIABLE)
			return VMCLOCK_READ_UNRELIABLE;

		tsc = rdtsc();

		vmclock_time_at(clk, tsc, &sec, &nsec);

		if (!vmclock_tai_adjust(clk, &sec))
			return VMCLOCK_READ_NO_TAI;

		/* Pairs with the hypervisor's write barrier, as virt_rmb(). */
		smp_rmb();

		if (seq == READ_ONCE(clk->seq_count)) {
			t->tsc = tsc;
			t->sec = sec;
			t->nsec = nsec;
			return VMCLOCK_READ_OK;
		}
	}

	return VMCLOCK_READ_TIMED_OUT;
}

const char *vmclock_read_status_name(enum vmclock_read_status status)
{
	static const char * const names[] = {
		[VMCLOCK_READ_OK] = "OK",
		[VMCLOCK_READ_UNRELIABLE] = "UNRELIABLE",
		[VMCLOCK_READ_NO_TAI] = "NO_TAI",
		[VMCLOCK_READ_TIMED_OUT] = "TIMED_OUT",
	};

	return status < ARRAY_SIZE(names) ? names[status] : "(invalid)";
}

u64 vmclock_host_tai_ns(void)
{
	struct timespec ts;

	TEST_ASSERT(!clock_gettime(CLOCK_TAI, &ts),
		    "clock_gettime(CLOCK_TAI) failed, errno = %d", errno);

	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/*
 * Pair a host TSC value with CLOCK_TAI. The RDTSC happened somewhere between
 * the two clock reads around it, so the midpoint is off by at most half the
 * bracket; keep the narrowest of several tries to make that error small
 * (interrupts or preemption widen individual brackets).
 */
void vmclock_host_sample(struct vmclock_sample *s)
{
	u64 before, tsc, after;
	int i;

	s->width_ns = UINT64_MAX;

	for (i = 0; i < VMCLOCK_SAMPLE_WARMUP + VMCLOCK_SAMPLE_TRIES; i++) {
		before = vmclock_host_tai_ns();
		tsc = rdtsc();
		after = vmclock_host_tai_ns();

		if (i < VMCLOCK_SAMPLE_WARMUP || after - before >= s->width_ns)
			continue;

		s->tsc = tsc;
		s->tai_ns = before + (after - before) / 2;
		s->width_ns = after - before;
	}
}

/*
 * Describe the TSC -> CLOCK_TAI line through samples @a and @b, anchored at
 * @a, as a vmclock that reports TAI and is SYNCHRONIZED. The counter is the
 * host TSC; a caller exposing it to a guest must move counter_value into the
 * guest's TSC domain. seq_count is left at zero (even, i.e. stable).
 */
void vmclock_fill_tai_line(struct vmclock_abi *clk,
			   const struct vmclock_sample *a,
			   const struct vmclock_sample *b)
{
	u64 delta_tsc = b->tsc - a->tsc;
	u64 delta_ns = b->tai_ns - a->tai_ns;
	u64 nsec = a->tai_ns % NSEC_PER_SEC;
	unsigned __int128 den;
	u64 period;
	int shift;

	TEST_ASSERT(b->tsc > a->tsc && b->tai_ns > a->tai_ns,
		    "Samples out of order: TSC %lu -> %lu, TAI %lu -> %lu ns",
		    a->tsc, b->tsc, a->tai_ns, b->tai_ns);

	/* Keeps den, and so every numerator below, within 64 + 64 bits. */
	TEST_ASSERT(delta_tsc <= UINT64_MAX / NSEC_PER_SEC,
		    "Samples too far apart (%lu TSC cycles)", delta_tsc);

	/*
	 * The period of one TSC cycle, delta_ns / (NSEC_PER_SEC * delta_tsc)
	 * seconds, first in units of 2^-64 s. For a GHz TSC that has only
	 * ~32 significant bits; its leading zeros are how much further it can
	 * be scaled and still fit in 64 bits, so recompute it with that shift
	 * to get the full 64 bits of precision.
	 */
	den = (unsigned __int128)delta_tsc * NSEC_PER_SEC;
	period = ((unsigned __int128)delta_ns << 64) / den;
	shift = __builtin_clzll(period);
	period = ((unsigned __int128)delta_ns << (64 + shift)) / den;

	memset(clk, 0, sizeof(*clk));
	clk->magic = VMCLOCK_MAGIC;
	clk->size = sizeof(*clk);
	clk->version = 1;
	clk->counter_id = VMCLOCK_COUNTER_X86_TSC;
	clk->time_type = VMCLOCK_TIME_TAI;
	clk->clock_status = VMCLOCK_STATUS_SYNCHRONIZED;

	clk->counter_period_shift = shift;
	clk->counter_period_frac_sec = period;
	clk->counter_value = a->tsc;
	clk->time_sec = a->tai_ns / NSEC_PER_SEC;
	/*
	 * Round up, so that the reader's truncating conversion back to
	 * nanoseconds returns exactly a->tai_ns at counter_value.
	 */
	clk->time_frac_sec = (((unsigned __int128)nsec << 64) +
			      NSEC_PER_SEC - 1) / NSEC_PER_SEC;
}

void vmclock_host_from_abi(struct kvm_vmclock_host *host,
			   const struct vmclock_abi *clk)
{
	memset(host, 0, sizeof(*host));
	host->counter_value = clk->counter_value;
	host->period_frac_sec = clk->counter_period_frac_sec;
	host->period_esterror_rate_frac_sec =
		clk->counter_period_esterror_rate_frac_sec;
	host->period_maxerror_rate_frac_sec =
		clk->counter_period_maxerror_rate_frac_sec;
	host->time_sec = clk->time_sec;
	host->time_frac_sec = clk->time_frac_sec;
	host->time_esterror_nanosec = clk->time_esterror_nanosec;
	host->time_maxerror_nanosec = clk->time_maxerror_nanosec;
	host->flags = clk->flags & VMCLOCK_KVM_HOST_FLAGS;
	host->period_shift = clk->counter_period_shift;
	host->time_type = clk->time_type;
	host->clock_status = clk->clock_status;
	host->leap_indicator = clk->leap_indicator;
	host->leap_second_smearing_hint = clk->leap_second_smearing_hint;
	host->tai_offset_sec = (int16_t)clk->tai_offset_sec;
}

int __vmclock_set_host(struct kvm_vm *vm, const struct vmclock_abi *clk)
{
	struct kvm_vmclock_host host;

	vmclock_host_from_abi(&host, clk);
	return __vm_ioctl(vm, KVM_SET_VMCLOCK_HOST, &host);
}

void vmclock_set_host(struct kvm_vm *vm, const struct vmclock_abi *clk)
{
	int r = __vmclock_set_host(vm, clk);

	TEST_ASSERT(!r, "KVM_SET_VMCLOCK_HOST failed, errno %d (%s)", errno,
		    strerror(errno));
}

/*
 * As vmclock_update_guest() in QEMU's hw/acpi/vmclock.c: seq_count made odd
 * (kept if it already was), the marker bumped, seq_count made even again.
 * x86 is little-endian, so the __le fields are used directly.
 */
void vmclock_vmm_mark_disruption(struct vmclock_abi *clk)
{
	u32 seq = READ_ONCE(clk->seq_count) | 1;

	WRITE_ONCE(clk->seq_count, seq);
	/* Pairs with the guest's read barriers, as in QEMU. */
	smp_wmb();
	WRITE_ONCE(clk->disruption_marker,
		   READ_ONCE(clk->disruption_marker) + 1);
	/* Pairs with the guest's read barriers, as in QEMU. */
	smp_wmb();
	WRITE_ONCE(clk->seq_count, seq + 1);
}
