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
 * A clock line on a 3 GHz TSC, as kernel/time publishes it: synchronized,
 * TAI offset 37 set by the NTP daemon, at 2026-01-01 + 0.25 s TAI.
 */
static void vmclock_test_line(struct clock_line *line)
{
	memset(line, 0, sizeof(*line));
	line->gen = 5;
	line->valid = true;
	line->cs_id = CSID_X86_TSC;
	line->cycles = 600 * HOST_TSC_HZ;
	line->tai_sec = T0_SEC + 37;
	line->tai_frac = 1ULL << 62;
	line->period_shift = 0;
	line->period_frac = div64_u64(U64_MAX, HOST_TSC_HZ);
	line->tai_offset = 37;
	line->tai_offset_set = true;
	line->synced = true;
	line->esterror_ns = 10000;
	line->maxerror_ns = 100000;
	line->maxerror_ppb = 500000;
	line->line_error_ns = 1018;
}

static void vmclock_test_line_host(struct kunit *test)
{
	struct clock_line line;
	struct vmclock_abi clk;
	u64 flags, rate;

	vmclock_test_line(&line);

	/* TAI, with everything the host knows. */
	KUNIT_ASSERT_TRUE(test, kvm_vmclock_line_host(&line, false, &clk));
	flags = le64_to_cpu(clk.flags);
	KUNIT_EXPECT_EQ(test, clk.time_type, VMCLOCK_TIME_TAI);
	KUNIT_EXPECT_EQ(test, clk.clock_status, VMCLOCK_STATUS_SYNCHRONIZED);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(clk.counter_value), line.cycles);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(clk.time_sec), T0_SEC + 37);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(clk.time_frac_sec), 1ULL << 62);
	KUNIT_EXPECT_EQ(test, (s16)le16_to_cpu(clk.tai_offset_sec), -37);
	KUNIT_EXPECT_TRUE(test, flags & VMCLOCK_FLAG_TAI_OFFSET_VALID);
	KUNIT_EXPECT_TRUE(test, flags & VMCLOCK_FLAG_TIME_MONOTONIC);
	KUNIT_EXPECT_TRUE(test, flags & VMCLOCK_FLAG_TIME_MAXERROR_VALID);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(clk.time_maxerror_nanosec), 100000);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(clk.time_esterror_nanosec), 10000);
	/* 500 ppm of the period, rounded up. */
	rate = le64_to_cpu(clk.counter_period_maxerror_rate_frac_sec);
	KUNIT_EXPECT_EQ(test, rate, div64_u64(line.period_frac, 2000) + 1);

	/* UTC: TAI - 37 s. */
	KUNIT_ASSERT_TRUE(test, kvm_vmclock_line_host(&line, true, &clk));
	KUNIT_EXPECT_EQ(test, clk.time_type, VMCLOCK_TIME_UTC);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(clk.time_sec), T0_SEC);

	/*
	 * An offset the NTP daemon never set (after a leap second it is +-1),
	 * 0 ("unknown") or one that does not fit the ABI's s16: TAI is not
	 * known.  A TAI clock is then unusable, a UTC one has no TAI offset.
	 */
	line.tai_offset = 1;
	line.tai_offset_set = false;
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_line_host(&line, false, &clk));
	KUNIT_EXPECT_EQ(test, clk.clock_status, VMCLOCK_STATUS_UNRELIABLE);
	KUNIT_ASSERT_TRUE(test, kvm_vmclock_line_host(&line, true, &clk));
	KUNIT_EXPECT_FALSE(test, le64_to_cpu(clk.flags) &
			   VMCLOCK_FLAG_TAI_OFFSET_VALID);
	KUNIT_EXPECT_EQ(test, le16_to_cpu(clk.tai_offset_sec), 0);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(clk.time_sec), T0_SEC + 36);
	line.tai_offset_set = true;
	line.tai_offset = 0;
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_line_host(&line, false, &clk));
	line.tai_offset = S16_MAX + 1;
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_line_host(&line, false, &clk));
	KUNIT_ASSERT_TRUE(test, kvm_vmclock_line_host(&line, true, &clk));
	KUNIT_EXPECT_FALSE(test, le64_to_cpu(clk.flags) &
			   VMCLOCK_FLAG_TAI_OFFSET_VALID);
	line.tai_offset = S16_MAX;
	KUNIT_EXPECT_TRUE(test, kvm_vmclock_line_host(&line, false, &clk));
	line.tai_offset = 37;

	/* Not synchronized: free running, no error bounds. */
	line.synced = false;
	KUNIT_ASSERT_TRUE(test, kvm_vmclock_line_host(&line, false, &clk));
	KUNIT_EXPECT_EQ(test, clk.clock_status, VMCLOCK_STATUS_FREERUNNING);
	KUNIT_EXPECT_FALSE(test, le64_to_cpu(clk.flags) &
			   (VMCLOCK_FLAG_TIME_MAXERROR_VALID |
			    VMCLOCK_FLAG_TIME_ESTERROR_VALID |
			    VMCLOCK_FLAG_PERIOD_MAXERROR_VALID));
	line.synced = true;

	/* Another clocksource, or none usable: unreliable. */
	line.cs_id = CSID_X86_KVM_CLK;
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_line_host(&line, true, &clk));
	line.cs_id = CSID_X86_TSC;
	line.valid = false;
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_line_host(&line, true, &clk));
	KUNIT_EXPECT_EQ(test, clk.clock_status, VMCLOCK_STATUS_UNRELIABLE);
}

static void vmclock_test_leap(struct kunit *test)
{
	static const struct {
		enum clock_line_leap leap;
		u8 indicator;
	} cases[] = {
		{ CLOCK_LINE_LEAP_NONE,		VMCLOCK_LEAP_NONE },
		{ CLOCK_LINE_LEAP_PRE_INS,	VMCLOCK_LEAP_PRE_POS },
		{ CLOCK_LINE_LEAP_PRE_DEL,	VMCLOCK_LEAP_PRE_NEG },
		{ CLOCK_LINE_LEAP_INS,		VMCLOCK_LEAP_POS },
		{ CLOCK_LINE_LEAP_POST_INS,	VMCLOCK_LEAP_POST_POS },
		{ CLOCK_LINE_LEAP_POST_DEL,	VMCLOCK_LEAP_POST_NEG },
	};
	int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++)
		KUNIT_EXPECT_EQ_MSG(test, kvm_vmclock_leap_indicator(cases[i].leap),
				    cases[i].indicator, "leap state %d",
				    cases[i].leap);
}

/*
 * Whether a new line may claim TIME_MONOTONIC: decided once per line, and
 * not after a step in the clock's time scale, a moved guest TSC or a write
 * that failed.
 */
static void vmclock_test_auto_monotonic(struct kunit *test)
{
	struct kvm_vmclock_auto_rec rec = {
		.gen = 8, .steps = 3, .tsc_offset = 100, .tsc_ratio = 1,
	};
	struct kvm_vmclock_state vc = {};

	/* Nothing written yet. */
	KUNIT_EXPECT_TRUE(test, kvm_vmclock_auto_monotonic(&vc, &rec));

	vc.auto_written = true;
	vc.written_valid = true;
	vc.auto_gen = 7;
	vc.auto_steps = 3;
	vc.auto_tsc_offset = 100;
	vc.auto_tsc_ratio = 1;
	KUNIT_EXPECT_TRUE(test, kvm_vmclock_auto_monotonic(&vc, &rec));

	/* The line decided already. */
	vc.auto_gen = 8;
	vc.auto_monotonic = false;
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_auto_monotonic(&vc, &rec));
	vc.auto_gen = 7;

	/* The host clock went back in this time scale. */
	vc.auto_steps = 2;
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_auto_monotonic(&vc, &rec));
	vc.auto_steps = 3;

	/* The guest TSC was moved or rescaled. */
	vc.auto_tsc_offset = 99;
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_auto_monotonic(&vc, &rec));
	vc.auto_tsc_offset = 100;
	vc.auto_tsc_ratio = 2;
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_auto_monotonic(&vc, &rec));
	vc.auto_tsc_ratio = 1;

	/* The last write failed: guest memory may hold anything. */
	vc.written_valid = false;
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_auto_monotonic(&vc, &rec));

	/*
	 * A new registration at the place of that failed write is no fresh
	 * start; one at a place KVM never wrote is.
	 */
	vc.auto_written = false;
	vc.seq_known = true;
	KUNIT_EXPECT_FALSE(test, kvm_vmclock_auto_monotonic(&vc, &rec));
	vc.seq_known = false;
	KUNIT_EXPECT_TRUE(test, kvm_vmclock_auto_monotonic(&vc, &rec));
}

/*
 * A slower line published later starts where the old one is then, and
 * slews to meet the new line: over two seconds, at most 500 ppm slower, or
 * gently if it is behind by a microsecond or less.
 */
static void vmclock_test_catch_up(struct kunit *test)
{
	const u64 h0 = 600 * HOST_TSC_HZ, tick = HOST_TSC_HZ / 250;
	const u64 meet = h0 + tick + 2 * HOST_TSC_HZ;
	const u64 gentle_meet = h0 + tick + 32 * HOST_TSC_HZ;
	const u128 one_ns = VMCLOCK_NSEC_FRAC;
	struct vmclock_abi old, new, slow, slower;
	u64 period, rate, slew_ns;
	u128 t;

	vmclock_test_host(&old, HOST_TSC_HZ, h0);
	old.flags |= cpu_to_le64(VMCLOCK_FLAG_TIME_ESTERROR_VALID);
	old.time_esterror_nanosec = cpu_to_le64(1000);
	old.time_maxerror_nanosec = cpu_to_le64(5000);
	rate = le64_to_cpu(old.counter_period_maxerror_rate_frac_sec);

	/* 1000 ppm slower from h0 on: 4 us behind a 4 ms tick later. */
	period = le64_to_cpu(old.counter_period_frac_sec);
	slower = old;
	slower.counter_period_frac_sec = cpu_to_le64(period - period / 1000);

	new = slower;
	slew_ns = kvm_vmclock_catch_up(&old, &new, h0 + tick);
	KUNIT_EXPECT_EQ(test, slew_ns, VMCLOCK_AUTO_SLEW_MIN_NS);
	t = kvm_vmclock_time_at(&old, h0 + tick);
	KUNIT_EXPECT_TRUE(test, kvm_vmclock_time_at(&new, h0 + tick) == t);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(new.counter_value), h0 + tick);
	/*
	 * Slower than the new line, until it meets it two seconds later (of
	 * the new line's, which are 0.1% longer than the host's: 4 ns).
	 */
	KUNIT_EXPECT_LT(test, le64_to_cpu(new.counter_period_frac_sec),
			le64_to_cpu(slower.counter_period_frac_sec));
	KUNIT_EXPECT_TRUE(test,
			  vmclock_test_abs_diff(kvm_vmclock_time_at(&new, meet),
						kvm_vmclock_time_at(&slower, meet)) <
			  6 * one_ns);
	/* 4 us behind, added to the error bounds, the slew to the rate. */
	KUNIT_EXPECT_GE(test, le64_to_cpu(new.time_esterror_nanosec), 1000 + 4000);
	KUNIT_EXPECT_LE(test, le64_to_cpu(new.time_esterror_nanosec), 1000 + 4002);
	KUNIT_EXPECT_GE(test, le64_to_cpu(new.time_maxerror_nanosec), 5000 + 4000);
	KUNIT_EXPECT_EQ(test,
			le64_to_cpu(new.counter_period_maxerror_rate_frac_sec) - rate,
			le64_to_cpu(slower.counter_period_frac_sec) -
			le64_to_cpu(new.counter_period_frac_sec));

	/* Once met, the new line itself is not behind the slewed one. */
	KUNIT_EXPECT_EQ(test, kvm_vmclock_catch_up(&new, &slower, meet + tick), 0);

	/*
	 * 100 ppm slower: 400 ns behind, slewed gently.  It meets the new
	 * line after 32 s and is replaced after 64 s, when it is as far
	 * behind it as it was ahead.
	 */
	slow = old;
	slow.counter_period_frac_sec = cpu_to_le64(period - period / 10000);
	new = slow;
	slew_ns = kvm_vmclock_catch_up(&old, &new, h0 + tick);
	KUNIT_EXPECT_EQ(test, slew_ns, 2 * VMCLOCK_AUTO_SLEW_GENTLE_NS);
	KUNIT_EXPECT_TRUE(test, kvm_vmclock_time_at(&new, h0 + tick) ==
			  kvm_vmclock_time_at(&old, h0 + tick));
	KUNIT_EXPECT_TRUE(test,
			  vmclock_test_abs_diff(kvm_vmclock_time_at(&new, gentle_meet),
						kvm_vmclock_time_at(&slow, gentle_meet)) <
			  2 * one_ns);
	t = kvm_vmclock_time_at(&slow, gentle_meet + 32 * HOST_TSC_HZ) -
	    kvm_vmclock_time_at(&new, gentle_meet + 32 * HOST_TSC_HZ);
	KUNIT_EXPECT_TRUE(test, t > 398 * one_ns && t < 402 * one_ns);
	KUNIT_EXPECT_GE(test, le64_to_cpu(new.time_maxerror_nanosec), 5000 + 400);
	KUNIT_EXPECT_LE(test, le64_to_cpu(new.time_maxerror_nanosec), 5000 + 402);
	KUNIT_EXPECT_EQ(test,
			le64_to_cpu(new.counter_period_maxerror_rate_frac_sec) - rate,
			le64_to_cpu(slow.counter_period_frac_sec) -
			le64_to_cpu(new.counter_period_frac_sec));
	/* Just over a microsecond behind: the two-second slew. */
	new = slow;
	KUNIT_EXPECT_EQ(test, kvm_vmclock_catch_up(&old, &new, h0 + 11 * tick),
			VMCLOCK_AUTO_SLEW_MIN_NS);

	/* A faster line, or the same one, is left alone. */
	new = old;
	KUNIT_EXPECT_EQ(test, kvm_vmclock_catch_up(&slow, &new, h0 + tick), 0);
	KUNIT_EXPECT_EQ(test, kvm_vmclock_catch_up(&old, &new, h0 + tick), 0);
	KUNIT_EXPECT_TRUE(test, !memcmp(&new, &old, sizeof(new)));

	/*
	 * 10 ms behind (a tick length swung by 20% at HZ=100, and more):
	 * slewed at 500 ppm, i.e. over 20 s.
	 */
	new = slow;
	slew_ns = kvm_vmclock_catch_up(&old, &new, h0 + 100 * HOST_TSC_HZ);
	KUNIT_EXPECT_GE(test, slew_ns, 20 * NSEC_PER_SEC);
	KUNIT_EXPECT_LE(test, slew_ns, 20 * NSEC_PER_SEC + 2000);
	KUNIT_EXPECT_TRUE(test, le64_to_cpu(new.flags) &
			  VMCLOCK_FLAG_TIME_MONOTONIC);

	/* Beyond 100 ms behind: a step, not moved, and not monotonic. */
	new = slow;
	KUNIT_EXPECT_EQ(test, kvm_vmclock_catch_up(&old, &new,
						   h0 + 1001 * HOST_TSC_HZ), 0);
	KUNIT_EXPECT_FALSE(test, le64_to_cpu(new.flags) &
			   VMCLOCK_FLAG_TIME_MONOTONIC);
	new.flags = slow.flags;
	KUNIT_EXPECT_TRUE(test, !memcmp(&new, &slow, sizeof(new)));

	/*
	 * Compared in the clock's own time scale: a UTC clock whose TAI
	 * offset is corrected downwards has not gone back.
	 */
	old.time_type = VMCLOCK_TIME_UTC;
	old.tai_offset_sec = cpu_to_le16((u16)-38);
	old.flags |= cpu_to_le64(VMCLOCK_FLAG_TAI_OFFSET_VALID);
	new = old;
	new.tai_offset_sec = cpu_to_le16((u16)-37);
	KUNIT_EXPECT_EQ(test, kvm_vmclock_catch_up(&old, &new, h0 + tick), 0);
	KUNIT_EXPECT_TRUE(test, le64_to_cpu(new.flags) &
			  VMCLOCK_FLAG_TIME_MONOTONIC);

	/* Nothing to keep monotonic with an unreliable line. */
	old.clock_status = VMCLOCK_STATUS_UNRELIABLE;
	new = slow;
	KUNIT_EXPECT_EQ(test, kvm_vmclock_catch_up(&old, &new, h0 + tick), 0);
}

static struct kunit_case vmclock_test_cases_list[] = {
	KUNIT_CASE_PARAM(vmclock_test_ratio, vmclock_ratio_gen_params),
	KUNIT_CASE(vmclock_test_too_slow),
	KUNIT_CASE(vmclock_test_error_rates),
	KUNIT_CASE(vmclock_test_div128),
	KUNIT_CASE(vmclock_test_guest_tsc),
	KUNIT_CASE(vmclock_test_check_host),
	KUNIT_CASE(vmclock_test_anchor),
	KUNIT_CASE(vmclock_test_line_host),
	KUNIT_CASE(vmclock_test_leap),
	KUNIT_CASE(vmclock_test_auto_monotonic),
	KUNIT_CASE(vmclock_test_catch_up),
	{}
};

static struct kunit_suite vmclock_test_suite = {
	.name = "kvm-x86-vmclock",
	.test_cases = vmclock_test_cases_list,
};

kunit_test_suite(vmclock_test_suite);
