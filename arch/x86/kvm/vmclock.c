// SPDX-License-Identifier: GPL-2.0
/*
 * KVM vmclock: keep a vmclock structure (include/uapi/linux/vmclock-abi.h)
 * in guest memory consistent with the guest's TSC.
 *
 * The VMM supplies the clock in the host TSC domain with
 * KVM_SET_VMCLOCK_HOST (userspace mode), or KVM derives it from host
 * timekeeping (auto mode).  KVM converts it to the guest TSC domain with the
 * VM's TSC offset and scaling ratio and republishes it whenever either
 * changes, so that the structure is right the moment a vCPU runs, e.g. right
 * after live migration, without the VMM racing with vCPUs.
 *
 * Guest memory is only written from vCPU context (KVM_REQ_VMCLOCK_UPDATE),
 * through the VMM's mapping of guest memory, so that the writes are dirty
 * logged like any other.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/irq_work.h>
#include <linux/kvm_host.h>
#include <linux/math64.h>
#include <linux/overflow.h>
#include <linux/seqlock.h>
#include <linux/timekeeper_internal.h>
#include <linux/timex.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>
#include <asm/tsc.h>

#include "x86.h"
#include "vmclock.h"

#define VMCLOCK_SEQ_OFFSET	offsetof(struct vmclock_abi, seq_count)
#define VMCLOCK_BODY_OFFSET	offsetof(struct vmclock_abi, disruption_marker)

/*
 * How often to retry claiming seq_count.  The VMM may legitimately update
 * the structure too (e.g. the disruption marker), so give a writer that holds
 * seq_count odd a short while to finish before taking over.
 */
#define VMCLOCK_SEQ_RETRIES	100
#define VMCLOCK_WRITE_RETRIES	3

#define VMCLOCK_KNOWN_FLAGS	(VMCLOCK_FLAG_TAI_OFFSET_VALID |	\
				 VMCLOCK_FLAG_DISRUPTION_SOON |		\
				 VMCLOCK_FLAG_DISRUPTION_IMMINENT |	\
				 VMCLOCK_FLAG_PERIOD_ESTERROR_VALID |	\
				 VMCLOCK_FLAG_PERIOD_MAXERROR_VALID |	\
				 VMCLOCK_FLAG_TIME_ESTERROR_VALID |	\
				 VMCLOCK_FLAG_TIME_MAXERROR_VALID |	\
				 VMCLOCK_FLAG_TIME_MONOTONIC |		\
				 VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT |	\
				 VMCLOCK_FLAG_NOTIFICATION_PRESENT)

/* Flags that stay meaningful while the time data is unreliable. */
#define VMCLOCK_UNRELIABLE_FLAGS (VMCLOCK_FLAG_DISRUPTION_SOON |	\
				  VMCLOCK_FLAG_DISRUPTION_IMMINENT |	\
				  VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT |	\
				  VMCLOCK_FLAG_NOTIFICATION_PRESENT)

/*
 * floor(@n / @d), for a quotient that fits in 64 bits ((@n >> 64) < @d).
 * Long division in two 32-bit digits, so that each step is a 96-by-64 bit
 * division with a quotient below 2^32.
 */
static u64 vmclock_div128(u128 n, u64 d)
{
	u64 hi = n >> 64, lo = n;
	u64 q1, q2, r;

	q1 = mul_u64_add_u64_div_u64(hi, 1ULL << 32, lo >> 32, d);
	/* The true remainder is below @d, so wrapping arithmetic gets it. */
	r = (hi << 32) + (lo >> 32) - q1 * d;
	q2 = mul_u64_add_u64_div_u64(r, 1ULL << 32, (u32)lo, d);

	return q1 << 32 | q2;
}

/* floor(@val * 2^@shift / @ratio), saturated to U64_MAX. */
static u64 vmclock_scale(u64 val, u64 ratio, int shift)
{
	u128 n;

	if (!val)
		return 0;

	if (shift < 0) {
		/* floor(floor(a / b) / c) == floor(a / (b * c)) */
		if (shift <= -64)
			return 0;
		return div64_u64(val, ratio) >> -shift;
	}

	/* n >= 2^128 means a quotient >= 2^64, as @ratio < 2^64. */
	if (fls64(val) + shift > 128)
		return U64_MAX;

	n = (u128)val << shift;
	if ((u64)(n >> 64) >= ratio)
		return U64_MAX;

	return vmclock_div128(n, ratio);
}

/*
 * The largest t such that floor(@period * 2^t / @ratio) < 2^64, i.e.
 * @period * 2^t < @ratio * 2^64.  With p and r the positions of the most
 * significant bits, the inequality holds for p + t <= r + 63, fails for
 * p + t >= r + 65, and for p + t == r + 64 it depends on the normalized
 * mantissas.  Both arguments are nonzero.
 */
static int vmclock_max_shift(u64 period, u64 ratio)
{
	int p = fls64(period), r = fls64(ratio);
	u64 pn = period << (64 - p), rn = ratio << (64 - r);

	return r + 63 - p + (pn < rn);
}

/*
 * Convert @host, a vmclock in the host TSC domain, to the domain of a guest
 * TSC that reads @offset + host TSC * @ratio / 2^@frac_bits, that is what
 * kvm_read_l1_tsc() computes.
 *
 * The guest's counter_period_shift is chosen as large as possible (up to 63)
 * so that the guest period keeps 64 significant bits: the truncation error is
 * below one unit of 2^-(64 + shift) seconds per tick, a relative error below
 * 2^-63.  The error rates are scaled the same way, saturating at U64_MAX.
 *
 * No KVM state is used, so that KUnit can check any ratio.  Returns -ERANGE
 * if the guest period does not fit the ABI (a guest TSC slower than 1 Hz).
 */
static int kvm_vmclock_convert(const struct vmclock_abi *host, u64 offset,
			       u64 ratio, unsigned int frac_bits,
			       struct vmclock_abi *guest)
{
	u64 period = le64_to_cpu(host->counter_period_frac_sec);
	int host_shift = host->counter_period_shift;
	int shift, t;

	if (!ratio || !period)
		return -ERANGE;

	/* t = frac_bits + guest shift - host shift, see vmclock_scale(). */
	t = vmclock_max_shift(period, ratio);
	shift = min(t - (int)frac_bits + host_shift, 63);
	if (shift < 0)
		return -ERANGE;
	t = frac_bits + shift - host_shift;

	*guest = *host;
	guest->seq_count = 0;
	guest->counter_period_shift = shift;
	guest->counter_value =
		cpu_to_le64(offset + mul_u64_u64_shr(le64_to_cpu(host->counter_value),
						     ratio, frac_bits));
	guest->counter_period_frac_sec =
		cpu_to_le64(vmclock_scale(period, ratio, t));
	guest->counter_period_esterror_rate_frac_sec =
		cpu_to_le64(vmclock_scale(le64_to_cpu(host->counter_period_esterror_rate_frac_sec),
					  ratio, t));
	guest->counter_period_maxerror_rate_frac_sec =
		cpu_to_le64(vmclock_scale(le64_to_cpu(host->counter_period_maxerror_rate_frac_sec),
					  ratio, t));
	return 0;
}

/* Check a VMM-supplied vmclock; size and seq_count are KVM's, and ignored. */
static int kvm_vmclock_check_host(const struct vmclock_abi *host)
{
	if (le32_to_cpu(host->magic) != VMCLOCK_MAGIC ||
	    le16_to_cpu(host->version) != 1 ||
	    host->counter_id != VMCLOCK_COUNTER_X86_TSC)
		return -EINVAL;

	if (host->counter_period_shift > 63 || !host->counter_period_frac_sec)
		return -EINVAL;

	if (host->clock_status > VMCLOCK_STATUS_UNRELIABLE ||
	    host->time_type > VMCLOCK_TIME_INVALID_MAYBE_SMEARED ||
	    host->leap_indicator > VMCLOCK_LEAP_POST_NEG ||
	    host->leap_second_smearing_hint > VMCLOCK_SMEARING_UTC_SLS)
		return -EINVAL;

	if (memchr_inv(host->pad, 0, sizeof(host->pad)) ||
	    le64_to_cpu(host->flags) & ~(u64)VMCLOCK_KNOWN_FLAGS)
		return -EINVAL;

	return 0;
}

/*
 * If the VMM's counter_value is ahead of the host TSC now (@now), move the
 * reference point back to @now along the VMM's line: the guest computes
 * TSC - counter_value in unsigned arithmetic, which must not wrap.
 */
static int kvm_vmclock_anchor(struct vmclock_abi *host, u64 now)
{
	u64 counter = le64_to_cpu(host->counter_value);
	u128 time, back;

	if (counter <= now)
		return 0;

	/* In units of 2^-64 seconds, like time_frac_sec. */
	back = ((u128)(counter - now) *
		le64_to_cpu(host->counter_period_frac_sec)) >>
	       host->counter_period_shift;
	time = (u128)le64_to_cpu(host->time_sec) << 64 |
	       le64_to_cpu(host->time_frac_sec);
	if (back > time)
		return -EINVAL;

	time -= back;
	host->time_sec = cpu_to_le64(time >> 64);
	host->time_frac_sec = cpu_to_le64((u64)time);
	host->counter_value = cpu_to_le64(now);
	return 0;
}

/*
 * The guest TSC is a fixed linear function of the host TSC, the same for all
 * vCPUs: no catch-up mode, a common offset and ratio, and a host TSC that is
 * stable and drives the master clock.  Returns false if not.
 */
static bool kvm_vmclock_guest_tsc(struct kvm *kvm, u64 *offset, u64 *ratio)
{
	struct kvm_vcpu *vcpu;
	unsigned long i;
	bool found = false;

	if (!READ_ONCE(kvm->arch.use_master_clock) || kvm_check_tsc_unstable())
		return false;

	kvm_for_each_vcpu(i, vcpu, kvm) {
		u64 vcpu_offset = READ_ONCE(vcpu->arch.l1_tsc_offset);
		u64 vcpu_ratio = READ_ONCE(vcpu->arch.l1_tsc_scaling_ratio);

		if (vcpu->arch.tsc_catchup || vcpu->arch.tsc_always_catchup ||
		    vcpu->arch.guest_tsc_protected)
			return false;

		if (found && (vcpu_offset != *offset || vcpu_ratio != *ratio))
			return false;

		*offset = vcpu_offset;
		*ratio = vcpu_ratio;
		found = true;
	}
	return found;
}

/*
 * KVM_VMCLOCK_F_AUTO: a vmclock derived from host timekeeping.
 *
 * The pvclock_gtod notifier runs on every timekeeping update, i.e. every
 * tick, with the timekeeper lock held.  The timekeeper's mult is dithered
 * almost every tick to steer the clock onto the line that NTP asks for,
 * so it is not looked at; the line itself only changes when NTP changes the
 * tick length, the clocksource changes or the clock is set.  The notifier
 * compares a snapshot of what defines the line and the NTP state with the
 * one the last line was computed from, and only if something changed
 * computes a new host line (host TSC domain, TAI) and kicks the VMs with an
 * AUTO vmclock through irq_work and a workqueue.  Each VM converts the host
 * line to its guest TSC domain like it does in userspace mode.
 */

/* One nanosecond in units of 2^-64 s, rounded up. */
#define VMCLOCK_NSEC_FRAC	(div64_u64(U64_MAX, NSEC_PER_SEC) + 1)

/*
 * Rounding of the anchor point and of the period, and the re-anchoring of
 * a line that is behind its predecessor by at most this much (see
 * kvm_vmclock_reanchor()), in nanoseconds.
 */
#define VMCLOCK_AUTO_ERROR_NS	2

/*
 * Largest step back of a new line that kvm_vmclock_catch_up()
 * absorbs: a rate change of 10% (adjtimex() ADJ_TICK) over a tick at HZ=100.
 */
#define VMCLOCK_AUTO_MAX_CATCHUP_NS	(NSEC_PER_SEC / 100 / 10)

/*
 * A slewed line (see kvm_vmclock_catch_up()) meets the NTP line after this
 * long.  That is at most 500 ppm slower, the rate at which adjtime() slews
 * the host clock itself, for the largest difference absorbed.  Two seconds
 * are more than the one between the tick length changes of the kernel PLL,
 * so that a PLL slewing the host clock does not cause more updates.
 */
#define VMCLOCK_AUTO_SLEW_NS		(2 * NSEC_PER_SEC)

/* What a host clock line is computed from. */
struct kvm_vmclock_tk {
	bool tsc;
	bool was_set;
	u8 cs_was_changed_seq;
	u32 ntp_error_shift;
	u64 cycle_last;
	u64 xtime_sec;
	u64 xtime_nsec;
	s64 ntp_error;
	u64 ntp_tick;
	u64 cycle_interval;
	s64 xtime_remainder;
	s32 tai_offset;
	struct ntp_sync_state ntp;
};

/* The host clock line that the VMs publish, in the host TSC domain. */
struct kvm_vmclock_line {
	/* TAI; UTC if @tai_offset is 0, i.e. not known. */
	struct vmclock_abi clk;
	/* TAI - UTC in seconds (tk->tai_offset), 0 if not known. */
	s32 tai_offset;
	/* Incremented for each new line; 0 until there is one. */
	u64 gen;
	/* Number of lines that went back in time in TAI, in UTC. */
	u64 tai_steps;
	u64 utc_steps;
};

static struct {
	seqcount_t seq;
	struct kvm_vmclock_line line;
	/* Only used by the notifier, serialized by the timekeeper lock. */
	struct kvm_vmclock_tk tk;
} kvm_vmclock_host = {
	.seq = SEQCNT_ZERO(kvm_vmclock_host.seq),
};

/* VMs with an AUTO vmclock. */
static atomic_t kvm_vmclock_auto_vms = ATOMIC_INIT(0);

/*
 * The maximum error, minus what the kernel adds by itself once a second
 * (MAXFREQ, see second_overflow()), so that only changes made by the NTP
 * daemon show.
 */
static s64 kvm_vmclock_maxerror_base(const struct kvm_vmclock_tk *tk)
{
	return tk->ntp.maxerror_us -
	       (s64)tk->xtime_sec * (MAXFREQ / NSEC_PER_USEC);
}

/*
 * Whether the error bounds moved enough to publish them again.  The
 * maximum error must never be published too small, so any increase beyond
 * the kernel's own growth, which the published period maximum error rate
 * accounts for, counts.  Otherwise a change by more than an eighth: NTP
 * error estimates have no more precision than that (they come from
 * dispersion estimates that vary by tens of percent from poll to poll), and
 * a bound that is a little too large is still a bound.
 */
static bool kvm_vmclock_errors_moved(const struct kvm_vmclock_tk *old,
				     const struct kvm_vmclock_tk *new)
{
	s64 base_old = kvm_vmclock_maxerror_base(old);
	s64 base_new = kvm_vmclock_maxerror_base(new);
	long est_old = old->ntp.esterror_us, est_new = new->ntp.esterror_us;

	if (base_new > base_old ||
	    base_old - base_new > new->ntp.maxerror_us / 8)
		return true;

	return abs(est_new - est_old) > est_old / 8;
}

/*
 * Whether @new defines another line or state than @old.  mult, which
 * timekeeping_adjust() dithers, and the accumulated time are not compared:
 * they follow the line that the NTP tick length defines.
 */
static bool kvm_vmclock_tk_changed(const struct kvm_vmclock_tk *old,
				   const struct kvm_vmclock_tk *new)
{
	if (new->was_set || old->tsc != new->tsc ||
	    old->cs_was_changed_seq != new->cs_was_changed_seq ||
	    old->ntp_tick != new->ntp_tick ||
	    old->cycle_interval != new->cycle_interval ||
	    old->xtime_remainder != new->xtime_remainder ||
	    old->ntp_error_shift != new->ntp_error_shift ||
	    old->tai_offset != new->tai_offset)
		return true;

	/* Nothing else is published while the clocksource is unusable. */
	if (!new->tsc)
		return false;

	if ((old->ntp.status ^ new->ntp.status) &
	    (STA_UNSYNC | STA_INS | STA_DEL) ||
	    old->ntp.leap_state != new->ntp.leap_state)
		return true;

	/* Error bounds are only published while synchronized. */
	if (new->ntp.status & STA_UNSYNC)
		return false;

	return kvm_vmclock_errors_moved(old, new);
}

/*
 * Whether a leap second was inserted between @old and @new.  One update can
 * cover more than a second when ticks were missed, and then goes from
 * TIME_INS straight to TIME_WAIT.
 */
static bool kvm_vmclock_leap_inserted(const struct kvm_vmclock_tk *old,
				      const struct kvm_vmclock_tk *new)
{
	return old->ntp.leap_state == TIME_INS &&
	       (new->ntp.leap_state == TIME_OOP ||
		new->ntp.leap_state == TIME_WAIT);
}

/* The vmclock leap indicator for the NTP leap second state. */
static u8 kvm_vmclock_leap_indicator(int leap_state, int status)
{
	switch (leap_state) {
	case TIME_INS:
		return VMCLOCK_LEAP_PRE_POS;
	case TIME_DEL:
		return VMCLOCK_LEAP_PRE_NEG;
	case TIME_OOP:
		return VMCLOCK_LEAP_POS;
	case TIME_WAIT:
		/* NTP daemons clear STA_INS/DEL some time after the leap. */
		if (status & STA_INS)
			return VMCLOCK_LEAP_POST_POS;
		if (status & STA_DEL)
			return VMCLOCK_LEAP_POST_NEG;
		return VMCLOCK_LEAP_NONE;
	default:
		/* Armed, but second_overflow() did not see it yet. */
		if (status & STA_INS)
			return VMCLOCK_LEAP_PRE_POS;
		if (status & STA_DEL)
			return VMCLOCK_LEAP_PRE_NEG;
		return VMCLOCK_LEAP_NONE;
	}
}

/*
 * The period of the NTP-adjusted clock, in units of 2^-(64 + *@shift) s
 * with *@shift as large as possible.  Each interval of @cycle_interval
 * cycles is worth @ntp_tick - (@xtime_remainder << @ntp_error_shift)
 * nanoseconds << NTP_SCALE_SHIFT: that is the ideal line which
 * timekeeping_adjust() steers mult to, and which tk->ntp_error measures the
 * distance to.  The xtime_remainder term, the rounding of cycle_interval
 * to whole cycles, matters: it is up to 1 / (2 * cycle_interval), e.g.
 * 170 ppb for a 3 GHz TSC with HZ=1000.  Returns 0 or -ERANGE.
 */
static int kvm_vmclock_tk_period(u64 ntp_tick, s64 xtime_remainder,
				 u32 ntp_error_shift, u64 cycle_interval,
				 u64 *period, u8 *shift)
{
	u64 num = ntp_tick - ((u64)xtime_remainder << ntp_error_shift);
	u64 den;
	int t;

	if (!cycle_interval || !num || (s64)num < 0 ||
	    check_mul_overflow(cycle_interval, (u64)NSEC_PER_SEC, &den))
		return -ERANGE;

	/* num / (den << NTP_SCALE_SHIFT) s per cycle. */
	t = min(vmclock_max_shift(num, den) - NTP_SCALE_SHIFT, 63);
	if (t < 0)
		return -ERANGE;

	*shift = t;
	*period = vmclock_scale(num, den, t + NTP_SCALE_SHIFT);
	return 0;
}

/*
 * The time at tk->cycle_last on the ideal NTP line, in units of 2^-64 s:
 * the timekeeper's own time there, plus ntp_error, the distance to the
 * ideal line that the mult dithering works off.  TAI if @tai.
 */
static u128 kvm_vmclock_tk_time(const struct kvm_vmclock_tk *tk, bool tai)
{
	const s64 ns32_per_sec = (s64)NSEC_PER_SEC << NTP_SCALE_SHIFT;
	/* xtime_nsec is below NSEC_PER_SEC << shift, and ntp_error small. */
	s64 ns32 = (s64)(tk->xtime_nsec << tk->ntp_error_shift) + tk->ntp_error;
	u64 sec = tk->xtime_sec + (tai ? tk->tai_offset : 0);

	while (ns32 < 0) {
		ns32 += ns32_per_sec;
		sec--;
	}
	sec += div64_u64(ns32, ns32_per_sec);
	ns32 %= ns32_per_sec;

	return (u128)sec << 64 |
	       vmclock_div128((u128)ns32 << (64 - NTP_SCALE_SHIFT), NSEC_PER_SEC);
}

static u128 kvm_vmclock_time(const struct vmclock_abi *clk)
{
	return (u128)le64_to_cpu(clk->time_sec) << 64 |
	       le64_to_cpu(clk->time_frac_sec);
}

static void kvm_vmclock_set_time(struct vmclock_abi *clk, u128 time)
{
	clk->time_sec = cpu_to_le64(time >> 64);
	clk->time_frac_sec = cpu_to_le64((u64)time);
}

/* The time that @clk gives at host counter value @counter. */
static u128 kvm_vmclock_time_at(const struct vmclock_abi *clk, u64 counter)
{
	u64 c0 = le64_to_cpu(clk->counter_value);
	u64 period = le64_to_cpu(clk->counter_period_frac_sec);
	u128 t0 = kvm_vmclock_time(clk), d;

	if (counter >= c0)
		return t0 + (((u128)(counter - c0) * period) >>
			     clk->counter_period_shift);

	d = ((u128)(c0 - counter) * period) >> clk->counter_period_shift;
	return d > t0 ? 0 : t0 - d;
}

/*
 * Keep TIME_MONOTONIC true when the line changes.  At the new line's
 * reference point the old line gives @old's time: if the new line starts
 * there or later, time does not go back.  The new reference point is on
 * the ideal NTP line, which is continuous across rate changes, and so is
 * the old line up to the rounding of the period and of the anchor (a few
 * units of 2^-64 s, plus 2^-63 relative; the period is rounded down so the
 * old line tends to fall behind, not ahead).  A new line that starts
 * behind by at most one nanosecond is moved up to the old line's time,
 * so that rounding never makes time go back; the line is then ahead of the
 * host clock by that much, until the next change re-anchors it.  Anything
 * further behind is the host clock going back (clock_settime(),
 * adjtimex(ADJ_SETOFFSET)): that is published as it is, and reported in
 * *@tai_back.  In UTC, a leap second insertion (@leap_insert) goes back
 * one second on purpose, which the vmclock ABI allows for TIME_MONOTONIC;
 * other steps back in UTC are reported in *@utc_back.
 */
static void kvm_vmclock_reanchor(const struct vmclock_abi *old, s32 old_tai,
				 struct vmclock_abi *new, s32 new_tai,
				 bool leap_insert, bool *tai_back,
				 bool *utc_back)
{
	u128 t_old = kvm_vmclock_time_at(old, le64_to_cpu(new->counter_value));
	u128 t_new = kvm_vmclock_time(new);
	u128 slack = VMCLOCK_NSEC_FRAC;

	*tai_back = false;
	if (t_new < t_old) {
		if (t_old - t_new <= slack)
			t_new = t_old;
		else
			*tai_back = true;
		kvm_vmclock_set_time(new, t_new);
	}

	/* UTC = TAI - tai_offset, with tai_offset >= 0 (adjtimex() ensures). */
	t_old -= (u128)old_tai << 64;
	t_new -= (u128)new_tai << 64;
	*utc_back = !leap_insert && t_new + slack < t_old;
}

/*
 * Whether @new describes the same clock as @old: the same fields, but for
 * the anchor, and at @new's anchor @old gives @new's time up to rounding.
 */
static bool kvm_vmclock_same_line(const struct vmclock_abi *old,
				  const struct vmclock_abi *new)
{
	u64 counter = le64_to_cpu(new->counter_value);
	u128 t_old = kvm_vmclock_time_at(old, counter);
	u128 t_new = kvm_vmclock_time(new);
	struct vmclock_abi moved = *old;

	if (max(t_old, t_new) - min(t_old, t_new) > VMCLOCK_NSEC_FRAC)
		return false;

	moved.counter_value = new->counter_value;
	kvm_vmclock_set_time(&moved, t_new);
	return !memcmp(&moved, new, sizeof(moved));
}

/* The host clock line for @tk, in the host TSC domain, in TAI. */
static void kvm_vmclock_tk_line(const struct kvm_vmclock_tk *tk,
				struct vmclock_abi *clk)
{
	u64 period, esterror, maxerror;
	u8 shift;

	memset(clk, 0, sizeof(*clk));
	clk->magic = cpu_to_le32(VMCLOCK_MAGIC);
	clk->version = cpu_to_le16(1);
	clk->counter_id = VMCLOCK_COUNTER_X86_TSC;
	clk->time_type = VMCLOCK_TIME_TAI;

	if (!tk->tsc || kvm_vmclock_tk_period(tk->ntp_tick, tk->xtime_remainder,
					      tk->ntp_error_shift,
					      tk->cycle_interval, &period,
					      &shift)) {
		clk->clock_status = VMCLOCK_STATUS_UNRELIABLE;
		return;
	}

	clk->counter_value = cpu_to_le64(tk->cycle_last);
	clk->counter_period_shift = shift;
	clk->counter_period_frac_sec = cpu_to_le64(period);
	kvm_vmclock_set_time(clk, kvm_vmclock_tk_time(tk, true));
	clk->leap_indicator = kvm_vmclock_leap_indicator(tk->ntp.leap_state,
							 tk->ntp.status);
	/* The guest driver's sign: UTC - TAI. */
	clk->tai_offset_sec = cpu_to_le16((u16)(s16)-tk->tai_offset);
	clk->flags = cpu_to_le64(VMCLOCK_FLAG_TIME_MONOTONIC |
				 (tk->tai_offset ? VMCLOCK_FLAG_TAI_OFFSET_VALID : 0));

	if (tk->ntp.status & STA_UNSYNC) {
		clk->clock_status = VMCLOCK_STATUS_FREERUNNING;
		return;
	}

	clk->clock_status = VMCLOCK_STATUS_SYNCHRONIZED;
	/*
	 * The kernel adds MAXFREQ to the maximum error once a second, i.e. it
	 * assumes a frequency error of up to MAXFREQ (500 ppm): publish that
	 * as the period's maximum error, and the next second's increment
	 * with the maximum error, so that the guest's bound never falls
	 * below the host's.
	 */
	esterror = max(tk->ntp.esterror_us, 0L);
	maxerror = max(tk->ntp.maxerror_us, 0L) + MAXFREQ / NSEC_PER_USEC;
	clk->time_esterror_nanosec = cpu_to_le64(esterror * NSEC_PER_USEC);
	clk->time_maxerror_nanosec = cpu_to_le64(maxerror * NSEC_PER_USEC);
	clk->counter_period_maxerror_rate_frac_sec =
		cpu_to_le64(div_u64(period, NSEC_PER_SEC / MAXFREQ) + 1);
	clk->flags |= cpu_to_le64(VMCLOCK_FLAG_TIME_ESTERROR_VALID |
				  VMCLOCK_FLAG_TIME_MAXERROR_VALID |
				  VMCLOCK_FLAG_PERIOD_MAXERROR_VALID);
}

static void kvm_vmclock_auto_work_fn(struct work_struct *work)
{
	struct kvm *kvm;

	mutex_lock(&kvm_lock);
	list_for_each_entry(kvm, &vm_list, vm_list) {
		if (READ_ONCE(kvm->arch.vmclock.mode) & KVM_VMCLOCK_F_AUTO)
			kvm_make_all_cpus_request(kvm, KVM_REQ_VMCLOCK_UPDATE);
	}
	mutex_unlock(&kvm_lock);
}

static DECLARE_WORK(kvm_vmclock_auto_work, kvm_vmclock_auto_work_fn);

/* queue_work() cannot be called with the timekeeper lock held. */
static void kvm_vmclock_auto_irq_work_fn(struct irq_work *w)
{
	queue_work(system_long_wq, &kvm_vmclock_auto_work);
}

static DEFINE_IRQ_WORK(kvm_vmclock_auto_irq_work, kvm_vmclock_auto_irq_work_fn);

/*
 * Called from the pvclock_gtod notifier, on every timekeeping update, with
 * the timekeeper lock held and tk_core.seq write-held.  @was_set is true if
 * the clock was set (stepped, TAI offset changed or leap second applied).
 */
void kvm_vmclock_gtod_notify(struct timekeeper *tk, bool was_set)
{
	struct kvm_vmclock_tk *old = &kvm_vmclock_host.tk;
	struct kvm_vmclock_line *line = &kvm_vmclock_host.line;
	struct vmclock_abi clk;
	bool tai_back, utc_back;
	struct kvm_vmclock_tk new = {
		.tsc			= tk->tkr_mono.clock->vdso_clock_mode ==
					  VDSO_CLOCKMODE_TSC,
		.was_set		= was_set,
		.cs_was_changed_seq	= tk->cs_was_changed_seq,
		.ntp_error_shift	= tk->ntp_error_shift,
		.cycle_last		= tk->tkr_mono.cycle_last,
		.xtime_sec		= tk->xtime_sec,
		.xtime_nsec		= tk->tkr_mono.xtime_nsec,
		.ntp_error		= tk->ntp_error,
		.ntp_tick		= tk->ntp_tick,
		.cycle_interval		= tk->cycle_interval,
		.xtime_remainder	= tk->xtime_remainder,
		.tai_offset		= tk->tai_offset,
	};

	ntp_get_sync_state(tk, &new.ntp);

	if (line->gen && !kvm_vmclock_tk_changed(old, &new))
		return;

	kvm_vmclock_tk_line(&new, &clk);

	/*
	 * Some changes do not show in the vmclock, e.g. the leap second state
	 * going back to TIME_OK after the leap indicator was cleared: the
	 * guests keep the line they have.
	 */
	if (line->gen && !new.was_set &&
	    kvm_vmclock_same_line(&line->clk, &clk)) {
		*old = new;
		return;
	}

	write_seqcount_begin(&kvm_vmclock_host.seq);
	if (clk.clock_status == VMCLOCK_STATUS_UNRELIABLE) {
		/* Nothing to keep monotonic with. */
	} else if (!line->gen ||
		   line->clk.clock_status == VMCLOCK_STATUS_UNRELIABLE) {
		/* The guests may have seen anything before: claim nothing. */
		line->tai_steps++;
		line->utc_steps++;
	} else {
		kvm_vmclock_reanchor(&line->clk, line->tai_offset, &clk,
				     new.tai_offset,
				     kvm_vmclock_leap_inserted(old, &new),
				     &tai_back, &utc_back);
		line->tai_steps += tai_back;
		line->utc_steps += utc_back;
	}
	line->clk = clk;
	line->tai_offset = new.tai_offset;
	WRITE_ONCE(line->gen, line->gen + 1);
	write_seqcount_end(&kvm_vmclock_host.seq);

	*old = new;

	if (atomic_read(&kvm_vmclock_auto_vms))
		irq_work_queue(&kvm_vmclock_auto_irq_work);
}

/*
 * Called before each guest entry of a VM with an AUTO vmclock.  The notifier
 * reaches the VMs through irq_work and a workqueue, which takes a while, and
 * a vCPU must not enter the guest with a line older than the host's, e.g.
 * one that is no longer reliable because the host clocksource just stopped
 * being the TSC.  A vCPU that is in the guest when the host line changes is
 * kicked out by the workqueue.
 */
void kvm_vmclock_auto_check(struct kvm_vcpu *vcpu)
{
	/* Pairs with the release in kvm_vmclock_update(). */
	if (smp_load_acquire(&vcpu->kvm->arch.vmclock.auto_seen_gen) !=
	    READ_ONCE(kvm_vmclock_host.line.gen))
		kvm_make_request(KVM_REQ_VMCLOCK_UPDATE, vcpu);
}

void kvm_vmclock_exit(void)
{
	irq_work_sync(&kvm_vmclock_auto_irq_work);
	cancel_work_sync(&kvm_vmclock_auto_work);
}

/* Add the conversion error to @guest's estimated and maximum errors. */
static void kvm_vmclock_auto_errors(struct vmclock_abi *guest)
{
	u64 period = le64_to_cpu(guest->counter_period_frac_sec);
	u64 err;

	/* One guest TSC tick, as counter_value is rounded down to one. */
	err = (((u128)period * NSEC_PER_SEC) >>
	       (64 + guest->counter_period_shift)) + 1 + VMCLOCK_AUTO_ERROR_NS;

	le64_add_cpu(&guest->time_esterror_nanosec, err);
	le64_add_cpu(&guest->time_maxerror_nanosec, err);
}

/* What an AUTO vmclock update is derived from, see kvm_vmclock_state. */
struct kvm_vmclock_auto_rec {
	bool valid;
	bool monotonic;
	u64 gen;
	u64 steps;
};

/* The guest's view of the host clock line in auto mode. */
static bool kvm_vmclock_auto_view(struct kvm *kvm, struct kvm_vmclock_state *vc,
				  struct vmclock_abi *clk,
				  struct kvm_vmclock_auto_rec *rec)
{
	bool utc = vc->mode & KVM_VMCLOCK_F_UTC;
	struct vmclock_abi host;
	u64 gen, steps, offset, ratio;
	bool monotonic;
	unsigned int seq;
	s32 tai;

	do {
		seq = read_seqcount_begin(&kvm_vmclock_host.seq);
		host = kvm_vmclock_host.line.clk;
		tai = kvm_vmclock_host.line.tai_offset;
		gen = kvm_vmclock_host.line.gen;
		steps = utc ? kvm_vmclock_host.line.utc_steps :
			      kvm_vmclock_host.line.tai_steps;
	} while (read_seqcount_retry(&kvm_vmclock_host.seq, seq));

	rec->gen = gen;
	if (utc) {
		host.time_type = VMCLOCK_TIME_UTC;
		le64_add_cpu(&host.time_sec, -(s64)tai);
	} else if (!tai) {
		/* Without the TAI offset, the host does not know TAI. */
		return false;
	}

	if (!gen || host.clock_status == VMCLOCK_STATUS_UNRELIABLE ||
	    !kvm_vmclock_guest_tsc(kvm, &offset, &ratio) ||
	    kvm_vmclock_convert(&host, offset, ratio,
				kvm_caps.tsc_scaling_ratio_frac_bits, clk))
		return false;

	if (le64_to_cpu(clk->flags) & VMCLOCK_FLAG_TIME_ESTERROR_VALID)
		kvm_vmclock_auto_errors(clk);

	/* Decide once per line, so that all vCPUs compute the same view. */
	if (vc->auto_written && vc->auto_gen == gen)
		monotonic = vc->auto_monotonic;
	else
		monotonic = !vc->auto_written || vc->auto_steps == steps;
	if (!monotonic)
		clk->flags &= ~cpu_to_le64(VMCLOCK_FLAG_TIME_MONOTONIC);

	rec->valid = true;
	rec->monotonic = monotonic;
	rec->steps = steps;
	return true;
}

/*
 * The time @clk gives at @counter, as TAI if it is UTC with a valid TAI
 * offset, so that a leap second insertion does not count as going back.
 */
static u128 kvm_vmclock_tai_at(const struct vmclock_abi *clk, u64 counter)
{
	u128 t = kvm_vmclock_time_at(clk, counter);
	s64 utc_minus_tai = (s16)le16_to_cpu(clk->tai_offset_sec);

	if (clk->time_type == VMCLOCK_TIME_UTC &&
	    (le64_to_cpu(clk->flags) & VMCLOCK_FLAG_TAI_OFFSET_VALID))
		t -= (u128)utc_minus_tai << 64;
	return t;
}

/*
 * In auto mode, a new line must not give a time behind what the guest may
 * have read from the old one @old, which it may have done until @now (guest
 * TSC).  Rate changes start at the host's last tick (the NTP line is
 * continuous there), so a slower rate is behind the old line by the rate
 * change times the time since that tick, a few hundred nanoseconds for a
 * 100 ppm step.  The timekeeper keeps CLOCK_REALTIME continuous and works
 * such a difference off over the next ticks; do the same with a line: start
 * @new at the old line's time at @now, slower than the NTP line by the
 * difference over VMCLOCK_AUTO_SLEW_NS, and add the difference to the error
 * bounds.  Returns how long, in ns, the slewed line takes to meet the NTP
 * line, after which it must be replaced by it; 0 if @new was not moved.
 * A new line that is further behind than a rate change can explain does
 * not claim VMCLOCK_FLAG_TIME_MONOTONIC.
 */
static u64 kvm_vmclock_catch_up(const struct vmclock_abi *old,
				struct vmclock_abi *new, u64 now)
{
	u128 t_old, t_new, behind;
	u64 ns, period;

	if (old->clock_status == VMCLOCK_STATUS_UNRELIABLE ||
	    new->clock_status == VMCLOCK_STATUS_UNRELIABLE)
		return 0;

	t_old = kvm_vmclock_tai_at(old, now);
	t_new = kvm_vmclock_tai_at(new, now);
	if (t_new >= t_old)
		return 0;

	/*
	 * More than a rate change can explain (e.g. the guest TSC was moved,
	 * or the VMM had written something else): do not claim monotonic.
	 */
	behind = t_old - t_new;
	if (behind > (u128)VMCLOCK_AUTO_MAX_CATCHUP_NS * VMCLOCK_NSEC_FRAC) {
		new->flags &= ~cpu_to_le64(VMCLOCK_FLAG_TIME_MONOTONIC);
		return 0;
	}
	ns = ((behind * NSEC_PER_SEC) >> 64) + 1;

	period = le64_to_cpu(new->counter_period_frac_sec);
	period -= mul_u64_u64_div_u64(period, ns, VMCLOCK_AUTO_SLEW_NS);

	kvm_vmclock_set_time(new, kvm_vmclock_time_at(new, now) + behind);
	new->counter_value = cpu_to_le64(now);
	new->counter_period_frac_sec = cpu_to_le64(period);

	if (le64_to_cpu(new->flags) & VMCLOCK_FLAG_TIME_ESTERROR_VALID) {
		le64_add_cpu(&new->time_esterror_nanosec, ns);
		le64_add_cpu(&new->time_maxerror_nanosec, ns);
	}
	return VMCLOCK_AUTO_SLEW_NS;
}

/* A slewed line met the NTP line: replace it, see kvm_vmclock_update(). */
static void kvm_vmclock_slew_work_fn(struct work_struct *work)
{
	struct kvm *kvm = container_of(to_delayed_work(work), struct kvm,
				       arch.vmclock.slew_work);

	kvm_make_all_cpus_request(kvm, KVM_REQ_VMCLOCK_UPDATE);
}

/*
 * Whether guest memory holds a slewed line that has met the NTP line and
 * must be replaced by it.
 */
static bool kvm_vmclock_slew_done(struct kvm_vmclock_state *vc)
{
	return vc->slew_end && ktime_get_ns() >= vc->slew_end;
}

/* Replace the slewed line once it met the NTP line, a little later. */
static void kvm_vmclock_slew_start(struct kvm_vmclock_state *vc, u64 slew_ns)
{
	vc->slew_end = ktime_get_ns() + slew_ns;
	/* nsecs_to_jiffies() rounds down, and the current jiffy is partly over. */
	mod_delayed_work(system_long_wq, &vc->slew_work,
			 nsecs_to_jiffies(slew_ns + slew_ns / 8 + NSEC_PER_MSEC) + 2);
}

/* What the guest sees while KVM cannot give it a usable clock. */
static void kvm_vmclock_unreliable(struct kvm_vmclock_state *vc,
				   struct vmclock_abi *clk)
{
	memset(clk, 0, sizeof(*clk));
	clk->magic = cpu_to_le32(VMCLOCK_MAGIC);
	clk->version = cpu_to_le16(1);
	clk->counter_id = VMCLOCK_COUNTER_X86_TSC;
	clk->clock_status = VMCLOCK_STATUS_UNRELIABLE;

	if (vc->mode & KVM_VMCLOCK_F_AUTO) {
		clk->time_type = vc->mode & KVM_VMCLOCK_F_UTC ?
				 VMCLOCK_TIME_UTC : VMCLOCK_TIME_TAI;
		return;
	}

	if (!vc->host_valid)
		return;

	/* Disruption and generation tracking do not depend on the TSC. */
	clk->time_type = vc->host.time_type;
	clk->disruption_marker = vc->host.disruption_marker;
	clk->vm_generation_counter = vc->host.vm_generation_counter;
	clk->flags = cpu_to_le64(le64_to_cpu(vc->host.flags) &
				 VMCLOCK_UNRELIABLE_FLAGS);
}

static void kvm_vmclock_guest_view(struct kvm *kvm,
				   struct kvm_vmclock_state *vc,
				   struct vmclock_abi *clk,
				   struct kvm_vmclock_auto_rec *rec)
{
	u64 offset, ratio;

	if (vc->mode & KVM_VMCLOCK_F_AUTO) {
		if (!kvm_vmclock_auto_view(kvm, vc, clk, rec))
			kvm_vmclock_unreliable(vc, clk);
	} else if (!vc->host_valid ||
		   !kvm_vmclock_guest_tsc(kvm, &offset, &ratio) ||
		   kvm_vmclock_convert(&vc->host, offset, ratio,
				       kvm_caps.tsc_scaling_ratio_frac_bits, clk)) {
		kvm_vmclock_unreliable(vc, clk);
	}

	clk->size = cpu_to_le32(vc->size);
}

/*
 * Make seq_count odd, with a value that differs from the one readers saw
 * before.  Readers spin while it is odd, so a VMM that holds it odd for long
 * is not waited for beyond a few retries; its update is then taken over.
 * The cmpxchg also faults the page in writable before the odd window.
 */
static int kvm_vmclock_begin_write(struct kvm *kvm, struct gfn_to_hva_cache *ghc,
				   u32 seq, u32 *odd)
{
	u64 old = seq;
	int i, r;

	for (i = 0; i < VMCLOCK_SEQ_RETRIES; i++) {
		if ((old & 1) && i < VMCLOCK_SEQ_RETRIES - 1) {
			__le32 raw;

			cpu_relax();
			r = kvm_read_guest_offset_cached(kvm, ghc, &raw,
							 VMCLOCK_SEQ_OFFSET,
							 sizeof(raw));
			if (r)
				return r;
			old = le32_to_cpu(raw);
			continue;
		}

		*odd = (u32)old + ((old & 1) ? 2 : 1);
		r = kvm_cmpxchg_guest_offset_cached(kvm, ghc, VMCLOCK_SEQ_OFFSET,
						    &old, *odd, sizeof(u32));
		if (r != -EAGAIN)
			return r;
	}
	return -EBUSY;
}

/*
 * Write everything but seq_count.  Page faults are disabled so that the odd
 * window stays short; if the page went away since the cmpxchg, write again
 * with faults allowed so that the guest still gets a consistent copy.
 */
static int kvm_vmclock_write_fields(struct kvm *kvm,
				    struct gfn_to_hva_cache *ghc,
				    const struct vmclock_abi *clk)
{
	void __user *hva = (void __user *)ghc->hva;
	const void *body = (const void *)clk + VMCLOCK_BODY_OFFSET;
	unsigned int body_len = sizeof(*clk) - VMCLOCK_BODY_OFFSET;
	int r;

	if (!copy_to_user_nofault(hva, clk, VMCLOCK_SEQ_OFFSET) &&
	    !copy_to_user_nofault(hva + VMCLOCK_BODY_OFFSET, body, body_len))
		return 0;

	r = kvm_write_guest_offset_cached(kvm, ghc, (void *)clk, 0,
					  VMCLOCK_SEQ_OFFSET);
	if (r)
		return r;

	return kvm_write_guest_offset_cached(kvm, ghc, (void *)body,
					     VMCLOCK_BODY_OFFSET, body_len);
}

static int kvm_vmclock_clear_tail(struct kvm_vmclock_state *vc)
{
	void __user *tail = (void __user *)vc->ghc.hva + sizeof(struct vmclock_abi);

	if (!vc->clear_tail || vc->size == sizeof(struct vmclock_abi))
		return 0;

	return clear_user(tail, vc->size - sizeof(struct vmclock_abi)) ? -EFAULT : 0;
}

/* What an auto mode write keeps TIME_MONOTONIC with, see kvm_vmclock_catch_up(). */
struct kvm_vmclock_prev {
	struct kvm_vcpu *vcpu;		/* For the guest TSC. */
	const struct vmclock_abi *clk;	/* In guest memory until now. */
	u64 slew_ns;			/* Out: how long @clk slews, or 0. */
};

static int __kvm_vmclock_write(struct kvm *kvm, struct kvm_vmclock_state *vc,
			       struct vmclock_abi *clk,
			       struct kvm_vmclock_prev *prev)
{
	struct gfn_to_hva_cache *ghc = &vc->ghc;
	__le32 raw;
	u32 odd;
	u64 old;
	int r;

	/* Also revalidates the cache, before the hva is used directly. */
	r = kvm_read_guest_offset_cached(kvm, ghc, &raw, VMCLOCK_SEQ_OFFSET,
					 sizeof(raw));
	if (r)
		return r;

	r = kvm_vmclock_clear_tail(vc);
	if (r)
		return r;

	r = kvm_vmclock_begin_write(kvm, ghc, le32_to_cpu(raw), &odd);
	if (r)
		return r;

	/*
	 * Guests read the old line until seq_count went odd: only now is the
	 * time at which the new line must not be behind it.
	 */
	if (prev)
		prev->slew_ns = kvm_vmclock_catch_up(prev->clk, clk,
						     kvm_read_l1_tsc(prev->vcpu,
								     rdtsc()));

	/* Pairs with the reader's rmb() after reading seq_count. */
	smp_wmb();
	r = kvm_vmclock_write_fields(kvm, ghc, clk);
	/*
	 * If not all fields were written, leave seq_count odd: the guest
	 * would rather time out than read a mix of old and new fields, and
	 * the next update takes over from the odd value.
	 */
	if (r)
		return r;
	/* Pairs with the reader's rmb() before re-reading seq_count. */
	smp_wmb();

	old = odd;
	return kvm_cmpxchg_guest_offset_cached(kvm, ghc, VMCLOCK_SEQ_OFFSET, &old,
					       (u32)(odd + 1), sizeof(u32));
}

/*
 * Write @clk to guest memory.  If another writer touched seq_count while the
 * fields were written, the result may be a mix of both: write again.
 */
static int kvm_vmclock_write(struct kvm *kvm, struct kvm_vmclock_state *vc,
			     const struct vmclock_abi *view,
			     struct vmclock_abi *clk,
			     struct kvm_vmclock_prev *prev)
{
	int i, r;

	for (i = 0; i < VMCLOCK_WRITE_RETRIES; i++) {
		*clk = *view;
		r = __kvm_vmclock_write(kvm, vc, clk, prev);
		if (r != -EAGAIN)
			return r;
	}
	return r;
}

/*
 * Handle KVM_REQ_VMCLOCK_UPDATE.  Every vCPU handles the request before it
 * enters the guest, so that none runs with stale data in guest memory; the
 * first one to get here writes, the others find nothing changed.
 */
void kvm_vmclock_update(struct kvm_vcpu *vcpu)
{
	struct kvm *kvm = vcpu->kvm;
	struct kvm_vmclock_state *vc = &kvm->arch.vmclock;
	struct kvm_vmclock_auto_rec rec = {};
	struct kvm_vmclock_prev prev;
	struct vmclock_abi clk, view;
	bool keep_monotonic;
	u64 gen;

	mutex_lock(&vc->lock);
	if (!vc->mode)
		goto out;

	kvm_vmclock_guest_view(kvm, vc, &view, &rec);

	/* A memslot update may have put different memory behind the gpa. */
	gen = kvm_memslots(kvm)->generation;
	if (vc->written_valid && vc->written_gen == gen &&
	    !memcmp(&view, &vc->view, sizeof(view)) &&
	    !kvm_vmclock_slew_done(vc))
		goto written;

	/* In auto mode, stay monotonic with what guest memory holds. */
	prev.vcpu = vcpu;
	prev.clk = &vc->written;
	prev.slew_ns = 0;
	keep_monotonic = rec.valid && rec.monotonic && vc->written_valid;

	/*
	 * On failure (memslot gone, page not writable, a VMM that keeps
	 * seq_count busy) give up until the next trigger, e.g. the memslot
	 * update that makes the memory usable again.
	 */
	vc->written_valid = false;
	if (kvm_vmclock_write(kvm, vc, &view, &clk,
			      keep_monotonic ? &prev : NULL))
		goto out;

	vc->written = clk;
	vc->view = view;
	vc->written_gen = gen;
	vc->written_valid = true;
	vc->clear_tail = false;
	vc->slew_end = 0;
	if (prev.slew_ns)
		kvm_vmclock_slew_start(vc, prev.slew_ns);
	kvm->stat.vmclock_updates++;
written:
	if (rec.valid) {
		vc->auto_written = true;
		vc->auto_monotonic = rec.monotonic;
		vc->auto_gen = rec.gen;
		vc->auto_steps = rec.steps;
	}
out:
	/*
	 * Also if the write failed: see kvm_vmclock_auto_check().  After the
	 * write, so that a vCPU that finds it up to date finds the new line
	 * in guest memory.
	 */
	smp_store_release(&vc->auto_seen_gen, rec.gen);
	mutex_unlock(&vc->lock);
}

static void kvm_vmclock_request_update(struct kvm *kvm)
{
	kvm_make_all_cpus_request(kvm, KVM_REQ_VMCLOCK_UPDATE);
}

void kvm_vmclock_memslots_updated(struct kvm *kvm)
{
	if (READ_ONCE(kvm->arch.vmclock.mode))
		kvm_vmclock_request_update(kvm);
}

static int kvm_vmclock_check_config(const struct kvm_vmclock *cfg)
{
	if (cfg->tsc_hz || memchr_inv(cfg->reserved, 0, sizeof(cfg->reserved)))
		return -EINVAL;

	if (cfg->gpa == KVM_VMCLOCK_GPA_DISABLED)
		return cfg->size || cfg->flags ? -EINVAL : 0;

	/* Exactly one mode; UTC instead of TAI only in auto mode. */
	if (cfg->flags != KVM_VMCLOCK_F_USERSPACE &&
	    cfg->flags != KVM_VMCLOCK_F_AUTO &&
	    cfg->flags != (KVM_VMCLOCK_F_AUTO | KVM_VMCLOCK_F_UTC))
		return -EINVAL;

	if (!IS_ALIGNED(cfg->gpa, 8) || cfg->size < sizeof(struct vmclock_abi) ||
	    cfg->size > PAGE_SIZE ||
	    offset_in_page(cfg->gpa) + cfg->size > PAGE_SIZE)
		return -EINVAL;

	return 0;
}

static int kvm_vmclock_init_cache(struct kvm *kvm, struct gfn_to_hva_cache *ghc,
				  gpa_t gpa, u32 size)
{
	int idx, r;

	idx = srcu_read_lock(&kvm->srcu);
	/* Private memory has no userspace mapping for KVM to write through. */
	if (kvm_mem_is_private(kvm, gpa_to_gfn(gpa)))
		r = -EINVAL;
	else if (kvm_gfn_to_hva_cache_init(kvm, ghc, gpa, size))
		r = -EFAULT;
	else
		r = 0;
	srcu_read_unlock(&kvm->srcu, idx);

	return r;
}

int kvm_vm_ioctl_set_vmclock(struct kvm *kvm, void __user *argp)
{
	struct kvm_vmclock_state *vc = &kvm->arch.vmclock;
	struct gfn_to_hva_cache ghc = {};
	struct kvm_vmclock cfg;
	int r;

	if (copy_from_user(&cfg, argp, sizeof(cfg)))
		return -EFAULT;

	r = kvm_vmclock_check_config(&cfg);
	if (r)
		return r;

	if (cfg.gpa != KVM_VMCLOCK_GPA_DISABLED) {
		r = kvm_vmclock_init_cache(kvm, &ghc, cfg.gpa, cfg.size);
		if (r)
			return r;
	}

	mutex_lock(&vc->lock);
	/*
	 * At the same place, guest memory still holds what KVM wrote last,
	 * which the next line in auto mode must stay monotonic with.
	 */
	if (cfg.gpa != KVM_VMCLOCK_GPA_DISABLED &&
	    (cfg.gpa != vc->ghc.gpa || cfg.size != vc->size))
		vc->written_valid = false;
	/* Write at the next update, whatever it is. */
	memset(&vc->view, 0, sizeof(vc->view));
	if (vc->mode & KVM_VMCLOCK_F_AUTO)
		atomic_dec(&kvm_vmclock_auto_vms);
	if (cfg.gpa == KVM_VMCLOCK_GPA_DISABLED) {
		/* Guest memory keeps what was written last. */
		WRITE_ONCE(vc->mode, 0);
		vc->host_valid = false;
	} else {
		vc->ghc = ghc;
		vc->size = cfg.size;
		vc->clear_tail = true;
		WRITE_ONCE(vc->mode, cfg.flags);
	}
	if (vc->mode & KVM_VMCLOCK_F_AUTO)
		atomic_inc(&kvm_vmclock_auto_vms);
	vc->slew_end = 0;
	vc->auto_written = false;
	WRITE_ONCE(vc->auto_seen_gen, 0);
	mutex_unlock(&vc->lock);

	if (cfg.gpa != KVM_VMCLOCK_GPA_DISABLED)
		kvm_vmclock_request_update(kvm);
	return 0;
}

/* The guest TSC frequency if all vCPUs run at the same fixed ratio, else 0. */
static u64 kvm_vmclock_tsc_hz(struct kvm *kvm)
{
	struct kvm_vcpu *vcpu;
	unsigned long i;
	u64 ratio = 0;

	kvm_for_each_vcpu(i, vcpu, kvm) {
		u64 vcpu_ratio = READ_ONCE(vcpu->arch.l1_tsc_scaling_ratio);

		if (vcpu->arch.tsc_always_catchup || (ratio && vcpu_ratio != ratio))
			return 0;
		ratio = vcpu_ratio;
	}
	if (!ratio)
		return 0;

	return mul_u64_u64_shr((u64)tsc_khz * 1000, ratio,
			       kvm_caps.tsc_scaling_ratio_frac_bits);
}

int kvm_vm_ioctl_get_vmclock(struct kvm *kvm, void __user *argp)
{
	struct kvm_vmclock_state *vc = &kvm->arch.vmclock;
	struct kvm_vmclock cfg = {
		.gpa = KVM_VMCLOCK_GPA_DISABLED,
	};

	mutex_lock(&vc->lock);
	if (vc->mode) {
		cfg.gpa = vc->ghc.gpa;
		cfg.size = vc->size;
		cfg.flags = vc->mode;
	}
	mutex_unlock(&vc->lock);

	cfg.tsc_hz = kvm_vmclock_tsc_hz(kvm);

	if (copy_to_user(argp, &cfg, sizeof(cfg)))
		return -EFAULT;
	return 0;
}

int kvm_vm_ioctl_set_vmclock_host(struct kvm *kvm, void __user *argp)
{
	struct kvm_vmclock_state *vc = &kvm->arch.vmclock;
	struct vmclock_abi host;
	int r;

	if (copy_from_user(&host, argp, sizeof(host)))
		return -EFAULT;

	r = kvm_vmclock_check_host(&host);
	if (r)
		return r;

	r = kvm_vmclock_anchor(&host, rdtsc());
	if (r)
		return r;

	host.size = 0;
	host.seq_count = 0;

	mutex_lock(&vc->lock);
	if (!vc->mode) {
		r = -ENOENT;
	} else if (vc->mode != KVM_VMCLOCK_F_USERSPACE) {
		r = -EINVAL;
	} else {
		vc->host = host;
		vc->host_valid = true;
	}
	mutex_unlock(&vc->lock);

	if (!r)
		kvm_vmclock_request_update(kvm);
	return r;
}

void kvm_vmclock_init_vm(struct kvm *kvm)
{
	mutex_init(&kvm->arch.vmclock.lock);
	INIT_DELAYED_WORK(&kvm->arch.vmclock.slew_work,
			  kvm_vmclock_slew_work_fn);
}

/* Before the vCPUs go away: the slew work makes requests to them. */
void kvm_vmclock_pre_destroy_vm(struct kvm *kvm)
{
	cancel_delayed_work_sync(&kvm->arch.vmclock.slew_work);
}

void kvm_vmclock_destroy_vm(struct kvm *kvm)
{
	if (kvm->arch.vmclock.mode & KVM_VMCLOCK_F_AUTO)
		atomic_dec(&kvm_vmclock_auto_vms);
	mutex_destroy(&kvm->arch.vmclock.lock);
}

#ifdef CONFIG_KVM_VMCLOCK_KUNIT_TEST
#include "vmclock_test.c"
#endif
