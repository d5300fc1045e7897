// SPDX-License-Identifier: GPL-2.0
/*
 * KVM vmclock: keep a vmclock structure (include/uapi/linux/vmclock-abi.h)
 * in guest memory consistent with the guest's TSC.
 *
 * The VMM supplies the clock in the host TSC domain with
 * KVM_SET_VMCLOCK_HOST.  KVM converts it to the guest TSC domain with the
 * VM's TSC offset and scaling ratio and republishes it whenever either
 * changes, so that the structure is right the moment a vCPU runs, e.g. right
 * after live migration, without the VMM racing with vCPUs.
 *
 * Guest memory is only written from vCPU context (KVM_REQ_VMCLOCK_UPDATE),
 * through the VMM's mapping of guest memory, so that the writes are dirty
 * logged like any other.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kvm_host.h>
#include <linux/math64.h>
#include <linux/uaccess.h>
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

/* What the guest sees while KVM cannot give it a usable clock. */
static void kvm_vmclock_unreliable(struct kvm_vmclock_state *vc,
				   struct vmclock_abi *clk)
{
	memset(clk, 0, sizeof(*clk));
	clk->magic = cpu_to_le32(VMCLOCK_MAGIC);
	clk->version = cpu_to_le16(1);
	clk->counter_id = VMCLOCK_COUNTER_X86_TSC;
	clk->clock_status = VMCLOCK_STATUS_UNRELIABLE;

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
				   struct vmclock_abi *clk)
{
	u64 offset, ratio;

	if (!vc->host_valid || !kvm_vmclock_guest_tsc(kvm, &offset, &ratio) ||
	    kvm_vmclock_convert(&vc->host, offset, ratio,
				kvm_caps.tsc_scaling_ratio_frac_bits, clk))
		kvm_vmclock_unreliable(vc, clk);

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

static int __kvm_vmclock_write(struct kvm *kvm, struct kvm_vmclock_state *vc,
			       const struct vmclock_abi *clk)
{
	struct gfn_to_hva_cache *ghc = &vc->ghc;
	__le32 raw;
	u32 odd;
	u64 old;
	int r, w;

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

	/* Pairs with the reader's rmb() after reading seq_count. */
	smp_wmb();
	w = kvm_vmclock_write_fields(kvm, ghc, clk);
	/* Pairs with the reader's rmb() before re-reading seq_count. */
	smp_wmb();

	/* Make seq_count even again even if the write failed. */
	old = odd;
	r = kvm_cmpxchg_guest_offset_cached(kvm, ghc, VMCLOCK_SEQ_OFFSET, &old,
					    (u32)(odd + 1), sizeof(u32));
	return r ? r : w;
}

/*
 * Write @clk to guest memory.  If another writer touched seq_count while the
 * fields were written, the result may be a mix of both: write again.
 */
static int kvm_vmclock_write(struct kvm *kvm, struct kvm_vmclock_state *vc,
			     const struct vmclock_abi *clk)
{
	int i, r;

	for (i = 0; i < VMCLOCK_WRITE_RETRIES; i++) {
		r = __kvm_vmclock_write(kvm, vc, clk);
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
	struct vmclock_abi clk;
	u64 gen;

	mutex_lock(&vc->lock);
	if (!vc->mode)
		goto out;

	kvm_vmclock_guest_view(kvm, vc, &clk);

	/* A memslot update may have put different memory behind the gpa. */
	gen = kvm_memslots(kvm)->generation;
	if (vc->written_valid && vc->written_gen == gen &&
	    !memcmp(&clk, &vc->written, sizeof(clk)))
		goto out;

	/*
	 * On failure (memslot gone, page not writable, a VMM that keeps
	 * seq_count busy) give up until the next trigger, e.g. the memslot
	 * update that makes the memory usable again.
	 */
	vc->written_valid = false;
	if (kvm_vmclock_write(kvm, vc, &clk))
		goto out;

	vc->written = clk;
	vc->written_gen = gen;
	vc->written_valid = true;
	vc->clear_tail = false;
	kvm->stat.vmclock_updates++;
out:
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

	/* Exactly one mode. */
	if (cfg->flags != KVM_VMCLOCK_F_USERSPACE)
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
	vc->written_valid = false;
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
}

void kvm_vmclock_destroy_vm(struct kvm *kvm)
{
	mutex_destroy(&kvm->arch.vmclock.lock);
}

#ifdef CONFIG_KVM_VMCLOCK_KUNIT_TEST
#include "vmclock_test.c"
#endif
