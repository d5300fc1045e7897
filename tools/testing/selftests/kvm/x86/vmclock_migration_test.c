// SPDX-License-Identifier: GPL-2.0-only
/*
 * Who owns the vmclock page (include/uapi/linux/vmclock-abi.h), and live
 * migration, with a vmclock in KVM_VMCLOCK_MODE_USERSPACE.
 *
 * While a vmclock is registered, KVM writes every field of the structure
 * except the VMM-owned ones (disruption_marker, vm_generation_counter, and
 * the flags DISRUPTION_SOON, DISRUPTION_IMMINENT and VM_GEN_COUNTER_PRESENT),
 * which it takes from guest memory whenever it finds a seq_count it did not
 * write.  This test proves that:
 *
 *  1. a VMM that writes the page with plain stores while the vCPUs are
 *     paused, as QEMU 10's vmclock device does on incoming migration, is not
 *     lost: KVM's next update keeps its disruption_marker, continues
 *     seq_count past the VMM's, counts one foreign write and is otherwise
 *     exact; a KVM_VMCLOCK_DISRUPTION on top adds exactly one more;
 *  2. a VMM that writes the page while a vCPU runs cannot make KVM_RUN or
 *     the vmclock ioctls hang: KVM makes at most 4 attempts per update and
 *     retries at a limited rate, and once the VMM stops, one update is exact,
 *     with the VMM-owned fields as the page held them;
 *  3. the same for a guest that scribbles over the page from another vCPU;
 *  4. a VM migrated within this process (guest memory, the registration from
 *     KVM_GET_VMCLOCK, a different TSC offset on the destination) shows its
 *     guest, at its very first read, a valid clock that is right for the new
 *     TSC offset, and a disruption_marker it never saw on the source, whether
 *     the VMM bumps it in memory, asks KVM to (KVM_VMCLOCK_DISRUPTION), or
 *     both (then the marker moves by two);
 *  5. registering over a page the VMM prepared (VMCLOCK_MAGIC, version 1)
 *     keeps its marker and generation counter; over garbage, both start at 0.
 *
 * The reference is the host's own TSC -> CLOCK_TAI line; the guest reads the
 * clock with the arithmetic of drivers/ptp/ptp_vmclock.c (vmclock_read_tai()).
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <asm/barrier.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "vmclock.h"

#define NR_TESTS		7
#define NR_VCPUS		2

/* The vmclock lives in a memslot of its own, at the same gpa in every VM. */
#define VMCLOCK_SLOT		10
#define VMCLOCK_GPA		0xc0000000ULL
#define VMCLOCK_GVA		VMCLOCK_GPA
#define VMCLOCK_NPAGES		1
#define VMCLOCK_SIZE		((u32)PAGE_SIZE)

/* The flags whose value KVM takes from guest memory, not from KVM_SET_VMCLOCK_HOST. */
#define VMM_OWNED_FLAGS		(VMCLOCK_FLAG_DISRUPTION_SOON |		\
				 VMCLOCK_FLAG_DISRUPTION_IMMINENT |	\
				 VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT)

/* The clock data every test hands KVM, besides the line itself. */
#define HOST_FLAGS		(VMCLOCK_FLAG_TAI_OFFSET_VALID |	\
				 VMCLOCK_FLAG_PERIOD_ESTERROR_VALID |	\
				 VMCLOCK_FLAG_PERIOD_MAXERROR_VALID |	\
				 VMCLOCK_FLAG_TIME_ESTERROR_VALID |	\
				 VMCLOCK_FLAG_TIME_MAXERROR_VALID)
#define UTC_TAI_OFFSET_SEC	(-37)
#define TIME_ESTERROR_NS	1000
#define TIME_MAXERROR_NS	50000

/* Spacing of the two host samples a line is fitted through. */
#define LINE_BASELINE_US	300000

/*
 * Without TSC scaling KVM only adds the TSC offset, so the guest computes
 * what the host computes from its own line, up to the final rounding.
 */
#define EXACT_TOLERANCE_NS	1

/* Slack for line-fit error when checking against the vcpu_run() bracket. */
#define BRACKET_TOLERANCE_NS	20000

/* Guest time against host CLOCK_TAI at the same TSC (plus sampling error). */
#define HOST_TAI_TOLERANCE_NS	2000

/* KVM's compare-and-exchange tries on seq_count per update, at most. */
#define MAX_TRIES_PER_UPDATE	4

/* KVM retries a contended update after a backoff of 1 ms or more. */
#define MIN_RETRY_BACKOFF_NS	(1000 * 1000ULL)

/* How long the foreign writers scribble, and then the quiet phase. */
#define SCRIBBLE_US		1000000
#define QUIET_US		300000
#define TRIGGER_INTERVAL_US	1000

/* Every sub-test must be over by then; a hang in KVM_RUN or an ioctl fails. */
#define SUBTEST_TIMEOUT_SEC	90

/* The destination's guest TSC is this far ahead of the source's. */
#define MIGRATION_TSC_SKEW_SEC	10

/* seq_count left (odd) by the foreign writers when they stop. */
#define VMM_LAST_SEQ		0x7654321fU
#define HOSTILE_LAST_SEQ	0xdeadbeefU

/* A page prepared by the VMM (sub-test 5). */
#define PREFILL_MARKER		0x1122334455667788ULL
#define PREFILL_GENERATION	0x0000000012345678ULL
#define PREFILL_SEQ		0x1236U

enum guest_op {
	OP_SYNC,		/* Only report back. */
	OP_READ,		/* Read the vmclock once. */
	OP_READ_LOOP,		/* Read it until told to stop. */
	OP_SCRIBBLE_LOOP,	/* Write garbage over it until told to stop. */
};

static u32 guest_op[NR_VCPUS];
static bool guest_stop[NR_VCPUS];

/* The last disruption_marker the guest read: guest memory, so it migrates. */
static u64 guest_seen_marker;

/*
 * One consistent reading of the time and of the disruption marker: both from
 * the same even seq_count.  An odd seq_count that never settles fails in
 * vmclock_read_tai() already.
 */
static u64 guest_read_marked(struct vmclock_abi *clk, struct vmclock_time *t,
			     u64 *marker)
{
	enum vmclock_read_status status;
	u32 seq;
	int i;

	for (i = 0; i < VMCLOCK_READ_MAX_TRIES; i++) {
		seq = READ_ONCE(clk->seq_count);
		/* Pairs with KVM's write barrier after making seq_count odd. */
		smp_rmb();
		*marker = READ_ONCE(clk->disruption_marker);
		status = vmclock_read_tai(clk, t);
		if (status == VMCLOCK_READ_TIMED_OUT)
			return status;
		/* Pairs with KVM's write barrier before making it even. */
		smp_rmb();
		if (!(seq & 1) && READ_ONCE(clk->seq_count) == seq)
			return status;
	}

	return VMCLOCK_READ_TIMED_OUT;
}

static void guest_read(struct vmclock_abi *clk)
{
	u64 status, marker = 0, prev = READ_ONCE(guest_seen_marker);
	struct vmclock_time t = {};

	status = guest_read_marked(clk, &t, &marker);
	if (status != VMCLOCK_READ_TIMED_OUT)
		WRITE_ONCE(guest_seen_marker, marker);
	GUEST_SYNC6(status, t.tsc, t.sec, t.nsec, marker, prev);
}

/* Read while others write the page: nothing to check, only progress. */
static void guest_read_loop(struct vmclock_abi *clk, u32 id)
{
	u64 reads[VMCLOCK_READ_TIMED_OUT + 1] = {};
	struct vmclock_time t;

	while (!READ_ONCE(guest_stop[id]))
		reads[vmclock_read_tai(clk, &t)]++;
	GUEST_SYNC4(reads[VMCLOCK_READ_OK], reads[VMCLOCK_READ_UNRELIABLE],
		    reads[VMCLOCK_READ_NO_TAI], reads[VMCLOCK_READ_TIMED_OUT]);
}

/*
 * Garbage over every field, magic and size included, behind an odd
 * seq_count that is made even every other round.  The guest and the host
 * thread of sub-test 2 both use it.
 */
static void scribble(struct vmclock_abi *clk, u64 round)
{
	u64 *words = (u64 *)clk;
	u64 garbage = 0x9e3779b97f4a7c15ULL * (round + 1);
	u32 seq = 0x80000001U + 2 * (u32)round;
	int i;

	WRITE_ONCE(clk->seq_count, seq);
	WRITE_ONCE(clk->magic, (u32)garbage);
	WRITE_ONCE(clk->size, (u32)(garbage >> 32));
	WRITE_ONCE(clk->version, (u16)garbage);
	WRITE_ONCE(clk->counter_id, (u8)(garbage >> 16));
	WRITE_ONCE(clk->time_type, (u8)(garbage >> 24));
	for (i = offsetof(struct vmclock_abi, disruption_marker) / sizeof(u64);
	     i < sizeof(*clk) / sizeof(u64); i++)
		WRITE_ONCE(words[i], garbage ^ (0x0101010101010101ULL * i));
	if (round & 1)
		WRITE_ONCE(clk->seq_count, seq + 1);
}

static void guest_scribble_loop(struct vmclock_abi *clk, u32 id)
{
	u64 rounds = 0;

	while (!READ_ONCE(guest_stop[id]))
		scribble(clk, rounds++);
	WRITE_ONCE(clk->seq_count, HOSTILE_LAST_SEQ);
	GUEST_SYNC1(rounds);
}

static void guest_code(struct vmclock_abi *clk, u32 id)
{
	for (;;) {
		switch (READ_ONCE(guest_op[id])) {
		case OP_READ:
			guest_read(clk);
			break;
		case OP_READ_LOOP:
			guest_read_loop(clk, id);
			break;
		case OP_SCRIBBLE_LOOP:
			guest_scribble_loop(clk, id);
			break;
		default:
			GUEST_SYNC1(0);
			break;
		}
	}
}

/* Host side. */

static const char *current_test;

/* The host's TSC -> CLOCK_TAI line, measured once at start. */
static struct vmclock_abi host_line;

struct guest_reading {
	u64 status;
	u64 tsc;
	u64 ns;
	u64 marker;
	u64 prev_marker;	/* What the guest had read before */
};

/* The VMM-owned fields, as KVM must publish them. */
struct vmm_fields {
	u64 marker;
	u64 generation;
	u64 flags;
};

static void watchdog_expired(int sig)
{
	TEST_FAIL("%s: still running after %d s: a KVM_RUN or vmclock ioctl does not return",
		  current_test, SUBTEST_TIMEOUT_SEC);
}

static void start_test(const char *name)
{
	current_test = name;
	alarm(SUBTEST_TIMEOUT_SEC);
}

static void end_test(void)
{
	alarm(0);
	ksft_test_result_pass("%s\n", current_test);
}

static struct vmclock_abi *vmclock_hva(struct kvm_vm *vm)
{
	return addr_gpa2hva(vm, VMCLOCK_GPA);
}

static void set_guest_stop(struct kvm_vm *vm, u32 id, bool stop)
{
	bool *p = addr_gva2hva(vm, (gva_t)&guest_stop[id]);

	WRITE_ONCE(*p, stop);
}

static void check_ucall(struct kvm_vcpu *vcpu, struct ucall *uc)
{
	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);

	switch (get_ucall(vcpu, uc)) {
	case UCALL_SYNC:
		break;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(*uc);
		break;
	default:
		TEST_FAIL("vCPU %u: unexpected ucall %lu", vcpu->id, uc->cmd);
	}
}

static void set_guest_op(struct kvm_vcpu *vcpu, u32 op)
{
	u32 *p = addr_gva2hva(vcpu->vm, (gva_t)&guest_op[vcpu->id]);

	WRITE_ONCE(*p, op);
}

/* Run @vcpu until its guest reports back, and return that report. */
static void run_op(struct kvm_vcpu *vcpu, u32 op, struct ucall *uc)
{
	set_guest_op(vcpu, op);
	vcpu_run(vcpu);
	check_ucall(vcpu, uc);
}

/*
 * A VM whose vCPUs run guest_code() on the vmclock page, which is still
 * zero.  With @run, each vCPU enters the guest once, to settle KVM's own
 * requests of its creation.
 */
static struct kvm_vm *create_vm(struct kvm_vcpu **vcpus, int nr_vcpus,
				bool run)
{
	struct kvm_vm *vm;
	struct ucall uc;
	int i;

	vm = vm_create_with_vcpus(nr_vcpus, guest_code, vcpus);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, VMCLOCK_GPA,
				    VMCLOCK_SLOT, VMCLOCK_NPAGES, 0);
	virt_map(vm, VMCLOCK_GVA, VMCLOCK_GPA, VMCLOCK_NPAGES);

	for (i = 0; i < nr_vcpus; i++)
		vcpu_args_set(vcpus[i], 2, VMCLOCK_GVA, i);

	for (i = 0; run && i < nr_vcpus; i++)
		run_op(vcpus[i], OP_SYNC, &uc);

	return vm;
}

static void guest_read_clock(struct kvm_vcpu *vcpu, struct guest_reading *r)
{
	struct ucall uc;

	run_op(vcpu, OP_READ, &uc);

	r->status = uc.args[0];
	r->tsc = uc.args[1];
	TEST_ASSERT(r->status != VMCLOCK_READ_OK || uc.args[3] < NSEC_PER_SEC,
		    "%s: guest returned %lu ns, not a fraction of a second",
		    current_test, uc.args[3]);
	r->ns = uc.args[2] * NSEC_PER_SEC + uc.args[3];
	r->marker = uc.args[4];
	r->prev_marker = uc.args[5];
}

static u64 tsc_offset(struct kvm_vcpu *vcpu)
{
	u64 offset;

	vcpu_device_attr_get(vcpu, KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_OFFSET,
			     &offset);
	return offset;
}

static void set_tsc_offset(struct kvm_vcpu *vcpu, u64 offset)
{
	vcpu_device_attr_set(vcpu, KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_OFFSET,
			     &offset);
}

static void register_vmclock(struct kvm_vm *vm)
{
	struct kvm_vmclock cfg = {
		.gpa = VMCLOCK_GPA,
		.size = VMCLOCK_SIZE,
		.mode = KVM_VMCLOCK_MODE_USERSPACE,
	};
	int r = __vm_ioctl(vm, KVM_SET_VMCLOCK, &cfg);

	TEST_ASSERT(!r,
		    "%s: KVM_SET_VMCLOCK(gpa 0x%llx, size %u, userspace mode) failed, errno %d (%s)",
		    current_test, VMCLOCK_GPA, VMCLOCK_SIZE, errno,
		    strerror(errno));
}

static void get_vmclock(struct kvm_vm *vm, struct kvm_vmclock *cfg)
{
	memset(cfg, 0xaa, sizeof(*cfg));
	vm_ioctl(vm, KVM_GET_VMCLOCK, cfg);
}

static void signal_disruption(struct kvm_vm *vm, u32 flags)
{
	struct kvm_vmclock_disruption d = { .flags = flags };
	int r = __vm_ioctl(vm, KVM_VMCLOCK_DISRUPTION, &d);

	TEST_ASSERT(!r, "%s: KVM_VMCLOCK_DISRUPTION(flags 0x%x) failed, errno %d (%s)",
		    current_test, flags, errno, strerror(errno));
}

struct vmclock_stats {
	u64 updates;
	u64 attempts;
	u64 foreign;
	u64 failures;
};

static void get_stats(struct kvm_vm *vm, struct vmclock_stats *s)
{
	s->updates = vm_get_stat(vm, vmclock_updates);
	s->attempts = vm_get_stat(vm, vmclock_write_attempts);
	s->foreign = vm_get_stat(vm, vmclock_foreign_writes);
	s->failures = vm_get_stat(vm, vmclock_write_failures);
}

/* Stats now minus @before. */
static void stats_since(struct kvm_vm *vm, const struct vmclock_stats *before,
			struct vmclock_stats *d)
{
	get_stats(vm, d);
	d->updates -= before->updates;
	d->attempts -= before->attempts;
	d->foreign -= before->foreign;
	d->failures -= before->failures;
}

static void assert_stat(const char *what, const char *stat, u64 delta,
			u64 expect)
{
	TEST_ASSERT(delta == expect, "%s: %s went up by %lu, expected %lu",
		    what, stat, delta, expect);
}

/*
 * CLOCK_TAI in ns on @clk at counter value @tsc, with the arithmetic of
 * vmclock_read_tai() (and so of the guest driver).
 */
static u64 clk_tai_ns(const struct vmclock_abi *clk, u64 tsc)
{
	u64 sec, nsec;

	vmclock_time_at(clk, tsc, &sec, &nsec);
	return sec * NSEC_PER_SEC + nsec;
}

/* The host's line through two samples, as a host-domain vmclock. */
static void measure_line(struct vmclock_abi *line)
{
	struct vmclock_sample a, b;

	vmclock_host_sample(&a);
	usleep(LINE_BASELINE_US);
	vmclock_host_sample(&b);
	vmclock_fill_tai_line(line, &a, &b);
	pr_info("host line: samples %lu us apart, widths %lu and %lu ns\n",
		(b.tai_ns - a.tai_ns) / 1000, a.width_ns, b.width_ns);
}

/* @line with every other field KVM relays from KVM_SET_VMCLOCK_HOST set. */
static void make_host_clock(struct vmclock_abi *host,
			    const struct vmclock_abi *line)
{
	*host = *line;
	host->flags = HOST_FLAGS;
	host->tai_offset_sec = (u16)UTC_TAI_OFFSET_SEC;
	host->leap_second_smearing_hint = VMCLOCK_SMEARING_NOON_LINEAR;
	host->counter_period_esterror_rate_frac_sec =
		host->counter_period_frac_sec >> 20;
	host->counter_period_maxerror_rate_frac_sec =
		host->counter_period_frac_sec >> 16;
	host->time_esterror_nanosec = TIME_ESTERROR_NS;
	host->time_maxerror_nanosec = TIME_MAXERROR_NS;
}

/*
 * The fields of struct vmclock_abi in order.  They follow each other without
 * holes, so each one's length is the distance to the next.
 */
struct field_desc {
	const char *name;
	size_t offset;
};

#define FIELD(f) { #f, offsetof(struct vmclock_abi, f) }

static const struct field_desc vmclock_fields[] = {
	FIELD(magic), FIELD(size), FIELD(version), FIELD(counter_id),
	FIELD(time_type), FIELD(seq_count), FIELD(disruption_marker),
	FIELD(flags), FIELD(pad), FIELD(clock_status),
	FIELD(leap_second_smearing_hint), FIELD(tai_offset_sec),
	FIELD(leap_indicator), FIELD(counter_period_shift),
	FIELD(counter_value), FIELD(counter_period_frac_sec),
	FIELD(counter_period_esterror_rate_frac_sec),
	FIELD(counter_period_maxerror_rate_frac_sec), FIELD(time_sec),
	FIELD(time_frac_sec), FIELD(time_esterror_nanosec),
	FIELD(time_maxerror_nanosec), FIELD(vm_generation_counter),
};

static size_t field_len(const struct field_desc *f)
{
	size_t end = sizeof(struct vmclock_abi);

	if (f < &vmclock_fields[ARRAY_SIZE(vmclock_fields) - 1])
		end = f[1].offset;
	return end - f->offset;
}

static u64 field_value(const struct vmclock_abi *clk,
		       const struct field_desc *f)
{
	u64 v = 0;

	memcpy(&v, (const void *)clk + f->offset, field_len(f));
	return v;
}

/* Compare field by field, for a message that says which one is wrong. */
static void assert_clock_equal(const char *what, const struct vmclock_abi *got,
			       const struct vmclock_abi *want)
{
	const struct field_desc *f;
	int i;

	for (i = 0; i < ARRAY_SIZE(vmclock_fields); i++) {
		f = &vmclock_fields[i];
		TEST_ASSERT(field_value(got, f) == field_value(want, f),
			    "%s: %s in guest memory is 0x%lx, expected 0x%lx",
			    what, f->name, field_value(got, f),
			    field_value(want, f));
	}
	TEST_ASSERT(!memcmp(got, want, sizeof(*got)),
		    "%s: guest vmclock differs from the expected one", what);
}

/*
 * seq_count after @writes updates by KVM over a page that held @found: KVM
 * continues from the value it finds, the first odd value being found + 1
 * (found even) or found + 2 (found odd).
 */
static u32 seq_after(u32 found, u64 writes)
{
	u32 seq = (found & 1) ? found + 3 : found + 2;

	return seq + 2 * (u32)(writes - 1);
}

static void vmm_fields_of(struct vmm_fields *vmm, const struct vmclock_abi *clk)
{
	vmm->marker = clk->disruption_marker;
	vmm->generation = clk->vm_generation_counter;
	vmm->flags = clk->flags & VMM_OWNED_FLAGS;
}

/*
 * What KVM must publish for @host (host TSC domain) when the guest TSC is
 * the host TSC plus @offset: the header, the clock data as given with
 * counter_value moved into the guest TSC domain (without TSC scaling the
 * period is the host's), and the VMM-owned fields @vmm.
 */
static void assert_published(const char *what, const struct vmclock_abi *clk,
			     const struct vmclock_abi *host, u64 offset,
			     u32 seq, const struct vmm_fields *vmm)
{
	struct vmclock_abi want = *host;

	want.magic = VMCLOCK_MAGIC;
	want.size = VMCLOCK_SIZE;
	want.version = 1;
	want.counter_id = VMCLOCK_COUNTER_X86_TSC;
	want.seq_count = seq;
	want.counter_value = host->counter_value + offset;
	want.disruption_marker = vmm->marker;
	want.vm_generation_counter = vmm->generation;
	want.flags = (host->flags & ~VMM_OWNED_FLAGS) | vmm->flags;
	assert_clock_equal(what, clk, &want);
}

/*
 * The guest's time must be what the host's own description of the clock
 * gives at the guest's TSC translated back into the host TSC domain, and
 * CLOCK_TAI while the guest ran.
 */
static void assert_exact_time(const char *what, const struct guest_reading *r,
			      const struct vmclock_abi *host, u64 offset,
			      u64 before_ns, u64 after_ns)
{
	u64 want = clk_tai_ns(host, r->tsc - offset);
	s64 diff = r->ns - want;

	TEST_ASSERT(r->status == VMCLOCK_READ_OK,
		    "%s: guest vmclock reader returned %s, expected OK",
		    what, vmclock_read_status_name(r->status));
	TEST_ASSERT(diff >= -EXACT_TOLERANCE_NS && diff <= EXACT_TOLERANCE_NS,
		    "%s: guest time at guest TSC %lu (host TSC %lu) is %ld ns off the host's clock (limit %d ns): the TSC offset was not applied exactly",
		    what, r->tsc, r->tsc - offset, diff, EXACT_TOLERANCE_NS);
	TEST_ASSERT(r->ns + BRACKET_TOLERANCE_NS >= before_ns &&
		    r->ns <= after_ns + BRACKET_TOLERANCE_NS,
		    "%s: guest CLOCK_TAI is %ld ns after entering and %ld ns after leaving vcpu_run() (tolerance %d ns)",
		    what, (s64)(r->ns - before_ns), (s64)(r->ns - after_ns),
		    BRACKET_TOLERANCE_NS);
}

static void read_and_check(const char *what, struct kvm_vcpu *vcpu,
			   const struct vmclock_abi *host, u64 offset,
			   struct guest_reading *r)
{
	u64 before, after;

	before = vmclock_host_tai_ns();
	guest_read_clock(vcpu, r);
	after = vmclock_host_tai_ns();
	assert_exact_time(what, r, host, offset, before, after);
}

static void assert_seq_even(const char *what, const struct vmclock_abi *clk)
{
	TEST_ASSERT(!(clk->seq_count & 1),
		    "%s: seq_count is 0x%x, odd, after KVM's update ended",
		    what, clk->seq_count);
}

/* 1: a QEMU-style write while the vCPUs are paused is not lost. */
static void test_vmm_write_paused(void)
{
	struct vmm_fields vmm = {};
	struct vmclock_abi host, *clk;
	struct vmclock_stats before, d;
	struct guest_reading r;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u32 seq, vmm_seq;
	u64 offset;

	start_test("VMM write while paused: marker kept, seq_count continued");
	vm = create_vm(&vcpu, 1, true);
	clk = vmclock_hva(vm);
	offset = tsc_offset(vcpu);
	register_vmclock(vm);
	make_host_clock(&host, &host_line);
	vmclock_set_host(vm, &host);
	read_and_check("paused VMM write: before", vcpu, &host, offset, &r);
	assert_seq_even("paused VMM write: before", clk);
	seq = clk->seq_count;
	assert_published("paused VMM write: before", clk, &host, offset, seq,
			 &vmm);

	/* Incoming migration in QEMU 10: plain stores, vCPUs paused. */
	get_stats(vm, &before);
	vmclock_vmm_mark_disruption(clk);
	vmm_seq = clk->seq_count;
	TEST_ASSERT(vmm_seq == seq + 2 && clk->disruption_marker == 1,
		    "QEMU-style write: seq_count %u -> %u, marker %llu",
		    seq, vmm_seq, clk->disruption_marker);

	/* New clock data from the VMM: KVM publishes it before the vCPU runs. */
	host.time_esterror_nanosec++;
	vmclock_set_host(vm, &host);
	read_and_check("paused VMM write: next update", vcpu, &host, offset, &r);
	TEST_ASSERT(r.marker == 1,
		    "paused VMM write: the guest reads disruption_marker %lu after KVM's update, expected 1: KVM lost the VMM's bump",
		    r.marker);
	vmm.marker = 1;
	assert_published("paused VMM write: next update", clk, &host, offset,
			 seq_after(vmm_seq, 1), &vmm);
	TEST_ASSERT(clk->seq_count > vmm_seq,
		    "paused VMM write: seq_count %u is not past the VMM's %u",
		    clk->seq_count, vmm_seq);
	stats_since(vm, &before, &d);
	assert_stat("paused VMM write", "vmclock_updates", d.updates, 1);
	assert_stat("paused VMM write", "vmclock_foreign_writes", d.foreign, 1);
	pr_info("paused VMM write: seq_count %u (KVM) -> %u (VMM) -> %u (KVM), marker %lu\n",
		seq, vmm_seq, clk->seq_count, r.marker);

	/* A disruption event on top of the VMM's bump adds exactly one. */
	get_stats(vm, &before);
	seq = clk->seq_count;
	signal_disruption(vm, KVM_VMCLOCK_DISRUPTED);
	read_and_check("paused VMM write: DISRUPTED", vcpu, &host, offset, &r);
	TEST_ASSERT(r.marker == 2,
		    "paused VMM write: KVM_VMCLOCK_DISRUPTION after the VMM's bump gives marker %lu, expected 2",
		    r.marker);
	vmm.marker = 2;
	assert_published("paused VMM write: DISRUPTED", clk, &host, offset,
			 seq + 2, &vmm);
	stats_since(vm, &before, &d);
	assert_stat("paused VMM write: DISRUPTED", "vmclock_updates",
		    d.updates, 1);
	assert_stat("paused VMM write: DISRUPTED", "vmclock_foreign_writes",
		    d.foreign, 0);

	kvm_vm_free(vm);
	end_test();
}

struct vcpu_thread {
	struct kvm_vcpu *vcpu;
	struct ucall uc;
	pthread_t tid;
};

static void *vcpu_thread_fn(void *arg)
{
	struct vcpu_thread *t = arg;

	vcpu_run(t->vcpu);
	check_ucall(t->vcpu, &t->uc);
	return NULL;
}

static void start_vcpu(struct vcpu_thread *t, struct kvm_vcpu *vcpu, u32 op)
{
	t->vcpu = vcpu;
	set_guest_stop(vcpu->vm, vcpu->id, false);
	set_guest_op(vcpu, op);
	pthread_create(&t->tid, NULL, vcpu_thread_fn, t);
}

static void stop_vcpu(struct vcpu_thread *t)
{
	set_guest_stop(t->vcpu->vm, t->vcpu->id, true);
	pthread_join(t->tid, NULL);
}

/* Feeds KVM new clock data (a real change each time) until stopped. */
struct trigger_thread {
	struct kvm_vm *vm;
	struct vmclock_abi host;
	bool stop;
	u64 triggers;
	u64 worst_ns;
	pthread_t tid;
};

static void *trigger_thread_fn(void *arg)
{
	struct trigger_thread *t = arg;
	u64 start, ns;

	while (!READ_ONCE(t->stop)) {
		t->host.time_esterror_nanosec = TIME_ESTERROR_NS + 1 +
						(t->triggers & 1);
		start = vmclock_host_tai_ns();
		vmclock_set_host(t->vm, &t->host);
		ns = vmclock_host_tai_ns() - start;
		t->worst_ns = max(t->worst_ns, ns);
		t->triggers++;
		usleep(TRIGGER_INTERVAL_US);
	}
	return NULL;
}

/* The VMM breaking the rule: writes the page while the vCPUs run. */
struct scribble_thread {
	struct vmclock_abi *clk;
	bool stop;
	u64 rounds;
	pthread_t tid;
};

static void *scribble_thread_fn(void *arg)
{
	struct scribble_thread *t = arg;

	while (!READ_ONCE(t->stop))
		scribble(t->clk, t->rounds++);
	WRITE_ONCE(t->clk->seq_count, VMM_LAST_SEQ);
	return NULL;
}

/*
 * KVM may make at most MAX_TRIES_PER_UPDATE tries per update: one update for
 * each trigger, plus the retries of a contended one, at most one per
 * MIN_RETRY_BACKOFF_NS.
 */
static void assert_attempts_bounded(const char *what, u64 attempts,
				    u64 triggers, u64 elapsed_ns)
{
	u64 retries = elapsed_ns / MIN_RETRY_BACKOFF_NS + 1;
	u64 bound = MAX_TRIES_PER_UPDATE * (triggers + retries);

	TEST_ASSERT(attempts <= bound,
		    "%s: %lu seq_count write attempts for %lu triggers in %lu ms; at most %d per update and one retry per ms allow %lu",
		    what, attempts, triggers, elapsed_ns / 1000000,
		    MAX_TRIES_PER_UPDATE, bound);
}

/*
 * After the foreign writer stopped (and the vCPUs too, so that the page
 * holds still), one more trigger must give exact content: the clock data,
 * the VMM-owned fields as the page holds them, seq_count continued.  Each
 * foreign writer leaves an odd seq_count; if KVM already wrote over it (a
 * retry), the page is KVM's and nothing foreign remains.
 */
static void assert_recovers(const char *what, struct kvm_vcpu *vcpu,
			    const struct vmclock_abi *base, u64 offset)
{
	struct vmclock_abi host = *base, *clk = vmclock_hva(vcpu->vm);
	struct vmclock_abi snap = *clk;
	struct vmclock_stats before, d;
	struct kvm_vmclock cfg;
	struct guest_reading r;
	struct vmm_fields vmm;

	get_stats(vcpu->vm, &before);
	host.time_esterror_nanosec = TIME_ESTERROR_NS + 7;
	vmclock_set_host(vcpu->vm, &host);
	read_and_check(what, vcpu, &host, offset, &r);

	/* Header, clock data and seq_count, whatever the VMM-owned fields. */
	vmm_fields_of(&vmm, clk);
	assert_published(what, clk, &host, offset, seq_after(snap.seq_count, 1),
			 &vmm);

	/*
	 * The VMM-owned fields: KVM found a seq_count it had not written, so
	 * it takes them from guest memory (or, if its own retry got through
	 * first, they are what it wrote then, which is what the page holds).
	 */
	vmm_fields_of(&vmm, &snap);
	TEST_ASSERT(clk->disruption_marker == vmm.marker &&
		    clk->vm_generation_counter == vmm.generation &&
		    (clk->flags & VMM_OWNED_FLAGS) == vmm.flags &&
		    r.marker == vmm.marker,
		    "%s: KVM published marker 0x%llx (guest read 0x%lx), generation 0x%llx, VMM flags 0x%llx over a page it had not written (seq_count 0x%x, magic 0x%x, version %u) that held 0x%lx, 0x%lx, 0x%lx: the VMM-owned fields must be taken from guest memory",
		    what, clk->disruption_marker, r.marker,
		    clk->vm_generation_counter, clk->flags & VMM_OWNED_FLAGS,
		    snap.seq_count, snap.magic, snap.version, vmm.marker,
		    vmm.generation, vmm.flags);
	stats_since(vcpu->vm, &before, &d);
	assert_stat(what, "vmclock_updates", d.updates, 1);
	assert_stat(what, "vmclock_foreign_writes", d.foreign,
		    snap.seq_count & 1);
	assert_stat(what, "vmclock_write_failures", d.failures, 0);
	get_vmclock(vcpu->vm, &cfg);
	TEST_ASSERT(!(cfg.status & KVM_VMCLOCK_STATUS_STALLED),
		    "%s: KVM_GET_VMCLOCK reports STALLED (status 0x%x) after a successful update",
		    what, cfg.status);
	pr_info("%s: page held seq_count 0x%x, magic 0x%x; KVM's update: seq_count 0x%x, magic 0x%x, size %u, marker 0x%llx\n",
		what, snap.seq_count, snap.magic, clk->seq_count, clk->magic,
		clk->size, clk->disruption_marker);
}

static void report_scribble(const char *what, const struct vmclock_stats *d,
			    u64 triggers, u64 rounds, const struct ucall *reader)
{
	pr_info("%s: %lu triggers, %lu scribble rounds: %lu updates, %lu write attempts, %lu foreign writes, %lu failures\n",
		what, triggers, rounds, d->updates, d->attempts, d->foreign,
		d->failures);
	pr_info("%s: guest reads: %lu ok, %lu unreliable, %lu no TAI, %lu timed out\n",
		what, reader->args[0], reader->args[1], reader->args[2],
		reader->args[3]);
}

/* 2: a VMM that writes the page while a vCPU runs. */
static void test_vmm_write_running(void)
{
	struct scribble_thread scribbler = {};
	struct trigger_thread trigger = {};
	struct vmclock_stats before, d;
	struct vcpu_thread reader;
	struct guest_reading r;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u64 offset, start, busy_ns, quiet_ns, busy_attempts;

	start_test("VMM writing while a vCPU runs: bounded, then exact");
	vm = create_vm(&vcpu, 1, true);
	offset = tsc_offset(vcpu);
	register_vmclock(vm);
	make_host_clock(&trigger.host, &host_line);
	vmclock_set_host(vm, &trigger.host);
	read_and_check("running VMM write: before", vcpu, &trigger.host, offset,
		       &r);

	get_stats(vm, &before);
	start_vcpu(&reader, vcpu, OP_READ_LOOP);
	scribbler.clk = vmclock_hva(vm);
	pthread_create(&scribbler.tid, NULL, scribble_thread_fn, &scribbler);
	trigger.vm = vm;
	start = vmclock_host_tai_ns();
	pthread_create(&trigger.tid, NULL, trigger_thread_fn, &trigger);
	usleep(SCRIBBLE_US);
	WRITE_ONCE(trigger.stop, true);
	pthread_join(trigger.tid, NULL);
	busy_ns = vmclock_host_tai_ns() - start;
	stats_since(vm, &before, &d);
	busy_attempts = d.attempts;
	assert_attempts_bounded("running VMM write: with triggers",
				busy_attempts, trigger.triggers, busy_ns);

	/* No more triggers: only KVM's own retries may try again. */
	start = vmclock_host_tai_ns();
	usleep(QUIET_US);
	WRITE_ONCE(scribbler.stop, true);
	pthread_join(scribbler.tid, NULL);
	quiet_ns = vmclock_host_tai_ns() - start;
	stats_since(vm, &before, &d);
	assert_attempts_bounded("running VMM write: no triggers",
				d.attempts - busy_attempts, 0, quiet_ns);

	stop_vcpu(&reader);
	report_scribble("running VMM write", &d, trigger.triggers,
			scribbler.rounds, &reader.uc);
	pr_info("running VMM write: %lu attempts in %lu ms with triggers, %lu in %lu ms without; slowest KVM_SET_VMCLOCK_HOST %lu us\n",
		busy_attempts, busy_ns / 1000000, d.attempts - busy_attempts,
		quiet_ns / 1000000, trigger.worst_ns / 1000);
	TEST_ASSERT(reader.uc.args[0] + reader.uc.args[1] + reader.uc.args[2] +
		    reader.uc.args[3] > 0,
		    "running VMM write: the reading vCPU made no progress");

	assert_recovers("running VMM write: after", vcpu, &trigger.host, offset);

	kvm_vm_free(vm);
	end_test();
}

/* 3: a guest that scribbles over the page from another vCPU. */
static void test_hostile_guest(void)
{
	struct vcpu_thread reader, hostile;
	struct trigger_thread trigger = {};
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct vmclock_stats before, d;
	struct guest_reading r;
	struct kvm_vm *vm;
	u64 offset, start, elapsed;

	start_test("hostile guest on another vCPU: bounded, then exact");
	vm = create_vm(vcpus, NR_VCPUS, true);
	offset = tsc_offset(vcpus[0]);
	set_tsc_offset(vcpus[0], offset);
	set_tsc_offset(vcpus[1], offset);
	register_vmclock(vm);
	make_host_clock(&trigger.host, &host_line);
	vmclock_set_host(vm, &trigger.host);
	read_and_check("hostile guest: before", vcpus[0], &trigger.host, offset,
		       &r);

	get_stats(vm, &before);
	start_vcpu(&reader, vcpus[0], OP_READ_LOOP);
	start_vcpu(&hostile, vcpus[1], OP_SCRIBBLE_LOOP);
	trigger.vm = vm;
	start = vmclock_host_tai_ns();
	pthread_create(&trigger.tid, NULL, trigger_thread_fn, &trigger);
	usleep(SCRIBBLE_US);
	WRITE_ONCE(trigger.stop, true);
	pthread_join(trigger.tid, NULL);
	stop_vcpu(&hostile);
	elapsed = vmclock_host_tai_ns() - start;
	stop_vcpu(&reader);
	stats_since(vm, &before, &d);

	report_scribble("hostile guest", &d, trigger.triggers,
			hostile.uc.args[0], &reader.uc);
	pr_info("hostile guest: slowest KVM_SET_VMCLOCK_HOST %lu us\n",
		trigger.worst_ns / 1000);
	assert_attempts_bounded("hostile guest", d.attempts, trigger.triggers,
				vmclock_host_tai_ns() - start);
	TEST_ASSERT(hostile.uc.args[0] > 0,
		    "hostile guest: vCPU 1 never ran its scribble loop");
	TEST_ASSERT(reader.uc.args[0] + reader.uc.args[1] + reader.uc.args[2] +
		    reader.uc.args[3] > 0,
		    "hostile guest: the reading vCPU made no progress in %lu ms",
		    elapsed / 1000000);

	assert_recovers("hostile guest: after", vcpus[0], &trigger.host, offset);

	kvm_vm_free(vm);
	end_test();
}

enum {
	MIGRATE_VMM_BUMP = BIT(0),	/* QEMU-style write on the destination */
	MIGRATE_DISRUPTION = BIT(1),	/* KVM_VMCLOCK_DISRUPTION(DISRUPTED) */
};

/* What the source leaves behind for the destination. */
struct migration_state {
	struct kvm_vmclock cfg;
	u8 page[PAGE_SIZE];
	u64 guest_seen_marker;
	u64 tsc_offset;
	u64 guest_tsc;
	u64 last_marker;
};

/* The source: a guest that reads a vmclock with a nonzero marker. */
static void run_source(struct migration_state *s)
{
	struct vmclock_abi host, *clk;
	struct vmm_fields vmm = {};
	struct guest_reading r;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	int i;

	vm = create_vm(&vcpu, 1, true);
	clk = vmclock_hva(vm);
	s->tsc_offset = tsc_offset(vcpu);
	register_vmclock(vm);
	make_host_clock(&host, &host_line);
	vmclock_set_host(vm, &host);
	/* Earlier migrations: three events, each one increment. */
	for (i = 0; i < 3; i++)
		signal_disruption(vm, KVM_VMCLOCK_DISRUPTED);
	read_and_check("migration: source", vcpu, &host, s->tsc_offset, &r);
	read_and_check("migration: source, again", vcpu, &host, s->tsc_offset,
		       &r);
	TEST_ASSERT(r.marker == 3 && r.prev_marker == 3,
		    "migration: source guest read marker %lu (before: %lu), expected 3",
		    r.marker, r.prev_marker);
	vmm.marker = 3;
	assert_published("migration: source", clk, &host, s->tsc_offset,
			 clk->seq_count, &vmm);
	assert_seq_even("migration: source", clk);
	s->last_marker = r.marker;

	/* Save: the vCPU is stopped (out of KVM_RUN). */
	get_vmclock(vm, &s->cfg);
	TEST_ASSERT(s->cfg.gpa == VMCLOCK_GPA && s->cfg.size == VMCLOCK_SIZE &&
		    s->cfg.mode == KVM_VMCLOCK_MODE_USERSPACE &&
		    !s->cfg.flags && s->cfg.notify_fd == -1,
		    "migration: KVM_GET_VMCLOCK on the source returned gpa 0x%llx size %u mode %u flags 0x%x notify_fd %d",
		    s->cfg.gpa, s->cfg.size, s->cfg.mode, s->cfg.flags,
		    s->cfg.notify_fd);
	TEST_ASSERT(s->cfg.guest_tsc_khz,
		    "migration: KVM_GET_VMCLOCK on the source reports guest_tsc_khz 0");
	memcpy(s->page, clk, PAGE_SIZE);
	sync_global_from_guest(vm, guest_seen_marker);
	s->guest_seen_marker = guest_seen_marker;
	s->guest_tsc = vcpu_get_msr(vcpu, MSR_IA32_TSC);

	kvm_vm_free(vm);
}

/* 4: the destination of a live migration sees the disruption, and exact time. */
static void test_migration(u32 how, const char *name)
{
	struct vmclock_abi line, host, *clk;
	struct vmclock_stats before, d;
	struct migration_state *s;
	struct vmm_fields vmm = {};
	struct kvm_vmclock cfg;
	struct vmclock_sample now;
	struct guest_reading r;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u64 skew, offset, before_ns, after_ns, host_tsc, want;
	int signals = 0, ret;
	u32 found;
	s64 diff;

	start_test(name);
	s = calloc(1, sizeof(*s));
	TEST_ASSERT(s, "migration: out of memory");
	run_source(s);

	/* The destination: same layout, guest TSC MIGRATION_TSC_SKEW_SEC ahead. */
	vm = create_vm(&vcpu, 1, false);
	clk = vmclock_hva(vm);
	skew = (u64)s->cfg.guest_tsc_khz * 1000 * MIGRATION_TSC_SKEW_SEC;
	offset = s->tsc_offset + skew;
	set_tsc_offset(vcpu, offset);
	memcpy(clk, s->page, PAGE_SIZE);
	guest_seen_marker = s->guest_seen_marker;
	sync_global_to_guest(vm, guest_seen_marker);

	get_stats(vm, &before);
	if ((how & MIGRATE_VMM_BUMP) && (how & MIGRATE_DISRUPTION)) {
		/* The VMM's device state loaded before KVM_SET_VMCLOCK. */
		vmclock_vmm_mark_disruption(clk);
		signals++;
	}
	ret = __vm_ioctl(vm, KVM_SET_VMCLOCK, &s->cfg);
	TEST_ASSERT(!ret,
		    "migration: KVM_SET_VMCLOCK on the destination with the source's KVM_GET_VMCLOCK output failed, errno %d (%s)",
		    errno, strerror(errno));
	if ((how & MIGRATE_VMM_BUMP) && !(how & MIGRATE_DISRUPTION)) {
		/* The VMM's device state loaded after KVM_SET_VMCLOCK. */
		vmclock_vmm_mark_disruption(clk);
		signals++;
	}

	/* The destination host's own clock. */
	measure_line(&line);
	make_host_clock(&host, &line);
	vmclock_set_host(vm, &host);
	if (how & MIGRATE_DISRUPTION) {
		signal_disruption(vm, KVM_VMCLOCK_DISRUPTED);
		signals++;
	}
	found = clk->seq_count;

	/* The guest's first read on the destination. */
	before_ns = vmclock_host_tai_ns();
	guest_read_clock(vcpu, &r);
	after_ns = vmclock_host_tai_ns();
	vmclock_host_sample(&now);

	TEST_ASSERT(r.status == VMCLOCK_READ_OK,
		    "%s: the guest's first read on the destination returned %s, expected a valid clock",
		    name, vmclock_read_status_name(r.status));
	TEST_ASSERT(r.prev_marker == s->last_marker,
		    "%s: the guest's memory says it last saw marker %lu, the source's guest read %lu",
		    name, r.prev_marker, s->last_marker);
	TEST_ASSERT(r.marker == s->last_marker + signals,
		    "%s: the guest reads disruption_marker %lu on the destination, %lu on the source, expected %lu (%d signals)",
		    name, r.marker, s->last_marker, s->last_marker + signals,
		    signals);
	TEST_ASSERT(r.marker > r.prev_marker,
		    "%s: the guest cannot tell it was migrated: marker %lu, %lu before",
		    name, r.marker, r.prev_marker);
	assert_exact_time(name, &r, &host, offset, before_ns, after_ns);

	/*
	 * Host CLOCK_TAI at the host TSC the guest read, measured: a fresh
	 * sample taken just after, moved back along the line by the few
	 * cycles in between.  With the source's TSC offset instead, the guest
	 * would be MIGRATION_TSC_SKEW_SEC off.
	 */
	host_tsc = r.tsc - offset;
	want = now.tai_ns - (clk_tai_ns(&host, now.tsc) - clk_tai_ns(&host, host_tsc));
	diff = r.ns - want;
	TEST_ASSERT(diff >= -(s64)(HOST_TAI_TOLERANCE_NS + now.width_ns) &&
		    diff <= (s64)(HOST_TAI_TOLERANCE_NS + now.width_ns),
		    "%s: guest time is %ld ns off host CLOCK_TAI at the same TSC (limit %lu ns)",
		    name, diff, HOST_TAI_TOLERANCE_NS + now.width_ns);

	stats_since(vm, &before, &d);
	vmm.marker = r.marker;
	assert_published(name, clk, &host, offset, seq_after(found, d.updates),
			 &vmm);
	TEST_ASSERT(d.updates >= 1,
		    "%s: vmclock_updates did not move, yet the guest read a valid clock",
		    name);

	get_vmclock(vm, &cfg);
	TEST_ASSERT(cfg.gpa == s->cfg.gpa && cfg.size == s->cfg.size &&
		    cfg.mode == s->cfg.mode && cfg.flags == s->cfg.flags &&
		    cfg.guest_tsc_khz == s->cfg.guest_tsc_khz && !cfg.status,
		    "%s: KVM_GET_VMCLOCK on the destination returned gpa 0x%llx size %u mode %u flags 0x%x guest_tsc_khz %u status 0x%x",
		    name, cfg.gpa, cfg.size, cfg.mode, cfg.flags,
		    cfg.guest_tsc_khz, cfg.status);

	pr_info("%s: source guest TSC %lu, destination guest TSC %lu (+%lu s skew); marker %lu -> %lu; %+ld ns from host CLOCK_TAI; seq_count 0x%x -> 0x%x in %lu update(s)\n",
		name, s->guest_tsc, r.tsc, (u64)MIGRATION_TSC_SKEW_SEC,
		s->last_marker, r.marker, diff, found, clk->seq_count, d.updates);

	kvm_vm_free(vm);
	free(s);
	end_test();
}

/*
 * 5: registration over a page the VMM prepared as QEMU's vmclock device does
 * (VMCLOCK_MAGIC, version 1, its marker and generation counter), then over
 * garbage.
 */
static void test_prefilled(void)
{
	struct vmclock_abi host, *clk;
	struct vmm_fields vmm;
	struct guest_reading r;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u64 offset;
	u32 seq;

	start_test("registration over a VMM-prepared page and over garbage");
	make_host_clock(&host, &host_line);

	vm = create_vm(&vcpu, 1, true);
	clk = vmclock_hva(vm);
	offset = tsc_offset(vcpu);
	memset(clk, 0, PAGE_SIZE);
	clk->magic = VMCLOCK_MAGIC;
	clk->size = VMCLOCK_SIZE;
	clk->version = 1;
	clk->counter_id = VMCLOCK_COUNTER_INVALID;
	clk->seq_count = PREFILL_SEQ;
	clk->flags = VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT;
	clk->disruption_marker = PREFILL_MARKER;
	clk->vm_generation_counter = PREFILL_GENERATION;
	register_vmclock(vm);

	/* First publish, no clock data yet: unreliable, VMM fields kept. */
	guest_read_clock(vcpu, &r);
	TEST_ASSERT(r.status == VMCLOCK_READ_UNRELIABLE,
		    "prepared page: before any clock data the guest reads %s, expected UNRELIABLE",
		    vmclock_read_status_name(r.status));
	TEST_ASSERT(clk->magic == VMCLOCK_MAGIC && clk->version == 1 &&
		    clk->size == VMCLOCK_SIZE &&
		    clk->counter_id == VMCLOCK_COUNTER_X86_TSC &&
		    clk->clock_status == VMCLOCK_STATUS_UNRELIABLE,
		    "prepared page: first publish has magic 0x%x version %u size %u counter_id %u clock_status %u",
		    clk->magic, clk->version, clk->size, clk->counter_id,
		    clk->clock_status);
	TEST_ASSERT(r.marker == PREFILL_MARKER &&
		    clk->disruption_marker == PREFILL_MARKER &&
		    clk->vm_generation_counter == PREFILL_GENERATION &&
		    (clk->flags & VMM_OWNED_FLAGS) ==
		    VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT,
		    "prepared page: first publish has marker 0x%llx (guest read 0x%lx), generation 0x%llx, flags 0x%llx; the VMM wrote 0x%llx, 0x%llx, VM_GEN_COUNTER_PRESENT",
		    clk->disruption_marker, r.marker,
		    clk->vm_generation_counter, clk->flags, PREFILL_MARKER,
		    PREFILL_GENERATION);
	TEST_ASSERT(clk->seq_count == seq_after(PREFILL_SEQ, 1),
		    "prepared page: seq_count 0x%x after the first publish over 0x%x, expected 0x%x",
		    clk->seq_count, PREFILL_SEQ, seq_after(PREFILL_SEQ, 1));

	seq = clk->seq_count;
	vmclock_set_host(vm, &host);
	read_and_check("prepared page: clock data", vcpu, &host, offset, &r);
	vmm.marker = PREFILL_MARKER;
	vmm.generation = PREFILL_GENERATION;
	vmm.flags = VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT;
	assert_published("prepared page: clock data", clk, &host, offset,
			 seq + 2, &vmm);

	/* Both counters move on from the VMM's values. */
	signal_disruption(vm, KVM_VMCLOCK_DISRUPTED | KVM_VMCLOCK_NEW_GENERATION);
	read_and_check("prepared page: new generation", vcpu, &host, offset, &r);
	vmm.marker++;
	vmm.generation++;
	assert_published("prepared page: new generation", clk, &host, offset,
			 seq + 4, &vmm);
	kvm_vm_free(vm);

	/* Garbage without VMCLOCK_MAGIC: nothing is taken from it. */
	vm = create_vm(&vcpu, 1, true);
	clk = vmclock_hva(vm);
	offset = tsc_offset(vcpu);
	memset(clk, 0xa5, PAGE_SIZE);
	seq = clk->seq_count;
	register_vmclock(vm);
	vmclock_set_host(vm, &host);
	read_and_check("garbage page", vcpu, &host, offset, &r);
	memset(&vmm, 0, sizeof(vmm));
	assert_published("garbage page", clk, &host, offset, seq_after(seq, 1),
			 &vmm);
	TEST_ASSERT(r.marker == 0,
		    "garbage page: the guest reads marker 0x%lx, expected 0",
		    r.marker);
	kvm_vm_free(vm);

	end_test();
}

int main(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vmclock cfg;
	struct kvm_vm *vm;

	TEST_REQUIRE(kvm_has_cap(KVM_CAP_VMCLOCK));
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VMCLOCK) & KVM_VMCLOCK_CAP_USERSPACE);
	/* The reference is CLOCK_TAI against the TSC. */
	TEST_REQUIRE(sys_clocksource_is_based_on_tsc());

	current_test = "setup";
	vm = create_vm(&vcpu, 1, false);
	TEST_REQUIRE(!__vcpu_has_device_attr(vcpu, KVM_VCPU_TSC_CTRL,
					     KVM_VCPU_TSC_OFFSET));
	/*
	 * A vCPU whose TSC scaling ratio KVM left at 0 ("user requested TSC
	 * rate below hardware speed") has no usable guest TSC, and every
	 * check below would fail for that reason alone.
	 */
	register_vmclock(vm);
	get_vmclock(vm, &cfg);
	TEST_ASSERT(cfg.guest_tsc_khz,
		    "A new vCPU has no guest TSC rate (KVM_GET_VMCLOCK guest_tsc_khz 0, KVM_GET_TSC_KHZ %d)",
		    __vcpu_ioctl(vcpu, KVM_GET_TSC_KHZ, NULL));
	kvm_vm_free(vm);

	TEST_ASSERT(signal(SIGALRM, watchdog_expired) != SIG_ERR,
		    "signal(SIGALRM) failed, errno %d", errno);

	ksft_print_header();
	ksft_set_plan(NR_TESTS);

	measure_line(&host_line);

	/* The deterministic cases first, the concurrent writers last. */
	test_vmm_write_paused();
	test_prefilled();
	test_migration(MIGRATE_VMM_BUMP,
		       "migration, marker bumped by the VMM in guest memory");
	test_migration(MIGRATE_DISRUPTION,
		       "migration, KVM_VMCLOCK_DISRUPTION(DISRUPTED)");
	test_migration(MIGRATE_VMM_BUMP | MIGRATE_DISRUPTION,
		       "migration, both: marker + 2");
	test_vmm_write_running();
	test_hostile_guest();

	ksft_finished();
}
