// SPDX-License-Identifier: GPL-2.0-only
/*
 * Check the vmclock ABI (include/uapi/linux/vmclock-abi.h) end to end on x86:
 * the host describes its own TSC -> CLOCK_TAI relation in a guest page, the
 * guest reads it with the same arithmetic as drivers/ptp/ptp_vmclock.c, and
 * the host verifies that the guest got the host's CLOCK_TAI, or the error a
 * guest driver must report for an unusable clock.
 */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "vmclock.h"

/* Spacing of the two host samples the guest's line is fitted through. */
#define LINE_BASELINE_US	300000

/* Slack for line-fit error when checking against the vcpu_run() bracket. */
#define BRACKET_TOLERANCE_NS	20000

/* Allowed difference from the host's own line at the same TSC. */
#define LINE_TOLERANCE_NS	2000

/* tai_offset_sec is UTC - TAI, which has been -37 s since 2017. */
#define UTC_TAI_OFFSET_SEC	(-37)

struct test_case {
	const char *name;
	/* Turns the TAI vmclock built by the host into this case's variant. */
	void (*setup)(struct vmclock_abi *clk);
	enum vmclock_read_status expect;
};

/* The same instant as the TAI vmclock, expressed as UTC plus an offset. */
static void setup_utc_with_tai_offset(struct vmclock_abi *clk)
{
	clk->time_type = VMCLOCK_TIME_UTC;
	clk->flags |= VMCLOCK_FLAG_TAI_OFFSET_VALID;
	clk->tai_offset_sec = (u16)UTC_TAI_OFFSET_SEC;
	clk->time_sec += UTC_TAI_OFFSET_SEC;
}

static void setup_unreliable(struct vmclock_abi *clk)
{
	clk->clock_status = VMCLOCK_STATUS_UNRELIABLE;
}

/* The offset is there but not flagged valid, so the guest must not use it. */
static void setup_utc_without_tai_offset(struct vmclock_abi *clk)
{
	setup_utc_with_tai_offset(clk);
	clk->flags &= ~VMCLOCK_FLAG_TAI_OFFSET_VALID;
}

/* As if the hypervisor died in the middle of an update. */
static void setup_update_never_ends(struct vmclock_abi *clk)
{
	clk->seq_count |= 1;
}

static const struct test_case test_cases[] = {
	{ "TAI", NULL, VMCLOCK_READ_OK },
	{ "UTC with valid TAI offset", setup_utc_with_tai_offset, VMCLOCK_READ_OK },
	{ "UNRELIABLE clock", setup_unreliable, VMCLOCK_READ_UNRELIABLE },
	{ "UTC without TAI offset", setup_utc_without_tai_offset, VMCLOCK_READ_NO_TAI },
	{ "odd seq_count", setup_update_never_ends, VMCLOCK_READ_TIMED_OUT },
};

static void guest_code(struct vmclock_abi *clk)
{
	enum vmclock_read_status status;
	struct vmclock_time t = {};
	int i;

	for (i = 0; i < ARRAY_SIZE(test_cases); i++) {
		status = vmclock_read_tai(clk, &t);
		GUEST_SYNC4(status, t.tsc, t.sec, t.nsec);
	}

	GUEST_DONE();
}

static u64 vcpu_tsc_offset(struct kvm_vcpu *vcpu)
{
	u64 offset;

	vcpu_device_attr_get(vcpu, KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_OFFSET,
			     &offset);
	return offset;
}

/*
 * CLOCK_TAI in ns on the line through @a and @b at host TSC @tsc, computed
 * directly rather than through the vmclock fixed-point encoding, so that the
 * comparison also catches precision lost in that encoding.
 */
static u64 host_line_ns(const struct vmclock_sample *a,
			const struct vmclock_sample *b, u64 tsc)
{
	__int128 ns = (__int128)(s64)(tsc - a->tsc) *
		      (s64)(b->tai_ns - a->tai_ns) / (s64)(b->tsc - a->tsc);

	return a->tai_ns + (s64)ns;
}

/*
 * Build the vmclock from two host samples a good distance apart, so that
 * sample error barely affects the period. The vCPU is not running, so the
 * page can be written without the seq_count update protocol. The first
 * sample is handed back for the host's reference line.
 */
static void populate_vmclock(struct vmclock_abi *clk, u64 tsc_offset,
			     const struct test_case *tc,
			     struct vmclock_sample *first)
{
	struct vmclock_sample second;

	vmclock_host_sample(first);
	usleep(LINE_BASELINE_US);
	vmclock_host_sample(&second);

	vmclock_fill_tai_line(clk, first, &second);

	/* The guest reads its own TSC: host TSC + offset, as nothing scales. */
	clk->counter_value += tsc_offset;

	if (tc->setup)
		tc->setup(clk);
}

static void check_guest_time(const struct test_case *tc, struct ucall *uc,
			     u64 tsc_offset, u64 before_ns, u64 after_ns,
			     const struct vmclock_sample *first,
			     const struct vmclock_sample *fresh)
{
	u64 guest_tsc = uc->args[1];
	u64 guest_ns = uc->args[2] * NSEC_PER_SEC + uc->args[3];
	u64 host_ns;
	s64 diff;

	TEST_ASSERT(uc->args[3] < NSEC_PER_SEC,
		    "%s: guest returned %lu ns, not a fraction of a second",
		    tc->name, uc->args[3]);

	/* The guest read the clock while the vCPU was inside vcpu_run(). */
	TEST_ASSERT(guest_ns + BRACKET_TOLERANCE_NS >= before_ns &&
		    guest_ns <= after_ns + BRACKET_TOLERANCE_NS,
		    "%s: guest CLOCK_TAI is %ld ns after entering and %ld ns after leaving vcpu_run() (tolerance %d ns), so the vmclock does not give the host's time",
		    tc->name, (s64)(guest_ns - before_ns),
		    (s64)(guest_ns - after_ns), BRACKET_TOLERANCE_NS);

	/*
	 * Much tighter: at the guest's own TSC reading, translated back into
	 * the host's TSC domain, the guest must agree with a line refitted
	 * from host samples that bracket the guest's read. Any error in the
	 * TSC offset conversion or in the fixed-point encoding shows up here.
	 */
	host_ns = host_line_ns(first, fresh, guest_tsc - tsc_offset);
	diff = guest_ns - host_ns;

	TEST_ASSERT(labs(diff) <= LINE_TOLERANCE_NS,
		    "%s: guest time at TSC %lu is %ld ns off the host's line (limit %d ns)",
		    tc->name, guest_tsc, diff, LINE_TOLERANCE_NS);

	pr_info("%s: guest - host CLOCK_TAI at the same TSC: %ld ns\n",
		tc->name, diff);
}

static void run_test_case(struct kvm_vcpu *vcpu, struct vmclock_abi *clk,
			  const struct test_case *tc)
{
	struct vmclock_sample first, fresh;
	u64 tsc_offset, before_ns, after_ns;
	struct ucall uc;

	tsc_offset = vcpu_tsc_offset(vcpu);
	populate_vmclock(clk, tsc_offset, tc, &first);

	before_ns = vmclock_host_tai_ns();
	vcpu_run(vcpu);
	after_ns = vmclock_host_tai_ns();

	/* Taken after the guest's read, so the reference line brackets it. */
	vmclock_host_sample(&fresh);

	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);

	switch (get_ucall(vcpu, &uc)) {
	case UCALL_SYNC:
		break;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
		break;
	default:
		TEST_FAIL("%s: unexpected ucall %lu", tc->name, uc.cmd);
	}

	TEST_ASSERT(uc.args[0] == tc->expect,
		    "%s: guest vmclock reader returned %s, expected %s",
		    tc->name, vmclock_read_status_name(uc.args[0]),
		    vmclock_read_status_name(tc->expect));

	TEST_ASSERT(vcpu_tsc_offset(vcpu) == tsc_offset,
		    "%s: TSC offset changed while the guest ran, so the vmclock counter no longer matches the guest TSC",
		    tc->name);

	if (tc->expect == VMCLOCK_READ_OK)
		check_guest_time(tc, &uc, tsc_offset, before_ns, after_ns,
				 &first, &fresh);

	ksft_test_result_pass("%s\n", tc->name);
}

int main(void)
{
	struct kvm_vcpu *vcpu;
	struct vmclock_abi *clk;
	struct kvm_vm *vm;
	gva_t clk_gva;
	struct ucall uc;
	int i;

	/*
	 * The host's reference is CLOCK_TAI against the TSC, which is only a
	 * clean line (and cheap to bracket tightly) if timekeeping uses the TSC.
	 */
	TEST_REQUIRE(sys_clocksource_is_based_on_tsc());

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);

	/* Needed to translate between host and guest TSC values. */
	TEST_REQUIRE(!__vcpu_has_device_attr(vcpu, KVM_VCPU_TSC_CTRL,
					     KVM_VCPU_TSC_OFFSET));

	clk_gva = vm_alloc_page(vm);
	clk = addr_gva2hva(vm, clk_gva);
	vcpu_args_set(vcpu, 1, clk_gva);

	ksft_print_header();
	ksft_set_plan(ARRAY_SIZE(test_cases));

	for (i = 0; i < ARRAY_SIZE(test_cases); i++)
		run_test_case(vcpu, clk, &test_cases[i]);

	vcpu_run(vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
	TEST_ASSERT_EQ(get_ucall(vcpu, &uc), UCALL_DONE);

	kvm_vm_free(vm);
	ksft_finished();
}
