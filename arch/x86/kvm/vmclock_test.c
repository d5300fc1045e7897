// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for the KVM vmclock conversion, included by vmclock.c so that
 * they can reach its static functions.
 *
 * The guest side is checked with the arithmetic of the guest's ptp_vmclock
 * driver, at TSC scaling ratios that no test machine runs with.
 */

#include <kunit/test.h>

#define FRAC_INTEL	48
#define FRAC_AMD	32
/*
 * The largest ratios set_tsc_khz() accepts, just below
 * kvm_caps.max_tsc_scaling_ratio (KVM_VMX_TSC_MULTIPLIER_MAX on Intel,
 * SVM_TSC_RATIO_MAX on AMD).
 */
#define MAX_RATIO_INTEL	0xfffffffffffffffeULL
#define MAX_RATIO_AMD	0x000000fffffffffeULL
#define HOST_TSC_HZ	2999999937ULL	/* 3 GHz with a few odd digits */
#define T0_SEC		1767225600ULL	/* 2026-01-01 */
#define T0_FRAC		0x123456789abcdef0ULL

/* Time in units of 2^-64 s, as the guest computes it (ptp_vmclock.c). */
static u128 vmclock_test_time(const struct vmclock_abi *clk, u64 counter)
{
	u64 delta = counter - le64_to_cpu(clk->counter_value);
	u128 r;

	r = ((u128)delta * le64_to_cpu(clk->counter_period_frac_sec)) >>
	    clk->counter_period_shift;
	r += le64_to_cpu(clk->time_frac_sec);

	return ((u128)le64_to_cpu(clk->time_sec) << 64) + r;
}

/* A valid host vmclock for a TSC at @hz, with the largest usable shift. */
static void vmclock_test_host(struct vmclock_abi *host, u64 hz, u64 counter)
{
	int shift = fls64(hz) - 1;

	memset(host, 0, sizeof(*host));
	host->magic = cpu_to_le32(VMCLOCK_MAGIC);
	host->size = cpu_to_le32(PAGE_SIZE);
	host->version = cpu_to_le16(1);
	host->counter_id = VMCLOCK_COUNTER_X86_TSC;
	host->time_type = VMCLOCK_TIME_TAI;
	host->clock_status = VMCLOCK_STATUS_SYNCHRONIZED;
	host->counter_period_shift = shift;
	host->counter_value = cpu_to_le64(counter);
	/* 2^(64 + shift) / hz < 2^64, as hz >= 2^shift. */
	host->counter_period_frac_sec =
		cpu_to_le64(vmclock_div128((u128)1 << (64 + shift), hz));
	host->counter_period_esterror_rate_frac_sec = cpu_to_le64(1000);
	host->counter_period_maxerror_rate_frac_sec = cpu_to_le64(100000);
	host->time_sec = cpu_to_le64(T0_SEC);
	host->time_frac_sec = cpu_to_le64(T0_FRAC);
	host->flags = cpu_to_le64(VMCLOCK_FLAG_TIME_MONOTONIC |
				  VMCLOCK_FLAG_PERIOD_ESTERROR_VALID |
				  VMCLOCK_FLAG_PERIOD_MAXERROR_VALID);
}

static u128 vmclock_test_abs_diff(u128 a, u128 b)
{
	return a > b ? a - b : b - a;
}

/* One tick of @clk's counter, in units of 2^-64 s, rounded up. */
static u128 vmclock_test_tick(const struct vmclock_abi *clk)
{
	return (le64_to_cpu(clk->counter_period_frac_sec) >>
		clk->counter_period_shift) + 1;
}

/*
 * At host TSC values h0 + delta, the guest reads its TSC g = offset + h *
 * ratio / 2^frac_bits, rounded down.  The guest TSC reached g at most one
 * guest tick before h, and the guest's result must be the host line's time
 * there: between the host's time at h less one guest tick, and the host's
 * time at h, both computed exactly in 128 bits from the host line.  Two
 * units of 2^-64 s of slack cover the rounding of the time; the truncation
 * of the guest period adds less than a unit per 2^63 ticks.  A ratio that is
 * off by one unit in its last bit is off by a microsecond after an hour.
 */
static void vmclock_test_check(struct kunit *test, u64 h0, u64 offset,
			       u64 ratio, unsigned int frac_bits)
{
	static const u64 deltas[] = {
		0, 1, 1000, 1000000, 3000000000ULL, 300000000000ULL,
		3000000000000ULL, 30000000000000ULL,
	};
	struct vmclock_abi host, guest;
	u128 gmax, hmax;
	int i;

	vmclock_test_host(&host, HOST_TSC_HZ, h0);
	KUNIT_ASSERT_EQ(test, kvm_vmclock_convert(&host, offset, ratio,
						  frac_bits, &guest), 0);

	/* The guest period keeps 64 significant bits. */
	KUNIT_EXPECT_TRUE(test, guest.counter_period_shift == 63 ||
			  fls64(le64_to_cpu(guest.counter_period_frac_sec)) == 64);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(guest.counter_value),
			offset + mul_u64_u64_shr(h0, ratio, frac_bits));
	KUNIT_EXPECT_EQ(test, guest.clock_status, VMCLOCK_STATUS_SYNCHRONIZED);
	/*
	 * The maximum error rate is rounded up: scaled back to the host
	 * period it is at least the host's, and less than one unit more.
	 */
	KUNIT_EXPECT_EQ(test, le64_to_cpu(guest.flags), le64_to_cpu(host.flags));
	gmax = (u128)le64_to_cpu(guest.counter_period_maxerror_rate_frac_sec) *
	       ratio;
	hmax = (u128)le64_to_cpu(host.counter_period_maxerror_rate_frac_sec) <<
	       (frac_bits + guest.counter_period_shift -
		host.counter_period_shift);
	KUNIT_EXPECT_TRUE(test, gmax >= hmax && gmax < hmax + ratio);

	for (i = 0; i < ARRAY_SIZE(deltas); i++) {
		u64 h = h0 + deltas[i];
		u64 g = offset + mul_u64_u64_shr(h, ratio, frac_bits);
		u128 th = vmclock_test_time(&host, h);
		u128 tg = vmclock_test_time(&guest, g);
		u128 tick = vmclock_test_tick(&guest);

		KUNIT_EXPECT_TRUE_MSG(test, tg <= th + 2 && th <= tg + tick + 2,
				      "ratio %#llx/2^%u delta %llu: guest %s host by %llu/2^32 s, tick %llu/2^32 s",
				      ratio, frac_bits, deltas[i],
				      tg > th ? "ahead of" : "behind",
				      (u64)(vmclock_test_abs_diff(th, tg) >> 32),
				      (u64)(tick >> 32));
	}
}

struct vmclock_test_case {
	const char *name;
	u64 ratio;
	unsigned int frac_bits;
};

static const struct vmclock_test_case vmclock_test_cases[] = {
	{ "1x, Intel",		1ULL << FRAC_INTEL,	FRAC_INTEL },
	{ "0.5x, Intel",	1ULL << (FRAC_INTEL - 1), FRAC_INTEL },
	{ "1.5x, Intel",	3ULL << (FRAC_INTEL - 1), FRAC_INTEL },
	{ "2.75x, Intel",	11ULL << (FRAC_INTEL - 2), FRAC_INTEL },
	{ "1 kHz, Intel",	(1ULL << FRAC_INTEL) / (HOST_TSC_HZ / 1000), FRAC_INTEL },
	{ "max, Intel",		MAX_RATIO_INTEL,	FRAC_INTEL },
	{ "1x, AMD",		1ULL << FRAC_AMD,	FRAC_AMD },
	{ "0.5x, AMD",		1ULL << (FRAC_AMD - 1),	FRAC_AMD },
	{ "1.5x, AMD",		3ULL << (FRAC_AMD - 1),	FRAC_AMD },
	{ "2.75x, AMD",		11ULL << (FRAC_AMD - 2), FRAC_AMD },
	{ "max, AMD",		MAX_RATIO_AMD,		FRAC_AMD },
};

static void vmclock_test_case_desc(const struct vmclock_test_case *t,
				   char *desc)
{
	strscpy(desc, t->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(vmclock_ratio, vmclock_test_cases, vmclock_test_case_desc);

static void vmclock_test_ratio(struct kunit *test)
{
	const struct vmclock_test_case *t = test->param_value;
	/* The host TSC after about 10 minutes of uptime. */
	u64 h0 = 600 * HOST_TSC_HZ;

	/* Guest TSC starting at 0, as for a new VM. */
	vmclock_test_check(test, h0, -mul_u64_u64_shr(h0 - 1000, t->ratio,
						      t->frac_bits),
			   t->ratio, t->frac_bits);
	/* No offset. */
	vmclock_test_check(test, h0, 0, t->ratio, t->frac_bits);
	/* A large offset, e.g. after migration from a long-running host. */
	vmclock_test_check(test, h0, 0x0123456789abcdefULL, t->ratio,
			   t->frac_bits);
	/* The guest TSC wraps shortly after the reference point. */
	vmclock_test_check(test, h0, -mul_u64_u64_shr(h0, t->ratio,
						      t->frac_bits) - 1000,
			   t->ratio, t->frac_bits);
}

/* A guest TSC slower than 1 Hz has no representable period. */
static void vmclock_test_too_slow(struct kunit *test)
{
	struct vmclock_abi host, guest;

	vmclock_test_host(&host, HOST_TSC_HZ, 0);
	KUNIT_EXPECT_EQ(test, kvm_vmclock_convert(&host, 0, 1, FRAC_INTEL,
						  &guest), -ERANGE);
	KUNIT_EXPECT_EQ(test, kvm_vmclock_convert(&host, 0, 0, FRAC_INTEL,
						  &guest), -ERANGE);
}

/*
 * Error rates scale with the period; the maximum is rounded up; a rate that
 * saturates loses its VALID flag rather than publishing a bound too small.
 */
static void vmclock_test_error_rates(struct kunit *test)
{
	struct vmclock_abi host, guest;

	vmclock_test_host(&host, HOST_TSC_HZ, 0);
	KUNIT_ASSERT_EQ(test, kvm_vmclock_convert(&host, 0, 1ULL << (FRAC_INTEL - 1),
						  FRAC_INTEL, &guest), 0);
	/* Half the frequency, twice the period; the shift absorbs the 2x. */
	KUNIT_EXPECT_EQ(test, guest.counter_period_shift,
			host.counter_period_shift - 1);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(guest.counter_period_frac_sec),
			le64_to_cpu(host.counter_period_frac_sec));
	KUNIT_EXPECT_EQ(test,
			le64_to_cpu(guest.counter_period_esterror_rate_frac_sec),
			le64_to_cpu(host.counter_period_esterror_rate_frac_sec));
	KUNIT_EXPECT_EQ(test,
			le64_to_cpu(guest.counter_period_maxerror_rate_frac_sec),
			le64_to_cpu(host.counter_period_maxerror_rate_frac_sec));

	host.counter_period_maxerror_rate_frac_sec = cpu_to_le64(U64_MAX);
	host.counter_period_esterror_rate_frac_sec = cpu_to_le64(U64_MAX);
	KUNIT_ASSERT_EQ(test, kvm_vmclock_convert(&host, 0, 3ULL << (FRAC_INTEL - 9),
						  FRAC_INTEL, &guest), 0);
	KUNIT_EXPECT_EQ(test,
			le64_to_cpu(guest.counter_period_maxerror_rate_frac_sec),
			U64_MAX);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(guest.flags) &
			(VMCLOCK_FLAG_PERIOD_ESTERROR_VALID |
			 VMCLOCK_FLAG_PERIOD_MAXERROR_VALID), 0);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(guest.flags) & VMCLOCK_FLAG_TIME_MONOTONIC,
			VMCLOCK_FLAG_TIME_MONOTONIC);
}

static void vmclock_test_div128(struct kunit *test)
{
	static const struct {
		u128 n;
		u64 d;
	} cases[] = {
		{ 0, 1 },
		{ ((u128)1 << 95), HOST_TSC_HZ },
		{ ((u128)0xfffffffffffffffeULL << 64) | 0xffffffffffffffffULL,
		  0xffffffffffffffffULL },
		{ ((u128)0x123456789ULL << 64) | 0xfedcba9876543210ULL,
		  0x123456789aULL },
		{ ((u128)0x7fffffffULL << 64) | 0x8000000000000001ULL,
		  0x80000000ULL },
	};
	int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		u128 n = cases[i].n;
		u64 d = cases[i].d;
		u64 q = vmclock_div128(n, d);
		u128 rem = n - (u128)q * d;

		KUNIT_EXPECT_TRUE_MSG(test, (u128)q * d <= n && rem < d,
				      "case %d", i);
	}
}

/*
 * Validity of the guest TSC (kvm_vmclock_guest_tsc()): one function of the
 * host TSC on all vCPUs, and a host TSC the kernel did not mark unstable.
 * The unstable case cannot be caused on a test machine without wrecking
 * its timekeeping for good, hence here.
 */
static void vmclock_test_guest_tsc(struct kunit *test)
{
	struct kvm_vmclock_guest_tsc g = {};
	u64 ratio = 1ULL << FRAC_AMD;

	/* No vCPU: no guest TSC to convert to. */
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_guest_tsc_valid(&g, false));

	kvm_vmclock_add_vcpu_tsc(&g, 1000, ratio, true);
	kvm_vmclock_add_vcpu_tsc(&g, 1000, ratio, true);
	KUNIT_EXPECT_TRUE(test, kvm_vmclock_guest_tsc_valid(&g, false));
	KUNIT_EXPECT_EQ(test, g.offset, 1000);
	KUNIT_EXPECT_EQ(test, g.ratio, ratio);
	/* The host TSC marked unstable: the same vCPUs are no longer valid. */
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_guest_tsc_valid(&g, true));

	/* Offsets differ, even if a later vCPU agrees with the first again. */
	memset(&g, 0, sizeof(g));
	kvm_vmclock_add_vcpu_tsc(&g, 1000, ratio, true);
	kvm_vmclock_add_vcpu_tsc(&g, 1001, ratio, true);
	kvm_vmclock_add_vcpu_tsc(&g, 1000, ratio, true);
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_guest_tsc_valid(&g, false));

	/* Ratios differ. */
	memset(&g, 0, sizeof(g));
	kvm_vmclock_add_vcpu_tsc(&g, 1000, ratio, true);
	kvm_vmclock_add_vcpu_tsc(&g, 1000, ratio + 1, true);
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_guest_tsc_valid(&g, false));

	/* One vCPU in TSC catch-up mode, the same offset and ratio or not. */
	memset(&g, 0, sizeof(g));
	kvm_vmclock_add_vcpu_tsc(&g, 1000, ratio, true);
	kvm_vmclock_add_vcpu_tsc(&g, 1000, ratio, false);
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_guest_tsc_valid(&g, false));
}

static void vmclock_test_check_host(struct kunit *test)
{
	struct kvm_vmclock_host in = {
		.counter_value = 123456789,
		.period_frac_sec = 1ULL << 63,
		.period_maxerror_rate_frac_sec = 1000,
		.time_sec = T0_SEC,
		.time_frac_sec = 1ULL << 62,
		.time_maxerror_nanosec = 5000,
		.flags = VMCLOCK_FLAG_PERIOD_MAXERROR_VALID |
			 VMCLOCK_FLAG_TIME_MAXERROR_VALID,
		.period_shift = 31,
		.time_type = VMCLOCK_TIME_TAI,
		.clock_status = VMCLOCK_STATUS_SYNCHRONIZED,
		.leap_indicator = VMCLOCK_LEAP_PRE_POS,
		.tai_offset_sec = -37,
	}, bad;
	struct vmclock_abi host;

	KUNIT_ASSERT_EQ(test, kvm_vmclock_host_clock(&in, &host), 0);
	KUNIT_EXPECT_EQ(test, le32_to_cpu(host.magic), VMCLOCK_MAGIC);
	KUNIT_EXPECT_EQ(test, le16_to_cpu(host.version), 1);
	KUNIT_EXPECT_EQ(test, host.counter_id, VMCLOCK_COUNTER_X86_TSC);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(host.counter_value), in.counter_value);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(host.counter_period_frac_sec),
			in.period_frac_sec);
	KUNIT_EXPECT_EQ(test,
			le64_to_cpu(host.counter_period_maxerror_rate_frac_sec),
			in.period_maxerror_rate_frac_sec);
	KUNIT_EXPECT_EQ(test, host.counter_period_shift, in.period_shift);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(host.time_sec), in.time_sec);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(host.time_frac_sec), in.time_frac_sec);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(host.time_maxerror_nanosec),
			in.time_maxerror_nanosec);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(host.flags), in.flags);
	KUNIT_EXPECT_EQ(test, host.leap_indicator, in.leap_indicator);
	KUNIT_EXPECT_EQ(test, (s16)le16_to_cpu(host.tai_offset_sec), -37);
	KUNIT_EXPECT_EQ(test, host.clock_status, in.clock_status);

#define EXPECT_INVALID(field, val)					\
	do {								\
		bad = in;						\
		bad.field = (val);					\
		KUNIT_EXPECT_EQ_MSG(test, kvm_vmclock_host_clock(&bad, &host),\
				    -EINVAL, #field);			\
	} while (0)

	EXPECT_INVALID(period_shift, 64);
	EXPECT_INVALID(period_frac_sec, 0);
	EXPECT_INVALID(clock_status, VMCLOCK_STATUS_UNRELIABLE + 1);
	EXPECT_INVALID(time_type, VMCLOCK_TIME_INVALID_MAYBE_SMEARED + 1);
	EXPECT_INVALID(leap_indicator, VMCLOCK_LEAP_POST_NEG + 1);
	EXPECT_INVALID(leap_second_smearing_hint, VMCLOCK_SMEARING_UTC_SLS + 1);
	EXPECT_INVALID(pad, 1);
	EXPECT_INVALID(reserved[5], 1);
	/* The VMM-owned and KVM-owned flags cannot be passed in. */
	EXPECT_INVALID(flags, VMCLOCK_FLAG_DISRUPTION_SOON);
	EXPECT_INVALID(flags, VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT);
	EXPECT_INVALID(flags, VMCLOCK_FLAG_NOTIFICATION_PRESENT);
	EXPECT_INVALID(flags, 1ULL << 10);
#undef EXPECT_INVALID
}

static void vmclock_test_anchor(struct kunit *test)
{
	u64 h0 = 600 * HOST_TSC_HZ, now = h0 - 5 * HOST_TSC_HZ;
	struct vmclock_abi host, moved;

	/* A reference point in the past is left alone. */
	vmclock_test_host(&host, HOST_TSC_HZ, h0);
	moved = host;
	KUNIT_EXPECT_EQ(test, kvm_vmclock_anchor(&moved, h0 + 1), 0);
	KUNIT_EXPECT_EQ(test, memcmp(&moved, &host, sizeof(host)), 0);

	/* One in the future moves to now, on the same line. */
	KUNIT_EXPECT_EQ(test, kvm_vmclock_anchor(&moved, now), 0);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(moved.counter_value), now);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(moved.time_sec), T0_SEC - 5);
	KUNIT_EXPECT_TRUE(test,
			  vmclock_test_abs_diff(vmclock_test_time(&moved, h0),
						vmclock_test_time(&host, h0)) <=
			  le64_to_cpu(host.counter_period_frac_sec));

	/* Before the epoch. */
	moved = host;
	moved.time_sec = cpu_to_le64(1);
	KUNIT_EXPECT_EQ(test, kvm_vmclock_anchor(&moved, now), -EINVAL);
}

/*
 * A timekeeper on a 3 GHz TSC, set up like tk_setup_internals() does with
 * HZ=1000, at 2026-01-01 + 0.25 s.
 */
static void vmclock_test_tk(struct kvm_vmclock_tk *tk)
{
	const u32 shift = 24;
	const u64 mult = ((1000000000ULL << shift) + HOST_TSC_HZ / 2) / HOST_TSC_HZ;
	const u64 ntpinterval = 1000000ULL << shift;

	memset(tk, 0, sizeof(*tk));
	tk->tsc = true;
	tk->cycle_interval = (ntpinterval + mult / 2) / mult;
	tk->xtime_remainder = ntpinterval - tk->cycle_interval * mult;
	tk->ntp_error_shift = NTP_SCALE_SHIFT - shift;
	tk->ntp_tick = ntpinterval << tk->ntp_error_shift;
	tk->cycle_last = 600 * HOST_TSC_HZ;
	tk->xtime_sec = T0_SEC;
	tk->xtime_nsec = (250000000ULL << shift);
	tk->tai_offset = 37;
	tk->ntp.status = STA_PLL;
	tk->ntp.leap_state = TIME_OK;
	tk->ntp.esterror_us = 100;
	tk->ntp.maxerror_us = 10000;
}

/* Nanoseconds that @clk gives for @cycles counter cycles. */
static u64 vmclock_test_ns(const struct vmclock_abi *clk, u64 cycles)
{
	u128 t = ((u128)cycles * le64_to_cpu(clk->counter_period_frac_sec)) >>
		 clk->counter_period_shift;

	return (t * NSEC_PER_SEC) >> 64;
}

/*
 * The period is the NTP-adjusted rate, (ntp_tick - remainder) per
 * cycle_interval, with and without a frequency adjustment, whatever the
 * dithered mult is.
 */
static void vmclock_test_tk_rate(struct kunit *test)
{
	static const s64 ppb[] = { 0, 100000, -100000, 17, -500000 };
	const u64 cycles = 1000 * HOST_TSC_HZ;	/* 1000 s */
	struct kvm_vmclock_tk tk;
	struct vmclock_abi clk;
	int i;

	for (i = 0; i < ARRAY_SIZE(ppb); i++) {
		u64 num, expect, got;

		vmclock_test_tk(&tk);
		tk.ntp_tick += (s64)div_u64(tk.ntp_tick, NSEC_PER_SEC) * ppb[i];
		kvm_vmclock_tk_line(&tk, &clk);
		KUNIT_ASSERT_EQ(test, clk.clock_status, VMCLOCK_STATUS_SYNCHRONIZED);
		KUNIT_EXPECT_EQ(test, fls64(le64_to_cpu(clk.counter_period_frac_sec)), 64);

		num = tk.ntp_tick - ((u64)tk.xtime_remainder << tk.ntp_error_shift);
		expect = vmclock_div128((u128)cycles * num,
					tk.cycle_interval << NTP_SCALE_SHIFT);
		got = vmclock_test_ns(&clk, cycles);
		KUNIT_EXPECT_TRUE_MSG(test, got <= expect && expect - got <= 1,
				      "%lld ppb: %llu ns, expected %llu", ppb[i],
				      got, expect);
	}

	/* A clock slower than 1 Hz, or no interval, has no period. */
	vmclock_test_tk(&tk);
	tk.cycle_interval = 0;
	kvm_vmclock_tk_line(&tk, &clk);
	KUNIT_EXPECT_EQ(test, clk.clock_status, VMCLOCK_STATUS_UNRELIABLE);
}

/* The anchor is the timekeeper's time corrected by ntp_error, in TAI. */
static void vmclock_test_tk_anchor(struct kunit *test)
{
	const u128 one_ns = VMCLOCK_NSEC_FRAC;
	struct kvm_vmclock_tk tk;
	struct vmclock_abi clk;
	u128 t, expect;

	vmclock_test_tk(&tk);
	tk.ntp_error = -(1LL << NTP_SCALE_SHIFT);	/* 1 ns behind */
	kvm_vmclock_tk_line(&tk, &clk);
	t = kvm_vmclock_time(&clk);
	expect = ((u128)(T0_SEC + 37) << 64) + ((u128)1 << 62) - one_ns;
	KUNIT_EXPECT_TRUE(test, vmclock_test_abs_diff(t, expect) <= 2);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(clk.counter_value), tk.cycle_last);
	KUNIT_EXPECT_EQ(test, clk.time_type, VMCLOCK_TIME_TAI);
	KUNIT_EXPECT_EQ(test, (s16)le16_to_cpu(clk.tai_offset_sec), -37);
	KUNIT_EXPECT_TRUE(test, le64_to_cpu(clk.flags) &
			  VMCLOCK_FLAG_TAI_OFFSET_VALID);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(clk.time_esterror_nanosec), 100000);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(clk.time_maxerror_nanosec), 10500000);

	/* Borrowing from the seconds. */
	tk.xtime_nsec = 0;
	tk.ntp_error = -(1LL << NTP_SCALE_SHIFT);
	kvm_vmclock_tk_line(&tk, &clk);
	t = kvm_vmclock_time(&clk);
	expect = ((u128)(T0_SEC + 37) << 64) - one_ns;
	KUNIT_EXPECT_TRUE(test, vmclock_test_abs_diff(t, expect) <= 2);

	/* Not synchronized: free running, no error bounds. */
	tk.ntp.status |= STA_UNSYNC;
	kvm_vmclock_tk_line(&tk, &clk);
	KUNIT_EXPECT_EQ(test, clk.clock_status, VMCLOCK_STATUS_FREERUNNING);
	KUNIT_EXPECT_FALSE(test, le64_to_cpu(clk.flags) &
			   (VMCLOCK_FLAG_TIME_ESTERROR_VALID |
			    VMCLOCK_FLAG_TIME_MAXERROR_VALID));

	/* Not the TSC. */
	tk.tsc = false;
	kvm_vmclock_tk_line(&tk, &clk);
	KUNIT_EXPECT_EQ(test, clk.clock_status, VMCLOCK_STATUS_UNRELIABLE);
}

static void vmclock_test_leap(struct kunit *test)
{
	static const struct {
		int state, status;
		u8 leap;
	} cases[] = {
		{ TIME_OK,   0,       VMCLOCK_LEAP_NONE },
		{ TIME_OK,   STA_INS, VMCLOCK_LEAP_PRE_POS },
		{ TIME_OK,   STA_DEL, VMCLOCK_LEAP_PRE_NEG },
		{ TIME_INS,  STA_INS, VMCLOCK_LEAP_PRE_POS },
		{ TIME_DEL,  STA_DEL, VMCLOCK_LEAP_PRE_NEG },
		{ TIME_OOP,  STA_INS, VMCLOCK_LEAP_POS },
		{ TIME_WAIT, STA_INS, VMCLOCK_LEAP_POST_POS },
		{ TIME_WAIT, STA_DEL, VMCLOCK_LEAP_POST_NEG },
		{ TIME_WAIT, 0,       VMCLOCK_LEAP_NONE },
	};
	int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++)
		KUNIT_EXPECT_EQ_MSG(test,
				    kvm_vmclock_leap_indicator(cases[i].state,
							       cases[i].status),
				    cases[i].leap, "case %d", i);
}

static void vmclock_test_reanchor(struct kunit *test)
{
	const u64 h0 = 600 * HOST_TSC_HZ, h1 = h0 + 10 * HOST_TSC_HZ;
	const u128 one_ns = VMCLOCK_NSEC_FRAC;
	struct vmclock_abi old, new;
	bool tai_back, utc_back;
	u128 t_old;

	vmclock_test_host(&old, HOST_TSC_HZ, h0);
	t_old = kvm_vmclock_time_at(&old, h1);

	/* Behind by rounding: moved up to the old line, still monotonic. */
	new = old;
	new.counter_value = cpu_to_le64(h1);
	kvm_vmclock_set_time(&new, t_old - one_ns / 2);
	kvm_vmclock_reanchor(&old, 37, &new, 37, false, &tai_back, &utc_back);
	KUNIT_EXPECT_TRUE(test, kvm_vmclock_time(&new) == t_old);
	KUNIT_EXPECT_FALSE(test, tai_back);
	KUNIT_EXPECT_FALSE(test, utc_back);

	/* Ahead: a step forward is monotonic and kept as it is. */
	kvm_vmclock_set_time(&new, t_old + 1000 * one_ns);
	kvm_vmclock_reanchor(&old, 37, &new, 37, false, &tai_back, &utc_back);
	KUNIT_EXPECT_TRUE(test, kvm_vmclock_time(&new) == t_old + 1000 * one_ns);
	KUNIT_EXPECT_FALSE(test, tai_back || utc_back);

	/* A step back of 1 us is published, and reported. */
	kvm_vmclock_set_time(&new, t_old - 1000 * one_ns);
	kvm_vmclock_reanchor(&old, 37, &new, 37, false, &tai_back, &utc_back);
	KUNIT_EXPECT_TRUE(test, kvm_vmclock_time(&new) == t_old - 1000 * one_ns);
	KUNIT_EXPECT_TRUE(test, tai_back && utc_back);

	/* A leap second insertion goes back in UTC only, and is exempt. */
	kvm_vmclock_set_time(&new, t_old);
	kvm_vmclock_reanchor(&old, 36, &new, 37, true, &tai_back, &utc_back);
	KUNIT_EXPECT_FALSE(test, tai_back || utc_back);
	kvm_vmclock_reanchor(&old, 36, &new, 37, false, &tai_back, &utc_back);
	KUNIT_EXPECT_FALSE(test, tai_back);
	KUNIT_EXPECT_TRUE(test, utc_back);

	/* A TAI offset correction goes back in TAI only. */
	kvm_vmclock_set_time(&new, t_old - ((u128)1 << 64));
	kvm_vmclock_reanchor(&old, 37, &new, 36, false, &tai_back, &utc_back);
	KUNIT_EXPECT_TRUE(test, tai_back);
	KUNIT_EXPECT_FALSE(test, utc_back);
}

/* Only what defines the line or the NTP state counts as a change. */
static void vmclock_test_tk_changed(struct kunit *test)
{
	struct kvm_vmclock_tk old, new;

	vmclock_test_tk(&old);

	/* A tick: time accumulated, mult dithered, maxerror grown. */
	new = old;
	new.cycle_last += new.cycle_interval;
	new.xtime_nsec += 1000000ULL << 24;
	new.ntp_error = -12345;
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_tk_changed(&old, &new));
	new.xtime_sec++;
	new.ntp.maxerror_us += MAXFREQ / NSEC_PER_USEC;
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_tk_changed(&old, &new));
	/* Small changes of the estimated error and decrease of the maximum. */
	new.ntp.esterror_us += 10;
	new.ntp.maxerror_us -= 1000;
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_tk_changed(&old, &new));

#define EXPECT_CHANGED(stmt)						\
	do {								\
		new = old;						\
		stmt;							\
		KUNIT_EXPECT_TRUE_MSG(test,				\
				      kvm_vmclock_tk_changed(&old, &new), \
				      #stmt);				\
	} while (0)

	EXPECT_CHANGED(new.ntp_tick++);
	EXPECT_CHANGED(new.was_set = true);
	EXPECT_CHANGED(new.tsc = false);
	EXPECT_CHANGED(new.cs_was_changed_seq++);
	EXPECT_CHANGED(new.tai_offset++);
	EXPECT_CHANGED(new.ntp.status |= STA_UNSYNC);
	EXPECT_CHANGED(new.ntp.status |= STA_INS);
	EXPECT_CHANGED(new.ntp.leap_state = TIME_INS);
	EXPECT_CHANGED(new.ntp.esterror_us += 20);
	EXPECT_CHANGED(new.ntp.maxerror_us += 1);
	EXPECT_CHANGED(new.ntp.maxerror_us -= 2000);
#undef EXPECT_CHANGED

	/* While unsynchronized, error bounds are not published. */
	old.ntp.status |= STA_UNSYNC;
	new = old;
	new.ntp.maxerror_us += 1000;
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_tk_changed(&old, &new));
	/* Nor anything else while the clocksource is not the TSC. */
	old.tsc = false;
	new = old;
	new.ntp.status &= ~STA_UNSYNC;
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_tk_changed(&old, &new));
}

/*
 * A slower line published later starts where the old one is then, and
 * slews to meet the new line.
 */
static void vmclock_test_catch_up(struct kunit *test)
{
	const u64 h0 = 600 * HOST_TSC_HZ, tick = HOST_TSC_HZ / 250;
	const u64 meet = h0 + tick + 2 * HOST_TSC_HZ;
	const u128 one_ns = VMCLOCK_NSEC_FRAC;
	struct vmclock_abi old, new, slow;
	u64 period, slew_ns;
	u128 t;

	vmclock_test_host(&old, HOST_TSC_HZ, h0);
	old.flags |= cpu_to_le64(VMCLOCK_FLAG_TIME_ESTERROR_VALID);
	old.time_esterror_nanosec = cpu_to_le64(1000);
	old.time_maxerror_nanosec = cpu_to_le64(5000);

	/* 100 ppm slower from h0 on: 400 ns behind a 4 ms tick later. */
	period = le64_to_cpu(old.counter_period_frac_sec);
	slow = old;
	slow.counter_period_frac_sec = cpu_to_le64(period - period / 10000);

	new = slow;
	slew_ns = kvm_vmclock_catch_up(&old, &new, h0 + tick);
	KUNIT_EXPECT_EQ(test, slew_ns, VMCLOCK_AUTO_SLEW_NS);
	t = kvm_vmclock_time_at(&old, h0 + tick);
	KUNIT_EXPECT_TRUE(test, kvm_vmclock_time_at(&new, h0 + tick) == t);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(new.counter_value), h0 + tick);
	/* Slower than the new line, until it meets it two seconds later. */
	KUNIT_EXPECT_LT(test, le64_to_cpu(new.counter_period_frac_sec),
			le64_to_cpu(slow.counter_period_frac_sec));
	KUNIT_EXPECT_TRUE(test,
			  vmclock_test_abs_diff(kvm_vmclock_time_at(&new, meet),
						kvm_vmclock_time_at(&slow, meet)) <
			  2 * one_ns);
	/* 400 ns behind, added to the error bounds. */
	KUNIT_EXPECT_GE(test, le64_to_cpu(new.time_esterror_nanosec), 1000 + 400);
	KUNIT_EXPECT_LE(test, le64_to_cpu(new.time_esterror_nanosec), 1000 + 402);
	KUNIT_EXPECT_GE(test, le64_to_cpu(new.time_maxerror_nanosec), 5000 + 400);

	/* Once met, the new line itself is not behind the slewed one. */
	KUNIT_EXPECT_EQ(test, kvm_vmclock_catch_up(&new, &slow, meet + tick), 0);

	/* A faster line, or the same one, is left alone. */
	new = old;
	KUNIT_EXPECT_EQ(test, kvm_vmclock_catch_up(&slow, &new, h0 + tick), 0);
	KUNIT_EXPECT_EQ(test, kvm_vmclock_catch_up(&old, &new, h0 + tick), 0);
	KUNIT_EXPECT_TRUE(test, !memcmp(&new, &old, sizeof(new)));

	/*
	 * Behind by more than a rate change explains (10 ms): not moved, and
	 * not monotonic.
	 */
	new = slow;
	KUNIT_EXPECT_EQ(test, kvm_vmclock_catch_up(&old, &new,
						   h0 + 100 * HOST_TSC_HZ), 0);
	KUNIT_EXPECT_FALSE(test, le64_to_cpu(new.flags) &
			   VMCLOCK_FLAG_TIME_MONOTONIC);
	new.flags = slow.flags;
	KUNIT_EXPECT_TRUE(test, !memcmp(&new, &slow, sizeof(new)));

	/* A leap second insertion in UTC: one second back, but not in TAI. */
	old.time_type = VMCLOCK_TIME_UTC;
	old.tai_offset_sec = cpu_to_le16((u16)-37);
	old.flags |= cpu_to_le64(VMCLOCK_FLAG_TAI_OFFSET_VALID);
	new = old;
	new.tai_offset_sec = cpu_to_le16((u16)-38);
	le64_add_cpu(&new.time_sec, -1);
	KUNIT_EXPECT_EQ(test, kvm_vmclock_catch_up(&old, &new, h0 + tick), 0);
	KUNIT_EXPECT_TRUE(test, le64_to_cpu(new.flags) &
			  VMCLOCK_FLAG_TIME_MONOTONIC);

	/* Nothing to keep monotonic with an unreliable line. */
	old.clock_status = VMCLOCK_STATUS_UNRELIABLE;
	KUNIT_EXPECT_EQ(test, kvm_vmclock_catch_up(&old, &new, h0 + tick), 0);
}

/* A line moved to another anchor on itself is the same line. */
static void vmclock_test_same_line(struct kunit *test)
{
	const u64 h0 = 600 * HOST_TSC_HZ, h1 = h0 + 3 * HOST_TSC_HZ;
	struct vmclock_abi a, b;

	vmclock_test_host(&a, HOST_TSC_HZ, h0);
	b = a;
	b.counter_value = cpu_to_le64(h1);
	kvm_vmclock_set_time(&b, kvm_vmclock_time_at(&a, h1));
	KUNIT_EXPECT_TRUE(test, kvm_vmclock_same_line(&a, &b));

	/* Two nanoseconds off, another period or another field: not. */
	kvm_vmclock_set_time(&b, kvm_vmclock_time(&b) + 2 * VMCLOCK_NSEC_FRAC);
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_same_line(&a, &b));
	kvm_vmclock_set_time(&b, kvm_vmclock_time_at(&a, h1));
	le64_add_cpu(&b.counter_period_frac_sec, 1);
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_same_line(&a, &b));
	b.counter_period_frac_sec = a.counter_period_frac_sec;
	b.leap_indicator = VMCLOCK_LEAP_PRE_POS;
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_same_line(&a, &b));
}

static struct kunit_case vmclock_test_cases_list[] = {
	KUNIT_CASE_PARAM(vmclock_test_ratio, vmclock_ratio_gen_params),
	KUNIT_CASE(vmclock_test_too_slow),
	KUNIT_CASE(vmclock_test_error_rates),
	KUNIT_CASE(vmclock_test_div128),
	KUNIT_CASE(vmclock_test_guest_tsc),
	KUNIT_CASE(vmclock_test_check_host),
	KUNIT_CASE(vmclock_test_anchor),
	KUNIT_CASE(vmclock_test_tk_rate),
	KUNIT_CASE(vmclock_test_tk_anchor),
	KUNIT_CASE(vmclock_test_leap),
	KUNIT_CASE(vmclock_test_reanchor),
	KUNIT_CASE(vmclock_test_tk_changed),
	KUNIT_CASE(vmclock_test_catch_up),
	KUNIT_CASE(vmclock_test_same_line),
	{}
};

static struct kunit_suite vmclock_test_suite = {
	.name = "kvm-x86-vmclock",
	.test_cases = vmclock_test_cases_list,
};

kunit_test_suite(vmclock_test_suite);
