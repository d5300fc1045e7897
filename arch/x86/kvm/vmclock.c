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

#include <linux/clock_line.h>
#include <linux/eventfd.h>
#include <linux/irq_work.h>
#include <linux/kvm_host.h>
#include <linux/math64.h>
#include <linux/overflow.h>
#include <linux/pvclock_gtod.h>
#include <linux/seqlock.h>
#include <linux/timex.h>
#include <linux/uaccess.h>
#include <linux/vmclock-abi.h>
#include <linux/workqueue.h>
#include <asm/tsc.h>

#include "x86.h"
#include "vmclock.h"

#define VMCLOCK_SEQ_OFFSET	offsetof(struct vmclock_abi, seq_count)
#define VMCLOCK_BODY_OFFSET	offsetof(struct vmclock_abi, disruption_marker)

/*
 * Compare-and-exchange attempts on seq_count per update.  Each one that
 * fails means that somebody else wrote seq_count in the meantime, which
 * only a VMM breaking the rules or a hostile guest does: the update is then
 * retried later (see kvm_vmclock_retry_later()), not in a loop.
 */
#define VMCLOCK_WRITE_ATTEMPTS	4

/* Backoff of those retries, from one jiffy up to this. */
#define VMCLOCK_RETRY_MAX_JIFFIES	(HZ / 10)

/* The flags a VMM may pass in struct kvm_vmclock_host. */
#define VMCLOCK_HOST_FLAGS	(VMCLOCK_FLAG_TAI_OFFSET_VALID |	\
				 VMCLOCK_FLAG_PERIOD_ESTERROR_VALID |	\
				 VMCLOCK_FLAG_PERIOD_MAXERROR_VALID |	\
				 VMCLOCK_FLAG_TIME_ESTERROR_VALID |	\
				 VMCLOCK_FLAG_TIME_MAXERROR_VALID |	\
				 VMCLOCK_FLAG_TIME_MONOTONIC)

/*
 * The flags that belong to the VMM, like disruption_marker and
 * vm_generation_counter: KVM takes them from guest memory when a VMM wrote
 * there, and changes them only on KVM_VMCLOCK_DISRUPTION.
 */
#define VMCLOCK_VMM_FLAGS	(VMCLOCK_FLAG_DISRUPTION_SOON |		\
				 VMCLOCK_FLAG_DISRUPTION_IMMINENT |	\
				 VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT)

#define VMCLOCK_NOTICE_FLAGS	(VMCLOCK_FLAG_DISRUPTION_SOON |		\
				 VMCLOCK_FLAG_DISRUPTION_IMMINENT)

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

/* ceil(@val * 2^@shift / @ratio), for a maximum error; U64_MAX if it does not fit. */
static u64 vmclock_scale_up(u64 val, u64 ratio, int shift)
{
	u64 q = vmclock_scale(val, ratio, shift);
	u128 n = val, d = ratio;

	if (q == U64_MAX)
		return q;

	if (shift >= 0)
		n <<= shift;
	else if (shift > -64)
		d <<= -shift;
	else
		return val ? 1 : 0;

	return (u128)q * d == n ? q : q + 1;
}

/*
 * Convert @host, a vmclock in the host TSC domain, to the domain of a guest
 * TSC that reads @offset + host TSC * @ratio / 2^@frac_bits, rounded down,
 * which is what kvm_read_l1_tsc() computes.
 *
 * The guest's counter_period_shift is chosen as large as possible (up to 63)
 * so that the guest period keeps 64 significant bits: the truncation error is
 * below one unit of 2^-(64 + shift) seconds per tick, a relative error below
 * 2^-63.  The guest TSC at the host's counter_value is usually not a whole
 * number: counter_value is rounded down to the guest tick and the time moved
 * back by the fraction, so that the published line is the host's line, and
 * a guest reading its TSC gets the time at which the TSC reached that value,
 * less than one tick before the moment it read it.  The error rates are
 * scaled the same way, the maximum error rate rounded up; a rate that does
 * not fit loses its VALID flag.
 *
 * No KVM state is used, so that KUnit can check any ratio.  Returns -ERANGE
 * if the guest period does not fit the ABI (a guest TSC slower than 1 Hz).
 */
static int kvm_vmclock_convert(const struct vmclock_abi *host, u64 offset,
			       u64 ratio, unsigned int frac_bits,
			       struct vmclock_abi *guest)
{
	u64 period = le64_to_cpu(host->counter_period_frac_sec);
	u64 counter = le64_to_cpu(host->counter_value);
	u64 esterr = le64_to_cpu(host->counter_period_esterror_rate_frac_sec);
	u64 maxerr = le64_to_cpu(host->counter_period_maxerror_rate_frac_sec);
	u64 flags = le64_to_cpu(host->flags);
	u64 guest_period, frac;
	u128 time, back;
	int shift, t;

	if (!ratio || !period)
		return -ERANGE;

	/* t = frac_bits + guest shift - host shift, see vmclock_scale(). */
	t = vmclock_max_shift(period, ratio);
	shift = min(t - (int)frac_bits + host->counter_period_shift, 63);
	if (shift < 0)
		return -ERANGE;
	t = frac_bits + shift - host->counter_period_shift;
	guest_period = vmclock_scale(period, ratio, t);

	/*
	 * The guest TSC passed counter * ratio / 2^frac_bits the fraction
	 * @frac / 2^frac_bits of a tick before the host's counter_value.
	 */
	frac = (counter * ratio) & (BIT_ULL(frac_bits) - 1);
	back = ((u128)frac * guest_period) >> (frac_bits + shift);
	time = kvm_vmclock_time(host);
	if (back > time)
		return -ERANGE;

	*guest = *host;
	guest->seq_count = 0;
	guest->counter_period_shift = shift;
	guest->counter_value =
		cpu_to_le64(offset + mul_u64_u64_shr(counter, ratio, frac_bits));
	kvm_vmclock_set_time(guest, time - back);
	guest->counter_period_frac_sec = cpu_to_le64(guest_period);
	esterr = vmclock_scale(esterr, ratio, t);
	maxerr = vmclock_scale_up(maxerr, ratio, t);
	/* A rate that saturated is no estimate, and no bound. */
	if (esterr == U64_MAX)
		flags &= ~(u64)VMCLOCK_FLAG_PERIOD_ESTERROR_VALID;
	if (maxerr == U64_MAX)
		flags &= ~(u64)VMCLOCK_FLAG_PERIOD_MAXERROR_VALID;
	guest->counter_period_esterror_rate_frac_sec = cpu_to_le64(esterr);
	guest->counter_period_maxerror_rate_frac_sec = cpu_to_le64(maxerr);
	guest->flags = cpu_to_le64(flags);
	return 0;
}

/*
 * Check what the VMM supplied with KVM_SET_VMCLOCK_HOST and turn it into a
 * vmclock in the host TSC domain, which is what the conversion works on.
 */
static int kvm_vmclock_host_clock(const struct kvm_vmclock_host *in,
				  struct vmclock_abi *host)
{
	if (in->pad || memchr_inv(in->reserved, 0, sizeof(in->reserved)) ||
	    in->flags & ~(u64)VMCLOCK_HOST_FLAGS)
		return -EINVAL;

	if (in->period_shift > 63 || !in->period_frac_sec)
		return -EINVAL;

	if (in->clock_status > VMCLOCK_STATUS_UNRELIABLE ||
	    in->time_type > VMCLOCK_TIME_INVALID_MAYBE_SMEARED ||
	    in->leap_indicator > VMCLOCK_LEAP_POST_NEG ||
	    in->leap_second_smearing_hint > VMCLOCK_SMEARING_UTC_SLS)
		return -EINVAL;

	memset(host, 0, sizeof(*host));
	host->magic = cpu_to_le32(VMCLOCK_MAGIC);
	host->version = cpu_to_le16(1);
	host->counter_id = VMCLOCK_COUNTER_X86_TSC;
	host->time_type = in->time_type;
	host->flags = cpu_to_le64(in->flags);
	host->clock_status = in->clock_status;
	host->leap_second_smearing_hint = in->leap_second_smearing_hint;
	host->tai_offset_sec = cpu_to_le16((u16)in->tai_offset_sec);
	host->leap_indicator = in->leap_indicator;
	host->counter_period_shift = in->period_shift;
	host->counter_value = cpu_to_le64(in->counter_value);
	host->counter_period_frac_sec = cpu_to_le64(in->period_frac_sec);
	host->counter_period_esterror_rate_frac_sec =
		cpu_to_le64(in->period_esterror_rate_frac_sec);
	host->counter_period_maxerror_rate_frac_sec =
		cpu_to_le64(in->period_maxerror_rate_frac_sec);
	host->time_sec = cpu_to_le64(in->time_sec);
	host->time_frac_sec = cpu_to_le64(in->time_frac_sec);
	host->time_esterror_nanosec = cpu_to_le64(in->time_esterror_nanosec);
	host->time_maxerror_nanosec = cpu_to_le64(in->time_maxerror_nanosec);
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
 * Whether the guest TSC is one fixed linear function of the host TSC, the
 * same on all vCPUs, and if so its offset and ratio.  That is what the
 * conversion needs, and all it needs: it takes the host clock in the host
 * TSC domain, so neither the host clocksource nor kvmclock's master clock
 * matter here.  It fails if the kernel marked the host TSC unstable (it may
 * then differ between CPUs, or stop), if vCPUs differ in offset or ratio
 * (the guest could read any of them), if a vCPU runs in TSC catch-up mode
 * (KVM then moves its offset at every entry), or if the guest TSC is
 * protected (KVM does not know it).
 */
struct kvm_vmclock_guest_tsc {
	u64 offset;
	u64 ratio;
	unsigned int vcpus;
	bool mismatch;
};

/* Add a vCPU whose TSC is, or (@linear false) is not, a fixed function. */
static void kvm_vmclock_add_vcpu_tsc(struct kvm_vmclock_guest_tsc *g,
				     u64 offset, u64 ratio, bool linear)
{
	if (!linear ||
	    (g->vcpus && (offset != g->offset || ratio != g->ratio)))
		g->mismatch = true;

	g->offset = offset;
	g->ratio = ratio;
	g->vcpus++;
}

static bool kvm_vmclock_guest_tsc_valid(const struct kvm_vmclock_guest_tsc *g,
					bool host_tsc_unstable)
{
	return !host_tsc_unstable && g->vcpus && !g->mismatch;
}

static bool kvm_vmclock_guest_tsc(struct kvm *kvm, u64 *offset, u64 *ratio)
{
	struct kvm_vmclock_guest_tsc g = {};
	struct kvm_vcpu *vcpu;
	unsigned long i;

	kvm_for_each_vcpu(i, vcpu, kvm)
		kvm_vmclock_add_vcpu_tsc(&g, READ_ONCE(vcpu->arch.l1_tsc_offset),
					 READ_ONCE(vcpu->arch.l1_tsc_scaling_ratio),
					 !vcpu->arch.tsc_catchup &&
					 !vcpu->arch.tsc_always_catchup &&
					 !vcpu->arch.guest_tsc_protected);

	*offset = g.offset;
	*ratio = g.ratio;
	return kvm_vmclock_guest_tsc_valid(&g, kvm_check_tsc_unstable());
}

/*
 * What a vCPU publishes from: a copy of the registration and of the VMM's
 * input, taken under vc->lock, so that no lock is held while guest memory is
 * accessed.
 */
struct kvm_vmclock_cfg {
	u16 mode;
	u16 flags;
	u32 size;
	gpa_t gpa;
	u64 config_gen;
	bool notify;
	bool host_valid;
	struct vmclock_abi host;
	u32 new_disruptions;
	u32 new_generations;
	bool new_notice;
	u64 notice;
};

/*
 * Something the vmclock depends on changed: have it published before any
 * vCPU enters the guest again.  The first vCPU to get there writes, see
 * kvm_vmclock_update().
 */
static void kvm_vmclock_request_update(struct kvm *kvm)
{
	atomic64_inc(&kvm->arch.vmclock.update_req);
	kvm->stat.vmclock_update_requests++;
	kvm_make_all_cpus_request(kvm, KVM_REQ_VMCLOCK_UPDATE);
}

/*
 * The host TSC marked unstable (by the clocksource watchdog, or by KVM on a
 * TSC that went backwards) turns every vmclock UNRELIABLE, see
 * kvm_vmclock_guest_tsc().  Nothing tells KVM when that happens, and while
 * the host clocksource is not the TSC, timekeeping does not change either;
 * so while a VM has a vmclock, a pvclock_gtod notifier looks at it on every
 * timekeeping update (every tick), one load, and has all vmclocks
 * republished through irq_work and a workqueue when it changed.  The kernel
 * never marks the TSC stable again, but kvm_check_tsc_unstable() ignores the
 * mark while a Hyper-V host's clocksource is its TSC page, so it can go both
 * ways.
 */
static DEFINE_MUTEX(kvm_vmclock_vms_lock);
static unsigned int kvm_vmclock_vms;
static bool kvm_vmclock_tsc_unstable;

/* Have the vmclock of every VM in @mode, or (0) in any mode, republished. */
static void kvm_vmclock_request_update_all(u16 mode)
{
	struct kvm *kvm;
	u16 vm_mode;

	mutex_lock(&kvm_lock);
	list_for_each_entry(kvm, &vm_list, vm_list) {
		vm_mode = READ_ONCE(kvm->arch.vmclock.mode);
		if (!vm_mode || (mode && vm_mode != mode))
			continue;
		if (mode == KVM_VMCLOCK_MODE_AUTO)
			kvm->stat.vmclock_line_changes++;
		kvm_vmclock_request_update(kvm);
	}
	mutex_unlock(&kvm_lock);
}

static void kvm_vmclock_unstable_work_fn(struct work_struct *work)
{
	kvm_vmclock_request_update_all(0);
}

static DECLARE_WORK(kvm_vmclock_unstable_work, kvm_vmclock_unstable_work_fn);

/* queue_work() cannot be called with the timekeeper lock held. */
static void kvm_vmclock_unstable_irq_work_fn(struct irq_work *w)
{
	queue_work(system_long_wq, &kvm_vmclock_unstable_work);
}

static DEFINE_IRQ_WORK(kvm_vmclock_unstable_irq_work,
		       kvm_vmclock_unstable_irq_work_fn);

/* Serialized by the timekeeper lock, as all pvclock_gtod notifiers. */
static int kvm_vmclock_tsc_watch(struct notifier_block *nb,
				 unsigned long was_set, void *priv)
{
	bool unstable = kvm_check_tsc_unstable();

	if (unstable == kvm_vmclock_tsc_unstable)
		return 0;

	kvm_vmclock_tsc_unstable = unstable;
	irq_work_queue(&kvm_vmclock_unstable_irq_work);
	return 0;
}

static struct notifier_block kvm_vmclock_tsc_watch_nb = {
	.notifier_call = kvm_vmclock_tsc_watch,
};

/* A VM registers a vmclock, or (put) no longer has one. */
static void kvm_vmclock_vms_get(void)
{
	mutex_lock(&kvm_vmclock_vms_lock);
	if (!kvm_vmclock_vms++)
		pvclock_gtod_register_notifier(&kvm_vmclock_tsc_watch_nb);
	mutex_unlock(&kvm_vmclock_vms_lock);
}

static void kvm_vmclock_vms_put(void)
{
	mutex_lock(&kvm_vmclock_vms_lock);
	if (!--kvm_vmclock_vms)
		pvclock_gtod_unregister_notifier(&kvm_vmclock_tsc_watch_nb);
	mutex_unlock(&kvm_vmclock_vms_lock);
}

/*
 * KVM_VMCLOCK_MODE_AUTO: a vmclock derived from host timekeeping.
 *
 * kernel/time keeps the clock line (include/linux/clock_line.h) while some
 * VM has an AUTO vmclock: the line in host TSC cycles that NTP steers
 * CLOCK_REALTIME to, with the NTP state and error bounds, and a generation
 * that changes only when any of that changes.  The pvclock_gtod notifier,
 * which runs after every timekeeper update, compares that generation with
 * the last one it saw and, when it changed, kicks the VMs with an AUTO
 * vmclock through irq_work and a workqueue.  Each VM turns the line into
 * a host vmclock, as a VMM supplies it in userspace mode, and converts it to
 * its guest TSC domain with the same code.
 */

/* One nanosecond in units of 2^-64 s, rounded up. */
#define VMCLOCK_NSEC_FRAC	(div64_u64(U64_MAX, NSEC_PER_SEC) + 1)

/*
 * A new line that is behind what the guest may have read from the old one
 * is slewed to meet it (see kvm_vmclock_catch_up()) if it is behind by no
 * more than this: one adjtimex() call can swing the tick length by 20%
 * (ADJ_TICK from +10% to -10%) plus 500 ppm, about 2 ms at HZ=100, and the
 * host may not have ticked for a while (NO_HZ).  Further behind is a step.
 */
#define VMCLOCK_AUTO_MAX_BEHIND_NS	(100 * NSEC_PER_MSEC)

/*
 * A slewed line meets the NTP line after this long, or later so as to be at
 * most 500 ppm slower, the rate at which adjtime() slews the host clock
 * itself.  Two seconds are more than the one between the tick length
 * changes of the kernel PLL.
 */
#define VMCLOCK_AUTO_SLEW_MIN_NS	(2 * NSEC_PER_SEC)
#define VMCLOCK_AUTO_SLEW_PPM		500

/*
 * A line that is behind by no more than a microsecond, which is what a rate
 * decrease usually leaves (the change times the few milliseconds it takes
 * to reach the VM), is slewed gently instead: to meet the NTP line after
 * VMCLOCK_AUTO_SLEW_GENTLE_NS, and replaced once it is as far on the other
 * side as it started, unless the next line comes first, as it does under
 * an NTP daemon, which changes the rate every few seconds to minutes.  The
 * line then never strays from the NTP line by more than it was behind, and
 * a rate decrease costs one update, not two.  kernel/time itself lets its
 * line stray from the NTP line by as much before publishing a new one.
 */
#define VMCLOCK_AUTO_SLEW_GENTLE_MAX_NS	NSEC_PER_USEC
#define VMCLOCK_AUTO_SLEW_GENTLE_NS	(32 * NSEC_PER_SEC)

/*
 * VMs with an AUTO vmclock.  Only while there are any does kernel/time keep
 * the clock line and is the notifier registered and the guest-entry check
 * enabled, so that a host without one pays nothing per tick or per entry.
 */
static DEFINE_MUTEX(kvm_vmclock_auto_lock);
static unsigned int kvm_vmclock_auto_vms;
DEFINE_STATIC_KEY_FALSE(kvm_vmclock_auto_key);
/* The clock line generation the notifier saw last; under the timekeeper lock. */
static u64 kvm_vmclock_auto_gen;

/*
 * Whether the host knows TAI: the NTP daemon set the TAI offset (after a
 * leap second, a host whose daemon never did has an offset of +-1 without
 * knowing TAI), and it fits the vmclock's s16.  0 is what adjtimex()
 * reports for "unknown".
 */
static bool kvm_vmclock_tai_known(const struct clock_line *line)
{
	return line->tai_offset_set && line->tai_offset > 0 &&
	       line->tai_offset <= S16_MAX;
}

static u8 kvm_vmclock_leap_indicator(enum clock_line_leap leap)
{
	switch (leap) {
	case CLOCK_LINE_LEAP_PRE_INS:
		return VMCLOCK_LEAP_PRE_POS;
	case CLOCK_LINE_LEAP_PRE_DEL:
		return VMCLOCK_LEAP_PRE_NEG;
	case CLOCK_LINE_LEAP_INS:
		return VMCLOCK_LEAP_POS;
	case CLOCK_LINE_LEAP_POST_INS:
		return VMCLOCK_LEAP_POST_POS;
	case CLOCK_LINE_LEAP_POST_DEL:
		return VMCLOCK_LEAP_POST_NEG;
	default:
		return VMCLOCK_LEAP_NONE;
	}
}

/*
 * The host vmclock for @line, in the host TSC domain: what a VMM would
 * supply with KVM_SET_VMCLOCK_HOST.  TAI, or UTC if @utc.  Returns false if
 * the line cannot be published: the host clocksource is not the TSC, or
 * the host does not know TAI for a TAI clock.
 */
static bool kvm_vmclock_line_host(const struct clock_line *line, bool utc,
				  struct vmclock_abi *clk)
{
	bool tai_known = kvm_vmclock_tai_known(line);
	u64 flags = VMCLOCK_FLAG_TIME_MONOTONIC;
	u64 period = line->period_frac;

	memset(clk, 0, sizeof(*clk));
	clk->magic = cpu_to_le32(VMCLOCK_MAGIC);
	clk->version = cpu_to_le16(1);
	clk->counter_id = VMCLOCK_COUNTER_X86_TSC;
	clk->time_type = utc ? VMCLOCK_TIME_UTC : VMCLOCK_TIME_TAI;
	clk->clock_status = VMCLOCK_STATUS_UNRELIABLE;

	if (!line->valid || line->cs_id != CSID_X86_TSC || (!utc && !tai_known))
		return false;

	clk->counter_value = cpu_to_le64(line->cycles);
	clk->counter_period_shift = line->period_shift;
	clk->counter_period_frac_sec = cpu_to_le64(period);
	clk->time_sec = cpu_to_le64(line->tai_sec - (utc ? line->tai_offset : 0));
	clk->time_frac_sec = cpu_to_le64(line->tai_frac);
	clk->leap_indicator = kvm_vmclock_leap_indicator(line->leap);
	if (tai_known) {
		/* The guest driver's sign: UTC - TAI. */
		clk->tai_offset_sec = cpu_to_le16((u16)(s16)-line->tai_offset);
		flags |= VMCLOCK_FLAG_TAI_OFFSET_VALID;
	}

	if (!line->synced) {
		clk->clock_status = VMCLOCK_STATUS_FREERUNNING;
	} else {
		clk->clock_status = VMCLOCK_STATUS_SYNCHRONIZED;
		clk->time_esterror_nanosec = cpu_to_le64(line->esterror_ns);
		clk->time_maxerror_nanosec = cpu_to_le64(line->maxerror_ns);
		clk->counter_period_maxerror_rate_frac_sec =
			cpu_to_le64(mul_u64_u64_div_u64(period, line->maxerror_ppb,
							NSEC_PER_SEC) + 1);
		flags |= VMCLOCK_FLAG_TIME_ESTERROR_VALID |
			 VMCLOCK_FLAG_TIME_MAXERROR_VALID |
			 VMCLOCK_FLAG_PERIOD_MAXERROR_VALID;
	}
	clk->flags = cpu_to_le64(flags);
	return true;
}

static void kvm_vmclock_auto_work_fn(struct work_struct *work)
{
	kvm_vmclock_request_update_all(KVM_VMCLOCK_MODE_AUTO);
}

static DECLARE_WORK(kvm_vmclock_auto_work, kvm_vmclock_auto_work_fn);

/*
 * queue_work() cannot be called with the timekeeper lock held.  The high
 * priority workqueue, as the vCPUs are in the guest with an outdated line
 * until the work kicks them.
 */
static void kvm_vmclock_auto_irq_work_fn(struct irq_work *w)
{
	queue_work(system_highpri_wq, &kvm_vmclock_auto_work);
}

static DEFINE_IRQ_WORK(kvm_vmclock_auto_irq_work, kvm_vmclock_auto_irq_work_fn);

/*
 * The pvclock_gtod notifier, called after every timekeeper update with the
 * timekeeper lock held, while a VM has an AUTO vmclock: one compare, unless
 * the clock line changed.
 */
static int kvm_vmclock_gtod_notify(struct notifier_block *nb,
				   unsigned long was_set, void *priv)
{
	u64 gen = clock_line_gen();

	if (gen == kvm_vmclock_auto_gen)
		return 0;

	kvm_vmclock_auto_gen = gen;
	irq_work_queue(&kvm_vmclock_auto_irq_work);
	return 0;
}

static struct notifier_block kvm_vmclock_gtod_nb = {
	.notifier_call = kvm_vmclock_gtod_notify,
};

/*
 * A VM switches its vmclock to automatic mode.  The first one starts the
 * clock line, so that it is current before the VM's first update, and
 * registers the notifier.  Registering a pvclock_gtod notifier calls all of
 * them as if the clock had been set, so kvm_vmclock_vms_get() comes before
 * this and kvm_vmclock_vms_put() after kvm_vmclock_auto_put(): this
 * notifier never sees the unstable-TSC watch being registered.
 */
static void kvm_vmclock_auto_get(void)
{
	mutex_lock(&kvm_vmclock_auto_lock);
	if (!kvm_vmclock_auto_vms++) {
		clock_line_start();
		pvclock_gtod_register_notifier(&kvm_vmclock_gtod_nb);
		static_branch_enable(&kvm_vmclock_auto_key);
	}
	mutex_unlock(&kvm_vmclock_auto_lock);
}

static void kvm_vmclock_auto_put(void)
{
	mutex_lock(&kvm_vmclock_auto_lock);
	if (!--kvm_vmclock_auto_vms) {
		static_branch_disable(&kvm_vmclock_auto_key);
		pvclock_gtod_unregister_notifier(&kvm_vmclock_gtod_nb);
		clock_line_stop();
	}
	mutex_unlock(&kvm_vmclock_auto_lock);
}

/*
 * Called by kvm_vmclock_entry_stale() with the vCPU in IN_GUEST_MODE and
 * interrupts off, as the last check before entering the guest (also on
 * fastpath re-entry): the notifier reaches the VMs through irq_work and a
 * workqueue, which takes a while, and a vCPU must not enter the guest with
 * a line older than the host's, e.g. one that is no longer reliable because
 * the host clocksource just stopped being the TSC.  A line that changes
 * after this check kicks the vCPU out through the workqueue.
 */
bool kvm_vmclock_auto_stale(struct kvm_vcpu *vcpu)
{
	/* Pairs with the release in kvm_vmclock_publish(). */
	if (smp_load_acquire(&vcpu->kvm->arch.vmclock.auto_seen_gen) ==
	    clock_line_gen())
		return false;

	kvm_vmclock_vcpu_tsc_changed(vcpu);
	return true;
}

void kvm_vmclock_exit(void)
{
	irq_work_sync(&kvm_vmclock_unstable_irq_work);
	cancel_work_sync(&kvm_vmclock_unstable_work);
	irq_work_sync(&kvm_vmclock_auto_irq_work);
	cancel_work_sync(&kvm_vmclock_auto_work);
}

/*
 * Add the conversion error to @guest's estimated and maximum errors: one
 * guest TSC tick, as counter_value is rounded down to one, and the
 * rounding of the conversion.
 */
static void kvm_vmclock_auto_errors(struct vmclock_abi *guest)
{
	u64 period = le64_to_cpu(guest->counter_period_frac_sec);
	u64 err;

	err = (((u128)period * NSEC_PER_SEC) >>
	       (64 + guest->counter_period_shift)) + 2;

	le64_add_cpu(&guest->time_esterror_nanosec, err);
	le64_add_cpu(&guest->time_maxerror_nanosec, err);
}

/* What an AUTO vmclock update is derived from, see kvm_vmclock_state. */
struct kvm_vmclock_auto_rec {
	bool valid;
	bool monotonic;
	/* A leap second was inserted into this UTC clock: no catch-up. */
	bool leap_inserted;
	u64 gen;
	u64 steps;
	u64 leaps;
	u64 tsc_offset;
	u64 tsc_ratio;
};

/*
 * Whether the line for @rec can claim TIME_MONOTONIC with what the guest
 * read before.  Decided once per line, so that all vCPUs compute the same
 * view.  Not if the host clock went back in this clock's time scale (steps
 * counted by kernel/time, per scale: a TAI offset corrected downwards goes
 * back in TAI only, a leap second insertion in UTC only and on purpose,
 * which the ABI allows), not if the guest TSC was moved (the lines cannot
 * be compared), and not if guest memory holds something else than what KVM
 * wrote last (a failed write), as there is nothing to compare with.
 */
static bool kvm_vmclock_auto_monotonic(const struct kvm_vmclock_state *vc,
				       const struct kvm_vmclock_auto_rec *rec)
{
	/*
	 * The first line of a registration: monotonic unless KVM wrote this
	 * place before and its last write there failed, which leaves guest
	 * memory with something that cannot be compared.
	 */
	if (!vc->auto_written)
		return vc->written_valid || !vc->seq_known;
	if (vc->auto_gen == rec->gen)
		return vc->auto_monotonic;

	return vc->written_valid && vc->auto_steps == rec->steps &&
	       vc->auto_tsc_offset == rec->tsc_offset &&
	       vc->auto_tsc_ratio == rec->tsc_ratio;
}

/* The guest's view of the host clock line in auto mode. */
static bool kvm_vmclock_auto_view(struct kvm *kvm, struct kvm_vmclock_state *vc,
				  const struct kvm_vmclock_cfg *cfg,
				  struct vmclock_abi *clk,
				  struct kvm_vmclock_auto_rec *rec)
{
	bool utc = cfg->flags & KVM_VMCLOCK_F_UTC;
	struct clock_line line;
	struct vmclock_abi host;

	clock_line_get(&line);
	rec->gen = line.gen;

	if (!kvm_vmclock_line_host(&line, utc, &host) ||
	    !kvm_vmclock_guest_tsc(kvm, &rec->tsc_offset, &rec->tsc_ratio) ||
	    kvm_vmclock_convert(&host, rec->tsc_offset, rec->tsc_ratio,
				kvm_caps.tsc_scaling_ratio_frac_bits, clk))
		return false;

	if (le64_to_cpu(clk->flags) & VMCLOCK_FLAG_TIME_ESTERROR_VALID)
		kvm_vmclock_auto_errors(clk);

	rec->steps = utc ? line.utc_steps_back : line.tai_steps_back;
	rec->leaps = line.leaps_inserted;
	rec->leap_inserted = utc && vc->auto_written && vc->auto_leaps != rec->leaps;
	rec->monotonic = kvm_vmclock_auto_monotonic(vc, rec);
	if (!rec->monotonic)
		clk->flags &= ~cpu_to_le64(VMCLOCK_FLAG_TIME_MONOTONIC);

	rec->valid = true;
	return true;
}

/* The time @clk gives at counter value @counter, in 2^-64 s. */
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
 * In auto mode, a new line must not give a time behind what the guest may
 * have read from the old one @old, which it may have done until @now (guest
 * TSC).  Both are in the clock's own time scale.  A rate change starts at
 * the host's last tick (the NTP line is continuous there), and kernel/time
 * lets the published line stray from the NTP line by up to a microsecond
 * before publishing a new one, so a new line can be behind the old one by
 * that much, or more after a large rate change.  The timekeeper keeps
 * CLOCK_REALTIME continuous and works such a difference off over the next
 * ticks; do the same with a line: start @new at the old line's time at @now,
 * slower than the NTP line by the difference over two seconds, or by
 * 500 ppm if that takes longer, or gently (VMCLOCK_AUTO_SLEW_GENTLE_MAX_NS),
 * and add the difference to the error bounds and the slew rate to the
 * period's maximum error rate, so that the bounds hold however late the
 * slewed line is replaced.  Returns how long, in ns, until the slewed line
 * must be replaced by the NTP line: when it meets it, or for a gentle slew
 * when it is as far past it; 0 if @new was not moved.  A new line that is
 * further behind than VMCLOCK_AUTO_MAX_BEHIND_NS is a step: it does not
 * claim VMCLOCK_FLAG_TIME_MONOTONIC.
 */
static u64 kvm_vmclock_catch_up(const struct vmclock_abi *old,
				struct vmclock_abi *new, u64 now)
{
	u128 t_old, t_new, behind;
	u64 ns, period, slew, slew_ns;
	bool gentle;

	if (old->clock_status == VMCLOCK_STATUS_UNRELIABLE ||
	    new->clock_status == VMCLOCK_STATUS_UNRELIABLE ||
	    old->time_type != new->time_type)
		return 0;

	t_old = kvm_vmclock_time_at(old, now);
	t_new = kvm_vmclock_time_at(new, now);
	if (t_new >= t_old)
		return 0;

	behind = t_old - t_new;
	if (behind > (u128)VMCLOCK_AUTO_MAX_BEHIND_NS * VMCLOCK_NSEC_FRAC) {
		new->flags &= ~cpu_to_le64(VMCLOCK_FLAG_TIME_MONOTONIC);
		return 0;
	}
	ns = ((behind * NSEC_PER_SEC) >> 64) + 1;
	gentle = ns <= VMCLOCK_AUTO_SLEW_GENTLE_MAX_NS;
	if (gentle)
		slew_ns = VMCLOCK_AUTO_SLEW_GENTLE_NS;
	else
		slew_ns = max_t(u64, VMCLOCK_AUTO_SLEW_MIN_NS,
				ns * (USEC_PER_SEC / VMCLOCK_AUTO_SLEW_PPM));

	period = le64_to_cpu(new->counter_period_frac_sec);
	slew = mul_u64_u64_div_u64(period, ns, slew_ns) + 1;

	kvm_vmclock_set_time(new, t_old);
	new->counter_value = cpu_to_le64(now);
	new->counter_period_frac_sec = cpu_to_le64(period - slew);

	if (le64_to_cpu(new->flags) & VMCLOCK_FLAG_TIME_ESTERROR_VALID) {
		le64_add_cpu(&new->time_esterror_nanosec, ns);
		le64_add_cpu(&new->time_maxerror_nanosec, ns);
		le64_add_cpu(&new->counter_period_maxerror_rate_frac_sec, slew);
	}
	return gentle ? 2 * slew_ns : slew_ns;
}

/* A slewed line met the NTP line: replace it, see kvm_vmclock_update(). */
static void kvm_vmclock_slew_work_fn(struct work_struct *work)
{
	struct kvm *kvm = container_of(to_delayed_work(work), struct kvm,
				       arch.vmclock.slew_work);

	kvm_vmclock_request_update(kvm);
}

/*
 * Whether guest memory holds a slewed line that has met the NTP line and
 * must be replaced by it.
 */
static bool kvm_vmclock_slew_done(struct kvm_vmclock_state *vc)
{
	return vc->slew_end && ktime_get_ns() >= vc->slew_end;
}

/* Replace the slewed line in @replace_ns, a little later. */
static void kvm_vmclock_slew_start(struct kvm_vmclock_state *vc, u64 replace_ns)
{
	vc->slew_end = ktime_get_ns() + replace_ns;
	/* nsecs_to_jiffies() rounds down, and the current jiffy is partly over. */
	mod_delayed_work(system_long_wq, &vc->slew_work,
			 nsecs_to_jiffies(replace_ns + replace_ns / 8 + NSEC_PER_MSEC) + 2);
}

/* What the guest sees while KVM cannot give it a usable clock. */
static void kvm_vmclock_unreliable(const struct kvm_vmclock_cfg *cfg,
				   struct vmclock_abi *clk)
{
	memset(clk, 0, sizeof(*clk));
	clk->magic = cpu_to_le32(VMCLOCK_MAGIC);
	clk->version = cpu_to_le16(1);
	clk->counter_id = VMCLOCK_COUNTER_X86_TSC;
	clk->clock_status = VMCLOCK_STATUS_UNRELIABLE;

	if (cfg->mode == KVM_VMCLOCK_MODE_AUTO)
		clk->time_type = cfg->flags & KVM_VMCLOCK_F_UTC ?
				 VMCLOCK_TIME_UTC : VMCLOCK_TIME_TAI;
	else if (cfg->host_valid)
		clk->time_type = cfg->host.time_type;
}

/*
 * What KVM publishes, but for seq_count and the VMM-owned fields, which are
 * only known once guest memory was read (see kvm_vmclock_try_write()).
 */
static void kvm_vmclock_guest_view(struct kvm *kvm,
				   struct kvm_vmclock_state *vc,
				   const struct kvm_vmclock_cfg *cfg,
				   struct vmclock_abi *clk,
				   struct kvm_vmclock_auto_rec *rec)
{
	u64 offset, ratio;

	if (cfg->mode == KVM_VMCLOCK_MODE_AUTO) {
		if (!kvm_vmclock_auto_view(kvm, vc, cfg, clk, rec))
			kvm_vmclock_unreliable(cfg, clk);
	} else if (!cfg->host_valid ||
		   !kvm_vmclock_guest_tsc(kvm, &offset, &ratio) ||
		   kvm_vmclock_convert(&cfg->host, offset, ratio,
				       kvm_caps.tsc_scaling_ratio_frac_bits, clk)) {
		kvm_vmclock_unreliable(cfg, clk);
	}

	clk->size = cpu_to_le32(cfg->size);
	if (cfg->notify)
		clk->flags |= cpu_to_le64(VMCLOCK_FLAG_NOTIFICATION_PRESENT);
}

static void kvm_vmclock_get_cfg(struct kvm_vmclock_state *vc,
				struct kvm_vmclock_cfg *cfg)
{
	spin_lock(&vc->lock);
	cfg->mode = vc->mode;
	cfg->flags = vc->flags;
	cfg->size = vc->size;
	cfg->gpa = vc->gpa;
	cfg->config_gen = vc->config_gen;
	cfg->notify = vc->notify;
	cfg->host_valid = vc->host_valid;
	cfg->host = vc->host;
	cfg->new_disruptions = vc->new_disruptions;
	cfg->new_generations = vc->new_generations;
	cfg->new_notice = vc->new_notice;
	cfg->notice = vc->notice;
	spin_unlock(&vc->lock);
}

static bool kvm_vmclock_new_events(const struct kvm_vmclock_cfg *cfg)
{
	return cfg->new_disruptions || cfg->new_generations || cfg->new_notice;
}

/*
 * A new registration: point the cache at it.  At the same place, guest
 * memory still holds what KVM wrote last, which the next line in auto mode
 * stays monotonic with, and seq_count continues from there.
 */
static int kvm_vmclock_prepare(struct kvm *kvm, struct kvm_vmclock_state *vc,
			       const struct kvm_vmclock_cfg *cfg)
{
	if (cfg->config_gen == vc->written_config_gen)
		return 0;

	if (!vc->written_config_gen || cfg->gpa != vc->ghc.gpa ||
	    cfg->size != vc->ghc.len) {
		if (kvm_gfn_to_hva_cache_init(kvm, &vc->ghc, cfg->gpa, cfg->size))
			return -EFAULT;
		vc->seq_known = false;
		vc->written_valid = false;
	}

	vc->clear_tail = true;
	memset(&vc->view, 0, sizeof(vc->view));
	vc->slew_end = 0;
	vc->auto_written = false;
	vc->written_config_gen = cfg->config_gen;
	return 0;
}

/*
 * Compare-and-exchange seq_count through the VMM's mapping of guest memory,
 * as record_steal_time() does its xchg.  Returns 0, -EAGAIN if seq_count was
 * not *@old (which is then updated), or -EFAULT.
 */
static int kvm_vmclock_cmpxchg_seq(struct gfn_to_hva_cache *ghc, u32 *old,
				   u32 new)
{
	u32 __user *seq = (u32 __user *)(ghc->hva + VMCLOCK_SEQ_OFFSET);
	int r;

	if (!access_ok(seq, sizeof(*seq)))
		return -EFAULT;

	r = __try_cmpxchg_user(seq, old, new, efault);
	return r > 0 ? -EAGAIN : r;
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
	unsigned long len = vc->ghc.len - sizeof(struct vmclock_abi);

	if (!vc->clear_tail || !len)
		return 0;

	return clear_user(tail, len) ? -EFAULT : 0;
}

/*
 * The VMM-owned fields were written by somebody else than KVM (a VMM such
 * as QEMU bumps disruption_marker on an incoming migration, with plain
 * stores while no vCPU runs): take them from guest memory so that the next
 * update keeps them.  A region that KVM never wrote and that does not hold
 * a vmclock yet starts from zero.  One that KVM wrote keeps whatever was
 * written there, even without the magic: going back to zero could give the
 * guest a disruption_marker it saw before.
 */
static int kvm_vmclock_adopt(struct kvm *kvm, struct kvm_vmclock_state *vc)
{
	struct vmclock_abi mem;
	int r;

	r = kvm_read_guest_offset_cached(kvm, &vc->ghc, &mem, 0, sizeof(mem));
	if (r)
		return r;

	if (!vc->seq_known && (le32_to_cpu(mem.magic) != VMCLOCK_MAGIC ||
			       le16_to_cpu(mem.version) != 1)) {
		vc->disruption_marker = 0;
		vc->vm_generation_counter = 0;
		vc->vmm_flags = 0;
		return 0;
	}

	vc->disruption_marker = le64_to_cpu(mem.disruption_marker);
	vc->vm_generation_counter = le64_to_cpu(mem.vm_generation_counter);
	vc->vmm_flags = le64_to_cpu(mem.flags) & VMCLOCK_VMM_FLAGS;
	return 0;
}

/* The VMM-owned fields: what guest memory had, plus new KVM_VMCLOCK_DISRUPTION events. */
static void kvm_vmclock_vmm_fields(struct kvm_vmclock_state *vc,
				   const struct kvm_vmclock_cfg *cfg,
				   struct vmclock_abi *clk)
{
	u64 flags = vc->vmm_flags;

	if (cfg->new_generations)
		flags |= VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT;
	if (cfg->new_notice)
		flags = (flags & ~(u64)VMCLOCK_NOTICE_FLAGS) | cfg->notice;

	clk->disruption_marker = cpu_to_le64(vc->disruption_marker +
					     cfg->new_disruptions);
	clk->vm_generation_counter = cpu_to_le64(vc->vm_generation_counter +
						 cfg->new_generations);
	clk->flags |= cpu_to_le64(flags);
}

/* What an auto mode write keeps TIME_MONOTONIC with, see kvm_vmclock_catch_up(). */
struct kvm_vmclock_prev {
	const struct vmclock_abi *clk;	/* In guest memory until now. */
	u64 replace_ns;			/* Out: when @clk must be replaced, or 0. */
};

/*
 * One attempt to publish @clk.  seq_count moves from the value found to a
 * new odd value and on to the next even one with compare-and-exchange, so
 * that a write by anybody else (which only a VMM breaking the rules or a
 * hostile guest does while vCPUs run) is seen: -EAGAIN.  A seq_count other
 * than the one KVM wrote last means that the VMM wrote the page while the
 * vCPUs were stopped: its fields are kept.
 */
static int kvm_vmclock_try_write(struct kvm_vcpu *vcpu,
				 struct kvm_vmclock_state *vc,
				 const struct kvm_vmclock_cfg *cfg,
				 struct vmclock_abi *clk,
				 struct kvm_vmclock_prev *prev)
{
	struct kvm *kvm = vcpu->kvm;
	__le32 raw;
	u32 seq, odd;
	int r;

	/* Also revalidates the cache, before the hva is used directly. */
	r = kvm_read_guest_offset_cached(kvm, &vc->ghc, &raw,
					 VMCLOCK_SEQ_OFFSET, sizeof(raw));
	if (r)
		return r;
	seq = le32_to_cpu(raw);

	if (!vc->seq_known || seq != vc->seq) {
		if (vc->seq_known)
			kvm->stat.vmclock_foreign_writes++;
		r = kvm_vmclock_adopt(kvm, vc);
		if (r)
			return r;
	}
	kvm_vmclock_vmm_fields(vc, cfg, clk);

	kvm->stat.vmclock_write_attempts++;
	odd = seq + 1 + (seq & 1);
	r = kvm_vmclock_cmpxchg_seq(&vc->ghc, &seq, odd);
	if (r)
		return r;

	r = kvm_vmclock_clear_tail(vc);
	if (r)
		goto out;

	/*
	 * Guests read the old line until seq_count went odd: only now is the
	 * time at which the new line must not be behind it.
	 */
	if (prev)
		prev->replace_ns =
			kvm_vmclock_catch_up(prev->clk, clk,
					     kvm_read_l1_tsc(vcpu, rdtsc()));

	clk->seq_count = cpu_to_le32(odd + 1);
	/* Pairs with the reader's rmb() after reading seq_count. */
	smp_wmb();
	r = kvm_vmclock_write_fields(kvm, &vc->ghc, clk);
	if (!r) {
		/* Pairs with the reader's rmb() before re-reading seq_count. */
		smp_wmb();
		seq = odd;
		r = kvm_vmclock_cmpxchg_seq(&vc->ghc, &seq, odd + 1);
	}
out:
	/* Whatever the page holds now goes into the dirty log. */
	mark_page_dirty_in_slot(kvm, vc->ghc.memslot, gpa_to_gfn(vc->ghc.gpa));
	if (r)
		return r;

	vc->seq = odd + 1;
	vc->seq_known = true;
	return 0;
}

/*
 * Whether guest memory still holds what KVM wrote last: a VMM may have
 * written the page while the vCPUs were stopped, and then it is written
 * again, so that KVM's fields are KVM's and the VMM's are kept.
 */
static bool kvm_vmclock_seq_unchanged(struct kvm *kvm,
				      struct kvm_vmclock_state *vc)
{
	__le32 raw;

	return vc->seq_known &&
	       !kvm_read_guest_offset_cached(kvm, &vc->ghc, &raw,
					     VMCLOCK_SEQ_OFFSET, sizeof(raw)) &&
	       le32_to_cpu(raw) == vc->seq;
}

/* An update lost against another writer: try again later, not in a loop. */
static void kvm_vmclock_retry_later(struct kvm_vmclock_state *vc, u64 req)
{
	vc->blocked_req = req;
	vc->retry_jiffies = clamp(vc->retry_jiffies * 2, 1U,
				  (unsigned int)VMCLOCK_RETRY_MAX_JIFFIES);
	mod_delayed_work(system_wq, &vc->retry_work, vc->retry_jiffies);
}

static void kvm_vmclock_retry_work_fn(struct work_struct *work)
{
	struct kvm *kvm = container_of(to_delayed_work(work), struct kvm,
				       arch.vmclock.retry_work);

	kvm_vmclock_request_update(kvm);
}

/*
 * Guest memory cannot be written (no memslot, no writable mapping): stop
 * trying until the memslots or the registration change, and tell the VMM.
 */
static void kvm_vmclock_stall(struct kvm *kvm, struct kvm_vmclock_state *vc,
			      u64 req)
{
	vc->blocked_req = req;
	kvm->stat.vmclock_write_failures++;
	spin_lock(&vc->lock);
	vc->stalled = true;
	spin_unlock(&vc->lock);
}

/* @cfg is in guest memory: consume its events and notify the VMM. */
static void kvm_vmclock_published(struct kvm_vmclock_state *vc,
				  const struct kvm_vmclock_cfg *cfg)
{
	spin_lock(&vc->lock);
	vc->new_disruptions -= cfg->new_disruptions;
	vc->new_generations -= cfg->new_generations;
	if (cfg->new_notice && vc->notice == cfg->notice)
		vc->new_notice = false;
	vc->stalled = false;
	if (vc->notify && vc->config_gen == cfg->config_gen)
		eventfd_signal(vc->notify);
	spin_unlock(&vc->lock);
}

static void kvm_vmclock_publish(struct kvm_vcpu *vcpu, u64 req)
{
	struct kvm *kvm = vcpu->kvm;
	struct kvm_vmclock_state *vc = &kvm->arch.vmclock;
	struct kvm_vmclock_auto_rec rec = {};
	struct kvm_vmclock_prev prev = {};
	struct vmclock_abi view, clk;
	struct kvm_vmclock_cfg cfg;
	bool keep_monotonic;
	int i, r;
	u64 gen;

	kvm_vmclock_get_cfg(vc, &cfg);
	if (!cfg.mode)
		goto done;

	if (kvm_vmclock_prepare(kvm, vc, &cfg)) {
		kvm_vmclock_stall(kvm, vc, req);
		goto out;
	}

	kvm_vmclock_guest_view(kvm, vc, &cfg, &view, &rec);

	/* A memslot update may have put different memory behind the gpa. */
	gen = kvm_memslots(kvm)->generation;
	if (vc->written_valid && vc->written_gen == gen &&
	    !memcmp(&view, &vc->view, sizeof(view)) &&
	    !kvm_vmclock_slew_done(vc) && !kvm_vmclock_new_events(&cfg) &&
	    kvm_vmclock_seq_unchanged(kvm, vc))
		goto written;

	/* In auto mode, stay monotonic with what guest memory holds. */
	keep_monotonic = rec.valid && rec.monotonic && !rec.leap_inserted &&
			 vc->written_valid;
	prev.clk = &vc->written;

	for (i = 0; i < VMCLOCK_WRITE_ATTEMPTS; i++) {
		clk = view;
		r = kvm_vmclock_try_write(vcpu, vc, &cfg, &clk,
					  keep_monotonic ? &prev : NULL);
		if (r != -EAGAIN)
			break;
	}
	if (r == -EAGAIN) {
		kvm_vmclock_retry_later(vc, req);
		goto out;
	}
	/*
	 * A fault that a fatal signal cut short (e.g. on a page that
	 * userfaultfd still had to bring in when the VMM was killed): no
	 * failed write, the page stays as it was.  Other signals do not end
	 * a fault on guest memory, the write waits for the page.
	 */
	if (r == -EFAULT && fatal_signal_pending(current)) {
		kvm_make_request(KVM_REQ_VMCLOCK_UPDATE, vcpu);
		goto out;
	}
	if (r) {
		vc->written_valid = false;
		kvm_vmclock_stall(kvm, vc, req);
		goto out;
	}

	vc->written = clk;
	vc->view = view;
	vc->written_gen = gen;
	vc->written_valid = true;
	vc->clear_tail = false;
	vc->retry_jiffies = 0;
	vc->disruption_marker = le64_to_cpu(clk.disruption_marker);
	vc->vm_generation_counter = le64_to_cpu(clk.vm_generation_counter);
	vc->vmm_flags = le64_to_cpu(clk.flags) & VMCLOCK_VMM_FLAGS;
	vc->slew_end = 0;
	if (prev.replace_ns)
		kvm_vmclock_slew_start(vc, prev.replace_ns);
	kvm->stat.vmclock_updates++;
	kvm_vmclock_published(vc, &cfg);
written:
	if (rec.valid) {
		vc->auto_written = true;
		vc->auto_monotonic = rec.monotonic;
		vc->auto_gen = rec.gen;
		vc->auto_steps = rec.steps;
		vc->auto_leaps = rec.leaps;
		vc->auto_tsc_offset = rec.tsc_offset;
		vc->auto_tsc_ratio = rec.tsc_ratio;
	}
done:
	vc->update_done = req;
out:
	/*
	 * Also if the write failed: see kvm_vmclock_auto_stale().  After the
	 * write, so that a vCPU that finds it up to date finds the new line
	 * in guest memory.
	 */
	smp_store_release(&vc->auto_seen_gen, rec.gen);
}

/*
 * Handle KVM_REQ_VMCLOCK_UPDATE, before @vcpu enters the guest.  One vCPU
 * publishes each change: whoever gets the @writing bit first.  The others
 * find the change published, or, while it is being published, go round the
 * entry loop again instead of entering the guest with what guest memory
 * held before; they never sleep on the bit, and a signal stops them as it
 * stops any KVM_RUN.  An update that cannot be written is not retried at
 * every entry: see kvm_vmclock_stall() and kvm_vmclock_retry_later().
 */
void kvm_vmclock_update(struct kvm_vcpu *vcpu)
{
	struct kvm_vmclock_state *vc = &vcpu->kvm->arch.vmclock;
	u64 req;

	if (test_and_set_bit_lock(0, &vc->writing)) {
		kvm_make_request(KVM_REQ_VMCLOCK_UPDATE, vcpu);
		return;
	}

	req = atomic64_read(&vc->update_req);
	if (req != vc->update_done && req != vc->blocked_req)
		kvm_vmclock_publish(vcpu, req);

	clear_bit_unlock(0, &vc->writing);
}

void kvm_vmclock_memslots_updated(struct kvm *kvm)
{
	if (READ_ONCE(kvm->arch.vmclock.mode))
		kvm_vmclock_request_update(kvm);
}

/* The guest TSC is not known to KVM: TDX, SEV-SNP with Secure TSC. */
static bool kvm_vmclock_tsc_protected(struct kvm *kvm)
{
	struct kvm_vcpu *vcpu;
	unsigned long i;

	if (kvm->arch.vm_type == KVM_X86_TDX_VM)
		return true;

	kvm_for_each_vcpu(i, vcpu, kvm) {
		if (vcpu->arch.guest_tsc_protected)
			return true;
	}
	return false;
}

u32 kvm_vmclock_caps(struct kvm *kvm)
{
	if (kvm && kvm_vmclock_tsc_protected(kvm))
		return 0;

	return KVM_VMCLOCK_CAP_USERSPACE | KVM_VMCLOCK_CAP_AUTO |
	       KVM_VMCLOCK_CAP_NOTIFY;
}

static int kvm_vmclock_check_config(const struct kvm_vmclock *cfg)
{
	if (cfg->pad || memchr_inv(cfg->reserved, 0, sizeof(cfg->reserved)))
		return -EINVAL;

	if (cfg->gpa == KVM_VMCLOCK_GPA_DISABLED)
		return cfg->size || cfg->mode || cfg->flags ? -EINVAL : 0;

	if (cfg->flags & ~(KVM_VMCLOCK_F_UTC | KVM_VMCLOCK_F_NOTIFY))
		return -EINVAL;

	/* UTC instead of TAI only in auto mode. */
	if (cfg->mode != KVM_VMCLOCK_MODE_AUTO &&
	    (cfg->mode != KVM_VMCLOCK_MODE_USERSPACE ||
	     cfg->flags & KVM_VMCLOCK_F_UTC))
		return -EINVAL;

	if (!IS_ALIGNED(cfg->gpa, 8) || cfg->size < sizeof(struct vmclock_abi) ||
	    cfg->size > PAGE_SIZE ||
	    offset_in_page(cfg->gpa) + cfg->size > PAGE_SIZE)
		return -EINVAL;

	return 0;
}

/* Whether KVM can write [@gpa, @gpa + @size): shared memory in a memslot. */
static int kvm_vmclock_check_gpa(struct kvm *kvm, gpa_t gpa, u32 size)
{
	struct gfn_to_hva_cache ghc;
	int idx, r;

	idx = srcu_read_lock(&kvm->srcu);
	/* Private memory has no userspace mapping for KVM to write through. */
	if (kvm_mem_is_private(kvm, gpa_to_gfn(gpa)))
		r = -EINVAL;
	else if (kvm_gfn_to_hva_cache_init(kvm, &ghc, gpa, size))
		r = -EFAULT;
	else
		r = 0;
	srcu_read_unlock(&kvm->srcu, idx);

	return r;
}

int kvm_vm_ioctl_set_vmclock(struct kvm *kvm, void __user *argp)
{
	struct kvm_vmclock_state *vc = &kvm->arch.vmclock;
	struct eventfd_ctx *notify = NULL, *old_notify;
	bool enable, was_registered, was_auto;
	struct kvm_vmclock cfg;
	int r;

	if (copy_from_user(&cfg, argp, sizeof(cfg)))
		return -EFAULT;

	r = kvm_vmclock_check_config(&cfg);
	if (r)
		return r;

	enable = cfg.gpa != KVM_VMCLOCK_GPA_DISABLED;
	if (enable) {
		if (kvm_vmclock_tsc_protected(kvm))
			return -EOPNOTSUPP;

		r = kvm_vmclock_check_gpa(kvm, cfg.gpa, cfg.size);
		if (r)
			return r;
	}

	if (cfg.flags & KVM_VMCLOCK_F_NOTIFY) {
		notify = eventfd_ctx_fdget(cfg.notify_fd);
		if (IS_ERR(notify))
			return PTR_ERR(notify);
	}

	mutex_lock(&vc->config_lock);
	was_registered = vc->mode;
	/* The unstable-TSC watch runs while any VM has a vmclock. */
	if (!was_registered && cfg.mode)
		kvm_vmclock_vms_get();
	was_auto = vc->mode == KVM_VMCLOCK_MODE_AUTO;
	/* The host line is current before the first update in auto mode. */
	if (!was_auto && cfg.mode == KVM_VMCLOCK_MODE_AUTO)
		kvm_vmclock_auto_get();
	spin_lock(&vc->lock);
	old_notify = vc->notify;
	WRITE_ONCE(vc->mode, cfg.mode);
	vc->flags = cfg.flags;
	vc->gpa = cfg.gpa;
	vc->size = cfg.size;
	vc->notify = notify;
	/* The VMM supplies the host clock again after a disable. */
	if (!enable)
		vc->host_valid = false;
	vc->config_gen++;
	spin_unlock(&vc->lock);

	if (was_auto && cfg.mode != KVM_VMCLOCK_MODE_AUTO)
		kvm_vmclock_auto_put();
	if (was_registered && !cfg.mode)
		kvm_vmclock_vms_put();
	mutex_unlock(&vc->config_lock);

	if (old_notify)
		eventfd_ctx_put(old_notify);

	kvm_vmclock_request_update(kvm);
	return 0;
}

/* The vCPUs' TSC frequency as KVM configured it, if they all agree, else 0. */
static u32 kvm_vmclock_guest_tsc_khz(struct kvm *kvm)
{
	struct kvm_vcpu *vcpu;
	unsigned long i;
	u32 khz = 0;

	kvm_for_each_vcpu(i, vcpu, kvm) {
		u32 vcpu_khz = READ_ONCE(vcpu->arch.virtual_tsc_khz);

		if (khz && vcpu_khz != khz)
			return 0;
		khz = vcpu_khz;
	}
	return khz;
}

int kvm_vm_ioctl_get_vmclock(struct kvm *kvm, void __user *argp)
{
	struct kvm_vmclock_state *vc = &kvm->arch.vmclock;
	struct kvm_vmclock cfg = {
		.gpa = KVM_VMCLOCK_GPA_DISABLED,
		.notify_fd = -1,
	};

	spin_lock(&vc->lock);
	if (vc->mode) {
		cfg.gpa = vc->gpa;
		cfg.size = vc->size;
		cfg.mode = vc->mode;
		/* An eventfd is local to the process: not part of the output. */
		cfg.flags = vc->flags & ~KVM_VMCLOCK_F_NOTIFY;
		cfg.status = vc->stalled ? KVM_VMCLOCK_STATUS_STALLED : 0;
	}
	spin_unlock(&vc->lock);

	cfg.guest_tsc_khz = kvm_vmclock_guest_tsc_khz(kvm);

	if (copy_to_user(argp, &cfg, sizeof(cfg)))
		return -EFAULT;
	return 0;
}

int kvm_vm_ioctl_set_vmclock_host(struct kvm *kvm, void __user *argp)
{
	struct kvm_vmclock_state *vc = &kvm->arch.vmclock;
	struct kvm_vmclock_host in;
	struct vmclock_abi host;
	int r;

	if (copy_from_user(&in, argp, sizeof(in)))
		return -EFAULT;

	r = kvm_vmclock_host_clock(&in, &host);
	if (r)
		return r;

	r = kvm_vmclock_anchor(&host, rdtsc());
	if (r)
		return r;

	spin_lock(&vc->lock);
	if (!vc->mode) {
		r = -ENOENT;
	} else if (vc->mode != KVM_VMCLOCK_MODE_USERSPACE) {
		r = -EINVAL;
	} else {
		vc->host = host;
		vc->host_valid = true;
	}
	spin_unlock(&vc->lock);

	if (!r)
		kvm_vmclock_request_update(kvm);
	return r;
}

#define KVM_VMCLOCK_DISRUPTION_FLAGS	(KVM_VMCLOCK_DISRUPTED |		\
					 KVM_VMCLOCK_NEW_GENERATION |		\
					 KVM_VMCLOCK_SET_NOTICE)
#define KVM_VMCLOCK_NOTICES		(KVM_VMCLOCK_NOTICE_SOON |		\
					 KVM_VMCLOCK_NOTICE_IMMINENT)

static u64 kvm_vmclock_notice_flags(u32 notice)
{
	return (notice & KVM_VMCLOCK_NOTICE_SOON ?
		VMCLOCK_FLAG_DISRUPTION_SOON : 0) |
	       (notice & KVM_VMCLOCK_NOTICE_IMMINENT ?
		VMCLOCK_FLAG_DISRUPTION_IMMINENT : 0);
}

int kvm_vm_ioctl_vmclock_disruption(struct kvm *kvm, void __user *argp)
{
	struct kvm_vmclock_state *vc = &kvm->arch.vmclock;
	struct kvm_vmclock_disruption d;
	int r = 0;

	if (copy_from_user(&d, argp, sizeof(d)))
		return -EFAULT;

	if (d.flags & ~KVM_VMCLOCK_DISRUPTION_FLAGS ||
	    d.notice & ~KVM_VMCLOCK_NOTICES ||
	    (d.notice && !(d.flags & KVM_VMCLOCK_SET_NOTICE)) ||
	    memchr_inv(d.reserved, 0, sizeof(d.reserved)))
		return -EINVAL;

	spin_lock(&vc->lock);
	if (!vc->mode) {
		r = -ENOENT;
	} else {
		if (d.flags & KVM_VMCLOCK_DISRUPTED)
			vc->new_disruptions++;
		if (d.flags & KVM_VMCLOCK_NEW_GENERATION)
			vc->new_generations++;
		if (d.flags & KVM_VMCLOCK_SET_NOTICE) {
			vc->new_notice = true;
			vc->notice = kvm_vmclock_notice_flags(d.notice);
		}
	}
	spin_unlock(&vc->lock);

	if (!r)
		kvm_vmclock_request_update(kvm);
	return r;
}

void kvm_vmclock_init_vm(struct kvm *kvm)
{
	struct kvm_vmclock_state *vc = &kvm->arch.vmclock;

	mutex_init(&vc->config_lock);
	spin_lock_init(&vc->lock);
	vc->gpa = KVM_VMCLOCK_GPA_DISABLED;
	INIT_DELAYED_WORK(&vc->retry_work, kvm_vmclock_retry_work_fn);
	INIT_DELAYED_WORK(&vc->slew_work, kvm_vmclock_slew_work_fn);
}

/* Before the vCPUs go away: the works make requests to them. */
void kvm_vmclock_pre_destroy_vm(struct kvm *kvm)
{
	cancel_delayed_work_sync(&kvm->arch.vmclock.retry_work);
	cancel_delayed_work_sync(&kvm->arch.vmclock.slew_work);
}

void kvm_vmclock_destroy_vm(struct kvm *kvm)
{
	struct kvm_vmclock_state *vc = &kvm->arch.vmclock;

	if (vc->mode == KVM_VMCLOCK_MODE_AUTO)
		kvm_vmclock_auto_put();
	if (vc->mode)
		kvm_vmclock_vms_put();
	if (vc->notify)
		eventfd_ctx_put(vc->notify);
	mutex_destroy(&vc->config_lock);
}

#ifdef CONFIG_KVM_VMCLOCK_KUNIT_TEST
#include "vmclock_test.c"
#endif
