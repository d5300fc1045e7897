// SPDX-License-Identifier: GPL-2.0-only
/*
 * Tests for KVM_SET_VMCLOCK, KVM_GET_VMCLOCK and KVM_SET_VMCLOCK_HOST: KVM
 * keeping a vmclock structure (include/uapi/linux/vmclock-abi.h) in guest
 * memory consistent with the guest's TSC.
 *
 * The VMM describes the host TSC -> CLOCK_TAI line in the host TSC domain;
 * the guest reads the structure KVM publishes with the same arithmetic as
 * drivers/ptp/ptp_vmclock.c (vmclock_read_tai()), and the host checks the
 * result against its own line at the guest's TSC translated back into the
 * host TSC domain.  Without TSC scaling that conversion is exact, so the
 * guest's time must match to the nanosecond.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "vmclock.h"

#define NR_TESTS		11
#define NR_VCPUS		2

/* The vmclock lives in a memslot of its own, so that it can be moved. */
#define VMCLOCK_SLOT		10
#define VMCLOCK_GPA		0xc0000000ULL
#define VMCLOCK_GVA		VMCLOCK_GPA
#define VMCLOCK_NPAGES		2
#define VMCLOCK_MOVED_GPA	0xc0200000ULL
#define RO_SLOT			11
#define RO_GPA			0xc0400000ULL
#define UNBACKED_GPA		0xd0000000ULL

#define VMCLOCK_SIZE		((u32)PAGE_SIZE)

/* Spacing of the two host samples the line is fitted through. */
#define LINE_BASELINE_US	300000

/* Slack for line-fit error when checking against the vcpu_run() bracket. */
#define BRACKET_TOLERANCE_NS	20000

/*
 * Without TSC scaling KVM's conversion only adds the TSC offset, so the guest
 * computes exactly what the host computes from its own line; allow for the
 * rounding of the final conversion to nanoseconds only.
 */
#define EXACT_TOLERANCE_NS	1

/* Two clock descriptions of the same line differ by rounding only. */
#define SAME_LINE_TOLERANCE_NS	1

#define BIG_TSC_OFFSET		BIT_ULL(42)
#define OTHER_TSC_OFFSET	((1ULL << 41) + 123456789)

/* tai_offset_sec is UTC - TAI, which has been -37 s since 2017. */
#define UTC_TAI_OFFSET_SEC	(-37)

/* How long the concurrency test hammers KVM_SET_VMCLOCK_HOST. */
#define HAMMER_NS		(1500 * 1000 * 1000ULL)

/* How far apart the two anchors of the concurrency test are at most, in s. */
#define HAMMER_ANCHOR_GAP_SEC	10

/* A vCPU that takes longer than this to publish has been stuck. */
#define MAX_PUBLISH_NS		(2000 * 1000 * 1000ULL)

/* seq_count left odd by the hostile guest. */
#define HOSTILE_SEQ		0xdeadbeefU

/* Flags KVM still relays while the clock is unreliable. */
#define UNRELIABLE_FLAGS	(VMCLOCK_FLAG_DISRUPTION_SOON |		\
				 VMCLOCK_FLAG_DISRUPTION_IMMINENT |	\
				 VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT |	\
				 VMCLOCK_FLAG_NOTIFICATION_PRESENT)

enum guest_op {
	OP_SYNC,	/* Only report back: the vmclock may be unmapped. */
	OP_READ,	/* Read the vmclock once. */
	OP_SCRIBBLE,	/* Write garbage over it and leave seq_count odd. */
	OP_READ_LOOP,	/* Read and check it until told to stop. */
	OP_SPIN,	/* Do nothing until told to stop. */
};

/* Per-vCPU operation, and shared state for the looping operations. */
static u32 guest_op[NR_VCPUS];
static bool guest_stop;
static struct vmclock_abi guest_ref;	/* The line, in the guest TSC domain */

/* The host's TSC -> CLOCK_TAI line, measured once at start. */
static struct vmclock_sample line_a, line_b;
static struct vmclock_abi host_line;

/*
 * CLOCK_TAI in ns on @clk at counter value @tsc, with the arithmetic of
 * vmclock_read_tai() (and so of the guest driver).  Used by the host to
 * compute what the guest must get, and by the guest to check its reads.
 */
static u64 clk_tai_ns(const struct vmclock_abi *clk, u64 tsc)
{
	u64 sec, nsec;

	vmclock_time_at(clk, tsc, &sec, &nsec);

	if (clk->time_type == VMCLOCK_TIME_UTC)
		sec -= (s16)clk->tai_offset_sec;

	return sec * NSEC_PER_SEC + nsec;
}

static void guest_read(struct vmclock_abi *clk)
{
	struct vmclock_time t = {};
	u64 status;

	status = vmclock_read_tai(clk, &t);
	GUEST_SYNC5(status, t.tsc, t.sec, t.nsec, READ_ONCE(clk->seq_count));
}

/* A guest that owns the page can write anything, seq_count included. */
static void guest_scribble(struct vmclock_abi *clk)
{
	u64 *p = (u64 *)clk;
	int i;

	for (i = 0; i < sizeof(*clk) / sizeof(*p); i++)
		WRITE_ONCE(p[i], 0x5a5a5a5a5a5a5a5aULL * (i + 1));
	WRITE_ONCE(clk->seq_count, HOSTILE_SEQ);
	GUEST_SYNC1(0);
}

/*
 * Read the clock until the host says stop.  Every successful read must lie
 * on guest_ref's line: the host alternates two descriptions of that line
 * whose anchors are seconds apart, so a read mixing fields of both (a torn
 * read) is off by up to seconds.
 */
static void guest_read_loop(struct vmclock_abi *clk)
{
	u64 ok = 0, bad = 0, failed = 0, seqs = 0, worst = 0;
	u32 seq, last_seq = READ_ONCE(clk->seq_count);
	struct vmclock_time t;
	u64 got, want, dist;

	while (!READ_ONCE(guest_stop)) {
		seq = READ_ONCE(clk->seq_count);
		if (seq != last_seq) {
			seqs++;
			last_seq = seq;
		}

		if (vmclock_read_tai(clk, &t) != VMCLOCK_READ_OK) {
			failed++;
			continue;
		}

		got = t.sec * NSEC_PER_SEC + t.nsec;
		want = clk_tai_ns(&guest_ref, t.tsc);
		dist = got > want ? got - want : want - got;
		if (dist > SAME_LINE_TOLERANCE_NS) {
			bad++;
			if (dist > worst)
				worst = dist;
		} else {
			ok++;
		}
	}
	GUEST_SYNC5(ok, bad, failed, seqs, worst);
}

static void guest_code(struct vmclock_abi *clk, u32 id)
{
	for (;;) {
		switch (READ_ONCE(guest_op[id])) {
		case OP_READ:
			guest_read(clk);
			break;
		case OP_SCRIBBLE:
			guest_scribble(clk);
			break;
		case OP_READ_LOOP:
			guest_read_loop(clk);
			break;
		case OP_SPIN:
			while (!READ_ONCE(guest_stop))
				cpu_relax();
			GUEST_SYNC1(0);
			break;
		default:
			GUEST_SYNC1(0);
			break;
		}
	}
}

/* Host side. */

struct guest_reading {
	u64 status;
	u64 tsc;
	u64 ns;
	u32 seq;
};

static struct vmclock_abi *vmclock_hva(struct kvm_vm *vm)
{
	return addr_gpa2hva(vm, VMCLOCK_GPA);
}

static void set_guest_stop(struct kvm_vm *vm, bool stop)
{
	bool *p = addr_gva2hva(vm, (gva_t)&guest_stop);

	WRITE_ONCE(*p, stop);
}

/* Run @vcpu until its guest reports back, and return that report. */
static void run_op(struct kvm_vcpu *vcpu, u32 op, struct ucall *uc)
{
	guest_op[vcpu->id] = op;
	sync_global_to_guest(vcpu->vm, guest_op);

	vcpu_run(vcpu);
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

static void run_sync(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	run_op(vcpu, OP_SYNC, &uc);
}

static void run_all(struct kvm_vcpu **vcpus, int nr_vcpus)
{
	int i;

	for (i = 0; i < nr_vcpus; i++)
		run_sync(vcpus[i]);
}

static struct kvm_vm *create_vm(struct kvm_vcpu **vcpus, int nr_vcpus)
{
	struct kvm_vm *vm;
	int i;

	vm = vm_create_with_vcpus(nr_vcpus, guest_code, vcpus);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, VMCLOCK_GPA,
				    VMCLOCK_SLOT, VMCLOCK_NPAGES, 0);
	virt_map(vm, VMCLOCK_GVA, VMCLOCK_GPA, VMCLOCK_NPAGES);

	for (i = 0; i < nr_vcpus; i++) {
		vcpu_args_set(vcpus[i], 2, VMCLOCK_GVA, i);
		guest_op[i] = OP_SYNC;
	}
	guest_stop = false;
	sync_global_to_guest(vm, guest_op);
	sync_global_to_guest(vm, guest_stop);

	/*
	 * Let every vCPU handle the master clock requests of its creation,
	 * so that tests start from KVM's steady state.
	 */
	run_all(vcpus, nr_vcpus);

	return vm;
}

static void guest_read_clock(struct kvm_vcpu *vcpu, struct guest_reading *r)
{
	struct ucall uc;

	run_op(vcpu, OP_READ, &uc);

	r->status = uc.args[0];
	r->tsc = uc.args[1];
	TEST_ASSERT(r->status != VMCLOCK_READ_OK || uc.args[3] < NSEC_PER_SEC,
		    "Guest returned %lu ns, not a fraction of a second",
		    uc.args[3]);
	r->ns = uc.args[2] * NSEC_PER_SEC + uc.args[3];
	r->seq = uc.args[4];
}

static void assert_read_status(const char *what, struct kvm_vm *vm,
			       const struct guest_reading *r, u64 expect)
{
	struct kvm_clock_data data = {};

	if (r->status == expect)
		return;

	/* KVM_CLOCK_TSC_STABLE tells whether KVM uses its master clock. */
	vm_ioctl(vm, KVM_GET_CLOCK, &data);
	TEST_FAIL("%s: guest vmclock reader returned %s, expected %s (KVM_GET_CLOCK flags 0x%x)",
		  what, vmclock_read_status_name(r->status),
		  vmclock_read_status_name(expect), data.flags);
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

/*
 * Give all vCPUs the same offset.  KVM counts vCPUs as matched only if each
 * write repeats the previous one, so write them all, in order.
 */
static void set_tsc_offset_all(struct kvm_vcpu **vcpus, int nr_vcpus,
			       u64 offset)
{
	int i;

	for (i = 0; i < nr_vcpus; i++)
		set_tsc_offset(vcpus[i], offset);
}

static int __set_vmclock(struct kvm_vm *vm, u64 gpa, u32 size, u32 flags)
{
	struct kvm_vmclock cfg = { .gpa = gpa, .size = size, .flags = flags };

	return __vm_ioctl(vm, KVM_SET_VMCLOCK, &cfg);
}

static void set_vmclock(struct kvm_vm *vm, u64 gpa, u32 size)
{
	int r = __set_vmclock(vm, gpa, size, KVM_VMCLOCK_F_USERSPACE);

	TEST_ASSERT(!r, "KVM_SET_VMCLOCK(gpa 0x%lx, size %u) failed, errno %d (%s)",
		    gpa, size, errno, strerror(errno));
}

static void get_vmclock(struct kvm_vm *vm, struct kvm_vmclock *cfg)
{
	memset(cfg, 0xaa, sizeof(*cfg));
	vm_ioctl(vm, KVM_GET_VMCLOCK, cfg);
}

static void assert_vmclock_config(const char *what, struct kvm_vm *vm,
				  u64 gpa, u32 size, u32 flags)
{
	struct kvm_vmclock cfg;
	int i;

	get_vmclock(vm, &cfg);
	TEST_ASSERT(cfg.gpa == gpa && cfg.size == size && cfg.flags == flags,
		    "%s: KVM_GET_VMCLOCK returned gpa 0x%llx size %u flags 0x%x, expected gpa 0x%lx size %u flags 0x%x",
		    what, cfg.gpa, cfg.size, cfg.flags, gpa, size, flags);
	for (i = 0; i < ARRAY_SIZE(cfg.reserved); i++)
		TEST_ASSERT(!cfg.reserved[i],
			    "%s: KVM_GET_VMCLOCK returned reserved[%d] = 0x%llx",
			    what, i, cfg.reserved[i]);
}

static void set_host(struct kvm_vm *vm, const struct vmclock_abi *clk)
{
	vm_ioctl(vm, KVM_SET_VMCLOCK_HOST, clk);
}

static u64 vmclock_updates(struct kvm_vm *vm)
{
	return vm_get_stat(vm, vmclock_updates);
}

static void assert_updates(const char *what, struct kvm_vm *vm, u64 before,
			   u64 delta)
{
	u64 now = vmclock_updates(vm);

	TEST_ASSERT(now - before == delta,
		    "%s: vmclock_updates went up by %lu, expected %lu",
		    what, now - before, delta);
}

#define RICH_FLAGS	(VMCLOCK_FLAG_TAI_OFFSET_VALID |		\
			 VMCLOCK_FLAG_DISRUPTION_SOON |			\
			 VMCLOCK_FLAG_PERIOD_ESTERROR_VALID |		\
			 VMCLOCK_FLAG_PERIOD_MAXERROR_VALID |		\
			 VMCLOCK_FLAG_TIME_ESTERROR_VALID |		\
			 VMCLOCK_FLAG_TIME_MAXERROR_VALID |		\
			 VMCLOCK_FLAG_TIME_MONOTONIC |			\
			 VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT)

/* A clock that uses every field KVM relays, so that all are checked. */
static void make_rich_clock(struct vmclock_abi *clk, u64 marker)
{
	*clk = host_line;

	clk->time_type = VMCLOCK_TIME_UTC;
	clk->time_sec += UTC_TAI_OFFSET_SEC;
	clk->tai_offset_sec = (u16)UTC_TAI_OFFSET_SEC;
	clk->clock_status = VMCLOCK_STATUS_FREERUNNING;
	clk->leap_second_smearing_hint = VMCLOCK_SMEARING_NOON_LINEAR;
	clk->leap_indicator = VMCLOCK_LEAP_PRE_POS;
	clk->flags = RICH_FLAGS;
	clk->disruption_marker = marker;
	clk->vm_generation_counter = 0xfedcba9876543210ULL;
	clk->counter_period_esterror_rate_frac_sec =
		clk->counter_period_frac_sec >> 20;
	clk->counter_period_maxerror_rate_frac_sec =
		clk->counter_period_frac_sec >> 16;
	clk->time_esterror_nanosec = 1234;
	clk->time_maxerror_nanosec = 56789;

	/* KVM owns these two: what the VMM passes must be ignored. */
	clk->size = 0xdead;
	clk->seq_count = 0xbeef;
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

static const struct field_desc *find_field(const char *name)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(vmclock_fields); i++)
		if (!strcmp(vmclock_fields[i].name, name))
			return &vmclock_fields[i];
	TEST_FAIL("No field %s in struct vmclock_abi", name);
	return NULL;
}

static void set_field(struct vmclock_abi *clk, const struct field_desc *f,
		      u64 value)
{
	memcpy((void *)clk + f->offset, &value, field_len(f));
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

static u32 stable_seq(const char *what, const struct vmclock_abi *clk)
{
	u32 seq = READ_ONCE(clk->seq_count);

	TEST_ASSERT(!(seq & 1),
		    "%s: seq_count is 0x%x, odd, after KVM's update ended",
		    what, seq);
	return seq;
}

/*
 * What KVM must publish for @host when the guest TSC is the host TSC plus
 * @offset: everything relayed as is, counter_value moved into the guest TSC
 * domain, size the registered size.  With a ratio of 1 the guest period is
 * the host period; the period has 64 significant bits (see
 * vmclock_fill_tai_line()), so the shift stays the same too.
 */
static void assert_published(const char *what, const struct vmclock_abi *clk,
			     const struct vmclock_abi *host, u64 offset,
			     u32 size)
{
	struct vmclock_abi want = *host;

	want.size = size;
	want.counter_value = host->counter_value + offset;
	want.seq_count = stable_seq(what, clk);
	assert_clock_equal(what, clk, &want);
}

/*
 * What the guest sees while KVM has no usable clock: the constant header and
 * UNRELIABLE, plus what stays meaningful without a TSC relation (the
 * disruption marker and flags, the generation counter, time_type) once the
 * VMM supplied clock data.  No time data.
 */
static void assert_unreliable(const char *what, const struct vmclock_abi *clk,
			      const struct vmclock_abi *host, u32 size)
{
	struct vmclock_abi want = {
		.magic = VMCLOCK_MAGIC,
		.size = size,
		.version = 1,
		.counter_id = VMCLOCK_COUNTER_X86_TSC,
		.clock_status = VMCLOCK_STATUS_UNRELIABLE,
	};

	if (host) {
		want.time_type = host->time_type;
		want.disruption_marker = host->disruption_marker;
		want.vm_generation_counter = host->vm_generation_counter;
		want.flags = host->flags & UNRELIABLE_FLAGS;
	}
	want.seq_count = stable_seq(what, clk);
	assert_clock_equal(what, clk, &want);
}

/*
 * The guest's time must be what the host's own description of the clock
 * gives at the guest's TSC translated back into the host TSC domain, and it
 * must be CLOCK_TAI while the guest was running.  Returns the difference.
 */
static s64 assert_exact_time(const char *what, struct kvm_vm *vm,
			     const struct guest_reading *r,
			     const struct vmclock_abi *host, u64 offset,
			     u64 before_ns, u64 after_ns)
{
	u64 want = clk_tai_ns(host, r->tsc - offset);
	s64 diff = r->ns - want;

	assert_read_status(what, vm, r, VMCLOCK_READ_OK);
	TEST_ASSERT(diff >= -EXACT_TOLERANCE_NS && diff <= EXACT_TOLERANCE_NS,
		    "%s: guest time at guest TSC %lu (host TSC %lu) is %ld ns off the host's clock (limit %d ns): the TSC offset was not applied exactly",
		    what, r->tsc, r->tsc - offset, diff, EXACT_TOLERANCE_NS);
	TEST_ASSERT(r->ns + BRACKET_TOLERANCE_NS >= before_ns &&
		    r->ns <= after_ns + BRACKET_TOLERANCE_NS,
		    "%s: guest CLOCK_TAI is %ld ns after entering and %ld ns after leaving vcpu_run() (tolerance %d ns)",
		    what, (s64)(r->ns - before_ns), (s64)(r->ns - after_ns),
		    BRACKET_TOLERANCE_NS);
	pr_info("%s: guest - host time at the same TSC: %ld ns, guest - CLOCK_TAI at vcpu_run(): %+ld ns\n",
		what, diff, (s64)(r->ns - before_ns));
	return diff;
}

static void read_and_check(const char *what, struct kvm_vcpu *vcpu,
			   const struct vmclock_abi *host, u64 offset)
{
	struct guest_reading r;
	u64 before, after;

	before = vmclock_host_tai_ns();
	guest_read_clock(vcpu, &r);
	after = vmclock_host_tai_ns();
	assert_exact_time(what, vcpu->vm, &r, host, offset, before, after);
}

/*
 * 1: the header of a freshly registered vmclock, before any clock data,
 * on a page that was dirty before registration.
 */
static void test_header(void)
{
	const u32 off2 = 0x800, size2 = sizeof(struct vmclock_abi) + 8;
	struct kvm_vcpu *vcpu;
	struct vmclock_abi *clk;
	struct guest_reading r;
	u8 *page2, snapshot[PAGE_SIZE];
	struct kvm_vm *vm;
	u64 updates;
	int i;

	vm = create_vm(&vcpu, 1);
	clk = vmclock_hva(vm);
	page2 = (u8 *)clk + PAGE_SIZE;
	memset(clk, 0xff, 2 * PAGE_SIZE);

	updates = vmclock_updates(vm);
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	assert_vmclock_config("header", vm, VMCLOCK_GPA, VMCLOCK_SIZE,
			      KVM_VMCLOCK_F_USERSPACE);
	guest_read_clock(vcpu, &r);
	assert_updates("header: first run after registration", vm, updates, 1);

	assert_read_status("header: no clock data yet", vm, &r,
			   VMCLOCK_READ_UNRELIABLE);
	TEST_ASSERT(!(r.seq & 1), "header: guest saw odd seq_count 0x%x",
		    r.seq);
	assert_unreliable("header", clk, NULL, VMCLOCK_SIZE);

	for (i = sizeof(*clk); i < VMCLOCK_SIZE; i++)
		TEST_ASSERT(!((u8 *)clk)[i],
			    "header: byte %d of the %u-byte region is 0x%x, not cleared",
			    i, VMCLOCK_SIZE, ((u8 *)clk)[i]);

	/*
	 * A region smaller than a page, inside a page: the tail up to @size2
	 * is cleared, nothing outside the region is touched, and the old
	 * location keeps what was written last.
	 */
	memcpy(snapshot, clk, PAGE_SIZE);
	set_vmclock(vm, VMCLOCK_GPA + PAGE_SIZE + off2, size2);
	run_sync(vcpu);
	assert_unreliable("header: small region", (void *)(page2 + off2), NULL,
			  size2);
	for (i = 0; i < PAGE_SIZE; i++) {
		u8 want = 0xff;

		if (i >= off2 + sizeof(*clk) && i < off2 + size2)
			want = 0;
		else if (i >= off2 && i < off2 + size2)
			continue;
		TEST_ASSERT(page2[i] == want,
			    "header: byte 0x%x of the page of a %u-byte region at offset 0x%x is 0x%x, expected 0x%x",
			    i, size2, off2, page2[i], want);
	}
	TEST_ASSERT(!memcmp(snapshot, clk, PAGE_SIZE),
		    "header: the old location changed after the vmclock moved");

	kvm_vm_free(vm);
	ksft_test_result_pass("header of a new vmclock\n");
}

/* 2: exact time with a large TSC offset, every field relayed. */
static void test_accuracy(void)
{
	unsigned __int128 hz;
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct vmclock_abi host;
	struct kvm_vmclock cfg;
	struct kvm_vm *vm;
	u64 measured_hz, khz;
	s64 ppm;
	int i;

	vm = create_vm(vcpus, NR_VCPUS);
	set_tsc_offset_all(vcpus, NR_VCPUS, BIG_TSC_OFFSET);
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);

	make_rich_clock(&host, 0x0123456789abcdefULL);
	set_host(vm, &host);

	for (i = 0; i < NR_VCPUS; i++) {
		char what[64];

		snprintf(what, sizeof(what), "accuracy: vCPU %d, offset 2^42", i);
		read_and_check(what, vcpus[i], &host, BIG_TSC_OFFSET);
		assert_published(what, vmclock_hva(vm), &host, BIG_TSC_OFFSET,
				 VMCLOCK_SIZE);
	}

	/* The registration, and the guest TSC rate, which is the host's. */
	get_vmclock(vm, &cfg);
	assert_vmclock_config("accuracy", vm, VMCLOCK_GPA, VMCLOCK_SIZE,
			      KVM_VMCLOCK_F_USERSPACE);
	hz = (unsigned __int128)(line_b.tsc - line_a.tsc) * NSEC_PER_SEC;
	measured_hz = hz / (line_b.tai_ns - line_a.tai_ns);
	ppm = ((s64)cfg.tsc_hz - (s64)measured_hz) * 1000000 / (s64)measured_hz;
	khz = __vcpu_ioctl(vcpus[0], KVM_GET_TSC_KHZ, NULL);
	pr_info("accuracy: KVM_GET_VMCLOCK tsc_hz %llu, KVM_GET_TSC_KHZ %lu, measured %lu Hz (%+ld ppm)\n",
		cfg.tsc_hz, khz, measured_hz, ppm);
	TEST_ASSERT(ppm >= -10000 && ppm <= 10000,
		    "accuracy: KVM_GET_VMCLOCK reports a guest TSC of %llu Hz, but the TSC runs at %lu Hz",
		    cfg.tsc_hz, measured_hz);

	kvm_vm_free(vm);
	ksft_test_result_pass("exact time with a TSC offset, all fields relayed\n");
}

/* 3: a new TSC offset on all vCPUs is republished before they run. */
static void test_offset_change(void)
{
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct vmclock_abi host, *clk;
	struct kvm_vm *vm;
	u64 updates, old_counter;
	int i;

	vm = create_vm(vcpus, NR_VCPUS);
	clk = vmclock_hva(vm);
	set_tsc_offset_all(vcpus, NR_VCPUS, BIG_TSC_OFFSET);
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	make_rich_clock(&host, 1);
	set_host(vm, &host);
	read_and_check("offset change: before", vcpus[0], &host, BIG_TSC_OFFSET);
	old_counter = clk->counter_value;

	updates = vmclock_updates(vm);
	set_tsc_offset_all(vcpus, NR_VCPUS, OTHER_TSC_OFFSET);
	for (i = 0; i < NR_VCPUS; i++) {
		char what[64];

		snprintf(what, sizeof(what), "offset change: vCPU %d", i);
		read_and_check(what, vcpus[i], &host, OTHER_TSC_OFFSET);
		assert_published(what, clk, &host, OTHER_TSC_OFFSET,
				 VMCLOCK_SIZE);
	}
	assert_updates("offset change", vm, updates, 1);
	TEST_ASSERT(clk->counter_value - old_counter ==
		    OTHER_TSC_OFFSET - BIG_TSC_OFFSET,
		    "offset change: counter_value moved by %ld, the offset by %ld",
		    (s64)(clk->counter_value - old_counter),
		    (s64)(OTHER_TSC_OFFSET - BIG_TSC_OFFSET));

	kvm_vm_free(vm);
	ksft_test_result_pass("republished on TSC offset change\n");
}

/*
 * 4: UNRELIABLE while the guest TSC is not one fixed linear function of the
 * host TSC on all vCPUs, valid again once it is.
 */
static void test_status_flips(void)
{
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct vmclock_abi host, *clk;
	struct guest_reading r;
	struct kvm_vmclock cfg;
	struct kvm_vm *vm;
	long khz;
	int i;

	vm = create_vm(vcpus, NR_VCPUS);
	clk = vmclock_hva(vm);
	set_tsc_offset_all(vcpus, NR_VCPUS, BIG_TSC_OFFSET);
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	make_rich_clock(&host, 2);
	host.flags |= VMCLOCK_FLAG_DISRUPTION_IMMINENT;
	set_host(vm, &host);
	read_and_check("status: matched TSCs", vcpus[0], &host, BIG_TSC_OFFSET);

	/* vCPU 1 gets another TSC: no single clock fits both. */
	set_tsc_offset(vcpus[1], OTHER_TSC_OFFSET);
	for (i = NR_VCPUS - 1; i >= 0; i--) {
		guest_read_clock(vcpus[i], &r);
		assert_read_status("status: mismatched TSC offsets", vm, &r,
				   VMCLOCK_READ_UNRELIABLE);
	}
	assert_unreliable("status: mismatched TSC offsets", clk, &host,
			  VMCLOCK_SIZE);

	/*
	 * Matched again.  vCPU 1, the last written, holds the request that
	 * turns KVM's master clock back on, so run it first.
	 */
	set_tsc_offset_all(vcpus, NR_VCPUS, BIG_TSC_OFFSET);
	for (i = NR_VCPUS - 1; i >= 0; i--)
		read_and_check("status: matched again", vcpus[i], &host,
			       BIG_TSC_OFFSET);
	assert_published("status: matched again", clk, &host, BIG_TSC_OFFSET,
			 VMCLOCK_SIZE);

	/*
	 * A faster guest TSC than the host's: with TSC scaling that is just
	 * another ratio; without, KVM keeps the guest TSC up in catch-up mode,
	 * which is no fixed relation to the host TSC.
	 */
	if (kvm_check_cap(KVM_CAP_TSC_CONTROL)) {
		ksft_print_msg("status: TSC scaling available, no catch-up mode to test\n");
	} else {
		khz = __vcpu_ioctl(vcpus[0], KVM_GET_TSC_KHZ, NULL);
		TEST_ASSERT(khz > 0, "KVM_GET_TSC_KHZ failed, errno %d", errno);
		vcpu_ioctl(vcpus[0], KVM_SET_TSC_KHZ,
			   (void *)(unsigned long)(khz + khz / 10));
		guest_read_clock(vcpus[0], &r);
		assert_read_status("status: TSC catch-up mode", vm, &r,
				   VMCLOCK_READ_UNRELIABLE);
		assert_unreliable("status: TSC catch-up mode", clk, &host,
				  VMCLOCK_SIZE);
		get_vmclock(vm, &cfg);
		TEST_ASSERT(!cfg.tsc_hz,
			    "status: KVM_GET_VMCLOCK reports tsc_hz %llu for a vCPU in catch-up mode, expected 0",
			    cfg.tsc_hz);
	}

	kvm_vm_free(vm);
	ksft_test_result_pass("UNRELIABLE while the guest TSC is not fixed\n");
}

static void expect_set_error(struct kvm_vm *vm, const struct kvm_vmclock *cfg,
			     int err, const char *what)
{
	struct kvm_vmclock arg = *cfg;
	int r;

	r = __vm_ioctl(vm, KVM_SET_VMCLOCK, &arg);
	TEST_ASSERT(r == -1 && errno == err,
		    "KVM_SET_VMCLOCK with %s returned %d, errno %d (%s), expected %s",
		    what, r, errno, strerror(errno), strerror(err));
}

static void expect_host_error(struct kvm_vm *vm, const struct vmclock_abi *clk,
			      int err, const char *what)
{
	struct vmclock_abi arg = *clk;
	int r;

	r = __vm_ioctl(vm, KVM_SET_VMCLOCK_HOST, &arg);
	TEST_ASSERT(r == -1 && errno == err,
		    "KVM_SET_VMCLOCK_HOST with %s returned %d, errno %d (%s), expected %s",
		    what, r, errno, strerror(errno), strerror(err));
}

static void expect_bad_pointer(struct kvm_vm *vm, unsigned long cmd,
			       const char *name)
{
	int r = ioctl(vm->fd, cmd, (void *)8);

	TEST_ASSERT(r == -1 && errno == EFAULT,
		    "%s with a bad pointer returned %d, errno %d, expected EFAULT",
		    name, r, errno);
}

#define GOOD_CFG	.gpa = VMCLOCK_GPA, .size = VMCLOCK_SIZE
#define MIN_SIZE	sizeof(struct vmclock_abi)

/* Invalid registrations, each with the documented error code. */
static const struct {
	const char *what;
	struct kvm_vmclock cfg;
	int err;
} set_errors[] = {
	{ "no mode flag", { GOOD_CFG }, EINVAL },
	{ "an unknown mode flag", { GOOD_CFG, .flags = 1U << 3 }, EINVAL },
	{ "an unknown flag besides USERSPACE",
	  { GOOD_CFG, .flags = KVM_VMCLOCK_F_USERSPACE | (1U << 3) }, EINVAL },
	{ "flag bit 31",
	  { GOOD_CFG, .flags = KVM_VMCLOCK_F_USERSPACE | (1U << 31) }, EINVAL },
	{ "nonzero tsc_hz",
	  { GOOD_CFG, .flags = KVM_VMCLOCK_F_USERSPACE, .tsc_hz = 1000000000 },
	  EINVAL },
	{ "nonzero reserved[0]",
	  { GOOD_CFG, .flags = KVM_VMCLOCK_F_USERSPACE, .reserved = { 1 } },
	  EINVAL },
	{ "nonzero reserved[4]",
	  { GOOD_CFG, .flags = KVM_VMCLOCK_F_USERSPACE,
	    .reserved = { [4] = BIT_ULL(63) } }, EINVAL },
	{ "a gpa that is not 8-byte aligned",
	  { .gpa = VMCLOCK_GPA + 4, .size = MIN_SIZE,
	    .flags = KVM_VMCLOCK_F_USERSPACE }, EINVAL },
	{ "an odd gpa",
	  { .gpa = VMCLOCK_GPA + 1, .size = MIN_SIZE,
	    .flags = KVM_VMCLOCK_F_USERSPACE }, EINVAL },
	{ "size 0",
	  { .gpa = VMCLOCK_GPA, .flags = KVM_VMCLOCK_F_USERSPACE }, EINVAL },
	{ "size below sizeof(struct vmclock_abi)",
	  { .gpa = VMCLOCK_GPA, .size = MIN_SIZE - 1,
	    .flags = KVM_VMCLOCK_F_USERSPACE }, EINVAL },
	{ "size above a page",
	  { .gpa = VMCLOCK_GPA, .size = PAGE_SIZE + 1,
	    .flags = KVM_VMCLOCK_F_USERSPACE }, EINVAL },
	{ "size of two pages",
	  { .gpa = VMCLOCK_GPA, .size = 2 * PAGE_SIZE,
	    .flags = KVM_VMCLOCK_F_USERSPACE }, EINVAL },
	{ "a structure crossing a page",
	  { .gpa = VMCLOCK_GPA + PAGE_SIZE - 64, .size = MIN_SIZE,
	    .flags = KVM_VMCLOCK_F_USERSPACE }, EINVAL },
	{ "a region crossing a page",
	  { .gpa = VMCLOCK_GPA + 8, .size = VMCLOCK_SIZE,
	    .flags = KVM_VMCLOCK_F_USERSPACE }, EINVAL },
	{ "GPA_DISABLED and nonzero size",
	  { .gpa = KVM_VMCLOCK_GPA_DISABLED, .size = VMCLOCK_SIZE }, EINVAL },
	{ "GPA_DISABLED and nonzero flags",
	  { .gpa = KVM_VMCLOCK_GPA_DISABLED, .flags = KVM_VMCLOCK_F_USERSPACE },
	  EINVAL },
	{ "GPA_DISABLED and nonzero reserved",
	  { .gpa = KVM_VMCLOCK_GPA_DISABLED, .reserved = { [2] = 1 } }, EINVAL },
	{ "a gpa outside any memslot",
	  { .gpa = UNBACKED_GPA, .size = VMCLOCK_SIZE,
	    .flags = KVM_VMCLOCK_F_USERSPACE }, EFAULT },
	{ "a gpa in a read-only memslot",
	  { .gpa = RO_GPA, .size = VMCLOCK_SIZE,
	    .flags = KVM_VMCLOCK_F_USERSPACE }, EFAULT },
};

/* Invalid clock data: one field of a valid clock changed. */
static const struct {
	const char *what;
	const char *field;
	u64 value;
} host_errors[] = {
	{ "a wrong magic", "magic", VMCLOCK_MAGIC ^ 1 },
	{ "version 0", "version", 0 },
	{ "version 2", "version", 2 },
	{ "counter_id ARM_VCNT", "counter_id", VMCLOCK_COUNTER_ARM_VCNT },
	{ "counter_id INVALID", "counter_id", VMCLOCK_COUNTER_INVALID },
	{ "counter_period_shift 64", "counter_period_shift", 64 },
	{ "a zero counter period", "counter_period_frac_sec", 0 },
	{ "an unknown clock_status", "clock_status",
	  VMCLOCK_STATUS_UNRELIABLE + 1 },
	{ "an unknown time_type", "time_type",
	  VMCLOCK_TIME_INVALID_MAYBE_SMEARED + 1 },
	{ "an unknown leap_indicator", "leap_indicator",
	  VMCLOCK_LEAP_POST_NEG + 1 },
	{ "an unknown smearing hint", "leap_second_smearing_hint",
	  VMCLOCK_SMEARING_UTC_SLS + 1 },
	{ "nonzero pad[0]", "pad", 0x01 },
	{ "nonzero pad[1]", "pad", 0x8000 },
	{ "unknown flag bit 10", "flags",
	  RICH_FLAGS | (VMCLOCK_FLAG_NOTIFICATION_PRESENT << 1) },
	{ "unknown flag bit 63", "flags", RICH_FLAGS | BIT_ULL(63) },
};

static void check_set_errors(struct kvm_vm *vm)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(set_errors); i++)
		expect_set_error(vm, &set_errors[i].cfg, set_errors[i].err,
				 set_errors[i].what);
	expect_bad_pointer(vm, KVM_SET_VMCLOCK, "KVM_SET_VMCLOCK");
}

static void check_host_errors(struct kvm_vm *vm, const struct vmclock_abi *good)
{
	struct vmclock_abi c;
	int i;

	for (i = 0; i < ARRAY_SIZE(host_errors); i++) {
		c = *good;
		set_field(&c, find_field(host_errors[i].field),
			  host_errors[i].value);
		expect_host_error(vm, &c, EINVAL, host_errors[i].what);
	}

	/* Moving this reference point to the present makes the time negative. */
	c = *good;
	c.counter_value = rdtsc() + BIT_ULL(44);
	c.time_sec = 1;
	c.time_frac_sec = 0;
	expect_host_error(vm, &c, EINVAL, "a counter_value far in the future");
	expect_bad_pointer(vm, KVM_SET_VMCLOCK_HOST, "KVM_SET_VMCLOCK_HOST");
}

/* 5: every error path, and that a failed call changes nothing. */
static void test_errors(void)
{
	u8 snapshot[VMCLOCK_SIZE];
	struct vmclock_abi host, *clk;
	struct guest_reading r;
	struct kvm_vmclock cfg;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u64 updates;

	make_rich_clock(&host, 5);

	/* A VM without vCPUs or registration. */
	vm = vm_create_barebones();
	get_vmclock(vm, &cfg);
	TEST_ASSERT(cfg.gpa == KVM_VMCLOCK_GPA_DISABLED && !cfg.size &&
		    !cfg.flags && !cfg.tsc_hz,
		    "errors: KVM_GET_VMCLOCK of a new VM returned gpa 0x%llx size %u flags 0x%x tsc_hz %llu, expected GPA_DISABLED and zeroes",
		    cfg.gpa, cfg.size, cfg.flags, cfg.tsc_hz);
	expect_host_error(vm, &host, ENOENT, "no vmclock registered");
	expect_bad_pointer(vm, KVM_GET_VMCLOCK, "KVM_GET_VMCLOCK");
	kvm_vm_free(vm);

	vm = create_vm(&vcpu, 1);
	clk = vmclock_hva(vm);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, RO_GPA, RO_SLOT,
				    1, KVM_MEM_READONLY);
	expect_host_error(vm, &host, ENOENT, "no vmclock registered");

	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	set_host(vm, &host);
	read_and_check("errors: before", vcpu, &host, tsc_offset(vcpu));
	memcpy(snapshot, clk, VMCLOCK_SIZE);
	updates = vmclock_updates(vm);

	check_set_errors(vm);
	assert_vmclock_config("errors: after failed KVM_SET_VMCLOCK", vm,
			      VMCLOCK_GPA, VMCLOCK_SIZE, KVM_VMCLOCK_F_USERSPACE);
	check_host_errors(vm, &host);

	/* Nothing changed: no update, the same data in guest memory. */
	read_and_check("errors: after", vcpu, &host, tsc_offset(vcpu));
	assert_updates("errors: after failed calls", vm, updates, 0);
	TEST_ASSERT(!memcmp(snapshot, clk, VMCLOCK_SIZE),
		    "errors: guest memory changed after failed calls");

	/* Disabling stops updates and forgets the data, memory stays. */
	TEST_ASSERT(!__set_vmclock(vm, KVM_VMCLOCK_GPA_DISABLED, 0, 0),
		    "errors: disabling the vmclock failed, errno %d", errno);
	assert_vmclock_config("errors: disabled", vm, KVM_VMCLOCK_GPA_DISABLED,
			      0, 0);
	expect_host_error(vm, &host, ENOENT, "the vmclock disabled");
	set_tsc_offset(vcpu, BIG_TSC_OFFSET);
	run_sync(vcpu);
	assert_updates("errors: disabled, TSC offset changed", vm, updates, 0);
	TEST_ASSERT(!memcmp(snapshot, clk, VMCLOCK_SIZE),
		    "errors: guest memory changed after the vmclock was disabled");

	/* Registered again, it is unreliable until data is supplied again. */
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	guest_read_clock(vcpu, &r);
	assert_read_status("errors: registered again", vm, &r,
			   VMCLOCK_READ_UNRELIABLE);
	assert_unreliable("errors: registered again", clk, NULL, VMCLOCK_SIZE);
	set_host(vm, &host);
	read_and_check("errors: data supplied again", vcpu, &host,
		       BIG_TSC_OFFSET);

	kvm_vm_free(vm);
	ksft_test_result_pass("error paths change nothing\n");
}

/* 6: the vmclock's memslot deleted, re-added, moved, its HVA remapped. */
static void test_memslots(void)
{
	struct vmclock_abi host, *clk;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u64 updates, offset;
	void *p;

	vm = create_vm(&vcpu, 1);
	offset = tsc_offset(vcpu);
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	make_rich_clock(&host, 6);
	set_host(vm, &host);
	run_sync(vcpu);
	assert_published("memslots: initial", vmclock_hva(vm), &host, offset,
			 VMCLOCK_SIZE);

	/* Deleted: the vCPU runs (the guest leaves the page alone). */
	updates = vmclock_updates(vm);
	vm_mem_region_delete(vm, VMCLOCK_SLOT);
	run_sync(vcpu);
	host.disruption_marker++;
	set_host(vm, &host);
	run_sync(vcpu);
	assert_updates("memslots: deleted", vm, updates, 0);
	assert_vmclock_config("memslots: deleted", vm, VMCLOCK_GPA,
			      VMCLOCK_SIZE, KVM_VMCLOCK_F_USERSPACE);

	/* Re-added with new memory: the latest data is published there. */
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, VMCLOCK_GPA,
				    VMCLOCK_SLOT, VMCLOCK_NPAGES, 0);
	clk = vmclock_hva(vm);
	memset(clk, 0xee, PAGE_SIZE);
	run_sync(vcpu);
	assert_updates("memslots: re-added", vm, updates, 1);
	assert_published("memslots: re-added", clk, &host, offset, VMCLOCK_SIZE);

	/* Moved away: nothing is written into the memory at its new gpa. */
	memset(clk, 0xee, PAGE_SIZE);
	vm_mem_region_move(vm, VMCLOCK_SLOT, VMCLOCK_MOVED_GPA);
	run_sync(vcpu);
	assert_updates("memslots: moved away", vm, updates, 1);
	TEST_ASSERT(clk->magic == 0xeeeeeeee && clk->seq_count == 0xeeeeeeee,
		    "memslots: KVM wrote the vmclock into a memslot that no longer covers its gpa");

	/* Moved back: published again. */
	vm_mem_region_move(vm, VMCLOCK_SLOT, VMCLOCK_GPA);
	run_sync(vcpu);
	assert_updates("memslots: moved back", vm, updates, 2);
	assert_published("memslots: moved back", clk, &host, offset,
			 VMCLOCK_SIZE);

	/*
	 * New memory behind the same HVA: KVM writes through the VMM's
	 * mapping, so the next update lands in the new page.
	 */
	p = mmap(clk, PAGE_SIZE, PROT_READ | PROT_WRITE,
		 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(p == clk, "mmap(MAP_FIXED) over the vmclock failed, errno %d",
		    errno);
	memset(clk, 0xee, PAGE_SIZE);
	run_sync(vcpu);
	if (clk->magic != VMCLOCK_MAGIC)
		ksft_print_msg("memslots: no republish on an HVA remap alone\n");
	host.disruption_marker++;
	set_host(vm, &host);
	run_sync(vcpu);
	assert_published("memslots: HVA remapped", clk, &host, offset,
			 VMCLOCK_SIZE);

	kvm_vm_free(vm);
	ksft_test_result_pass("memslot delete, re-add, move and HVA remap\n");
}

static bool vmclock_page_dirty(struct kvm_vm *vm)
{
	u64 bitmap[1] = {};

	kvm_vm_get_dirty_log(vm, VMCLOCK_SLOT, bitmap);
	return bitmap[0] & 1;
}

/* 7: KVM's writes are dirty logged. */
static void test_dirty_log(void)
{
	struct vmclock_abi host;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u64 updates;

	vm = create_vm(&vcpu, 1);
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	make_rich_clock(&host, 7);
	set_host(vm, &host);
	run_sync(vcpu);

	vm_mem_region_set_flags(vm, VMCLOCK_SLOT, KVM_MEM_LOG_DIRTY_PAGES);
	run_sync(vcpu);
	vmclock_page_dirty(vm);

	/* No update, no dirty page: the guest does not touch it either. */
	updates = vmclock_updates(vm);
	run_sync(vcpu);
	assert_updates("dirty log: no trigger", vm, updates, 0);
	TEST_ASSERT(!vmclock_page_dirty(vm),
		    "dirty log: vmclock page dirty although nothing wrote it");

	host.disruption_marker++;
	set_host(vm, &host);
	run_sync(vcpu);
	assert_updates("dirty log: update", vm, updates, 1);
	TEST_ASSERT(vmclock_page_dirty(vm),
		    "dirty log: KVM updated the vmclock but the page is not in the dirty log");
	assert_published("dirty log", vmclock_hva(vm), &host, tsc_offset(vcpu),
			 VMCLOCK_SIZE);

	kvm_vm_free(vm);
	ksft_test_result_pass("updates are dirty logged\n");
}

/* 8: a guest that scribbles over the structure and leaves seq_count odd. */
static void test_hostile_guest(void)
{
	struct vmclock_abi host, *clk;
	struct kvm_vcpu *vcpu;
	struct ucall uc;
	struct kvm_vm *vm;
	u64 start, elapsed, offset;

	vm = create_vm(&vcpu, 1);
	clk = vmclock_hva(vm);
	offset = tsc_offset(vcpu);
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	make_rich_clock(&host, 8);
	set_host(vm, &host);
	read_and_check("hostile: before", vcpu, &host, offset);

	run_op(vcpu, OP_SCRIBBLE, &uc);
	TEST_ASSERT(clk->seq_count == HOSTILE_SEQ && clk->magic != VMCLOCK_MAGIC,
		    "hostile: the guest's garbage is not in guest memory");

	host.disruption_marker++;
	set_host(vm, &host);
	start = vmclock_host_tai_ns();
	read_and_check("hostile: after", vcpu, &host, offset);
	elapsed = vmclock_host_tai_ns() - start;
	pr_info("hostile: update over an odd seq_count took %lu us (with the guest's read)\n",
		elapsed / 1000);
	TEST_ASSERT(elapsed < MAX_PUBLISH_NS,
		    "hostile: the vCPU took %lu ms to publish over an odd seq_count",
		    elapsed / 1000000);
	assert_published("hostile: after", clk, &host, offset, VMCLOCK_SIZE);

	kvm_vm_free(vm);
	ksft_test_result_pass("hostile guest cannot block updates\n");
}

struct vcpu_thread {
	struct kvm_vcpu *vcpu;
	u32 op;
	struct ucall uc;
	pthread_t tid;
};

static void *vcpu_thread_fn(void *arg)
{
	struct vcpu_thread *t = arg;

	vcpu_run(t->vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(t->vcpu, KVM_EXIT_IO);
	switch (get_ucall(t->vcpu, &t->uc)) {
	case UCALL_SYNC:
		break;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(t->uc);
		break;
	default:
		TEST_FAIL("vCPU %u: unexpected ucall %lu", t->vcpu->id,
			  t->uc.cmd);
	}
	return NULL;
}

/*
 * @a's line, anchored @gap_tsc cycles earlier: the same time for every
 * counter value up to rounding, but different counter_value and time fields.
 */
static void move_anchor_back(struct vmclock_abi *b, const struct vmclock_abi *a,
			     u64 gap_tsc)
{
	unsigned __int128 time, back;

	*b = *a;
	back = ((unsigned __int128)gap_tsc * a->counter_period_frac_sec) >>
	       a->counter_period_shift;
	time = (unsigned __int128)a->time_sec << 64 | a->time_frac_sec;
	time -= back;
	b->counter_value = a->counter_value - gap_tsc;
	b->time_sec = time >> 64;
	b->time_frac_sec = (u64)time;
}

/* 9: updates racing with a reading guest are never seen half done. */
static void test_concurrency(void)
{
	struct vcpu_thread threads[NR_VCPUS];
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct vmclock_abi a, b;
	struct kvm_vm *vm;
	u64 offset, start, updates, ioctls = 0, gap;
	u64 ok, bad, failed, seqs, worst;
	int i;

	vm = create_vm(vcpus, NR_VCPUS);
	offset = tsc_offset(vcpus[0]);
	TEST_ASSERT(tsc_offset(vcpus[1]) == offset,
		    "concurrency: the vCPUs' TSC offsets differ from the start");
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);

	/*
	 * The second anchor must not be before TSC 0, which may be only
	 * seconds ago: KVM would take it for one in the future.
	 */
	a = host_line;
	gap = (line_b.tsc - line_a.tsc) * HAMMER_ANCHOR_GAP_SEC * NSEC_PER_SEC /
	      (line_b.tai_ns - line_a.tai_ns);
	gap = min_t(u64, gap, a.counter_value / 2);
	move_anchor_back(&b, &a, gap);
	pr_info("concurrency: anchors %lu ms apart\n",
		(clk_tai_ns(&a, a.counter_value) -
		 clk_tai_ns(&b, b.counter_value)) / 1000000);
	set_host(vm, &a);
	run_all(vcpus, NR_VCPUS);
	assert_published("concurrency: start", vmclock_hva(vm), &a, offset,
			 VMCLOCK_SIZE);

	guest_ref = a;
	guest_ref.counter_value += offset;
	sync_global_to_guest(vm, guest_ref);
	guest_op[0] = OP_READ_LOOP;
	guest_op[1] = OP_SPIN;
	sync_global_to_guest(vm, guest_op);

	updates = vmclock_updates(vm);
	for (i = 0; i < NR_VCPUS; i++) {
		threads[i].vcpu = vcpus[i];
		pthread_create(&threads[i].tid, NULL, vcpu_thread_fn,
			       &threads[i]);
	}

	start = vmclock_host_tai_ns();
	while (vmclock_host_tai_ns() - start < HAMMER_NS)
		set_host(vm, ioctls++ & 1 ? &b : &a);

	set_guest_stop(vm, true);
	for (i = 0; i < NR_VCPUS; i++)
		pthread_join(threads[i].tid, NULL);
	updates = vmclock_updates(vm) - updates;

	ok = threads[0].uc.args[0];
	bad = threads[0].uc.args[1];
	failed = threads[0].uc.args[2];
	seqs = threads[0].uc.args[3];
	worst = threads[0].uc.args[4];
	pr_info("concurrency: %lu KVM_SET_VMCLOCK_HOST, %lu updates; guest: %lu good reads, %lu wrong (worst %lu ns), %lu failed, %lu seq_count changes seen\n",
		ioctls, updates, ok, bad, worst, failed, seqs);

	TEST_ASSERT(!bad,
		    "concurrency: %lu of the guest's reads were off the line, by up to %lu ns: torn reads",
		    bad, worst);
	TEST_ASSERT(!failed,
		    "concurrency: %lu of the guest's reads failed (seq_count never settled or clock unreliable)",
		    failed);
	TEST_ASSERT(ok > 0 && updates > 0 && seqs > 0,
		    "concurrency: no progress: %lu good reads, %lu updates, %lu seq_count changes seen by the guest",
		    ok, updates, seqs);

	kvm_vm_free(vm);
	ksft_test_result_pass("no torn reads or livelock under concurrent updates\n");
}

/* 10: vmclock_updates counts real updates only. */
static void test_stats(void)
{
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct vmclock_abi host, *clk;
	struct kvm_vm *vm;
	u64 updates, offset;
	u32 seq;

	vm = create_vm(vcpus, NR_VCPUS);
	clk = vmclock_hva(vm);
	offset = tsc_offset(vcpus[0]);
	set_tsc_offset_all(vcpus, NR_VCPUS, offset);

	updates = vmclock_updates(vm);
	run_all(vcpus, NR_VCPUS);
	assert_updates("stats: nothing registered", vm, updates, 0);

	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	run_all(vcpus, NR_VCPUS);
	assert_updates("stats: registered", vm, updates, 1);

	make_rich_clock(&host, 10);
	set_host(vm, &host);
	run_all(vcpus, NR_VCPUS);
	assert_updates("stats: clock data on two vCPUs", vm, updates, 2);

	run_all(vcpus, NR_VCPUS);
	assert_updates("stats: runs without a trigger", vm, updates, 2);

	seq = clk->seq_count;
	set_host(vm, &host);
	run_all(vcpus, NR_VCPUS);
	assert_updates("stats: identical clock data", vm, updates, 2);
	TEST_ASSERT(clk->seq_count == seq,
		    "stats: seq_count changed from %u to %u without an update",
		    seq, clk->seq_count);

	set_tsc_offset_all(vcpus, NR_VCPUS, offset);
	run_all(vcpus, NR_VCPUS);
	assert_updates("stats: the same TSC offset again", vm, updates, 2);

	host.disruption_marker++;
	set_host(vm, &host);
	run_all(vcpus, NR_VCPUS);
	assert_updates("stats: new disruption marker", vm, updates, 3);

	set_tsc_offset_all(vcpus, NR_VCPUS, BIG_TSC_OFFSET);
	run_all(vcpus, NR_VCPUS);
	assert_updates("stats: new TSC offset", vm, updates, 4);
	assert_published("stats", clk, &host, BIG_TSC_OFFSET, VMCLOCK_SIZE);

	kvm_vm_free(vm);
	ksft_test_result_pass("vmclock_updates counts real updates\n");
}

/*
 * KVM_VCPU_TSC_SCALE reports the raw ratio behind the guest TSC. Without
 * hardware TSC scaling (as under QEMU's SVM) it does not exist: -ENXIO.
 */
static void test_tsc_scale(void)
{
	struct kvm_vcpu_tsc_scale scale = {};
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	int r;

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);

	if (!kvm_check_cap(KVM_CAP_TSC_CONTROL)) {
		r = __vcpu_has_device_attr(vcpu, KVM_VCPU_TSC_CTRL,
					   KVM_VCPU_TSC_SCALE);
		TEST_ASSERT(r == -1 && errno == ENXIO,
			    "KVM_HAS_DEVICE_ATTR(KVM_VCPU_TSC_SCALE) without TSC scaling: want ENXIO, got %d errno %d",
			    r, errno);
		r = __vcpu_device_attr_get(vcpu, KVM_VCPU_TSC_CTRL,
					   KVM_VCPU_TSC_SCALE, &scale);
		TEST_ASSERT(r == -1 && errno == ENXIO,
			    "KVM_GET_DEVICE_ATTR(KVM_VCPU_TSC_SCALE) without TSC scaling: want ENXIO, got %d errno %d",
			    r, errno);
		r = __vcpu_device_attr_set(vcpu, KVM_VCPU_TSC_CTRL,
					   KVM_VCPU_TSC_SCALE, &scale);
		TEST_ASSERT(r == -1 && errno == ENXIO,
			    "KVM_SET_DEVICE_ATTR(KVM_VCPU_TSC_SCALE) without TSC scaling: want ENXIO, got %d errno %d",
			    r, errno);
		kvm_vm_free(vm);
		ksft_test_result_pass("KVM_VCPU_TSC_SCALE: -ENXIO without TSC scaling\n");
		return;
	}

	vcpu_device_attr_get(vcpu, KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_SCALE, &scale);
	TEST_ASSERT(scale.tsc_frac_bits == 32 || scale.tsc_frac_bits == 48,
		    "KVM_VCPU_TSC_SCALE: unexpected fractional bits %llu",
		    scale.tsc_frac_bits);
	TEST_ASSERT(scale.tsc_ratio == 1ULL << scale.tsc_frac_bits,
		    "KVM_VCPU_TSC_SCALE: a vCPU at the host rate has ratio %#llx, want 1 << %llu",
		    scale.tsc_ratio, scale.tsc_frac_bits);
	r = __vcpu_device_attr_set(vcpu, KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_SCALE,
				   &scale);
	TEST_ASSERT(r == -1 && errno == EINVAL,
		    "KVM_SET_DEVICE_ATTR(KVM_VCPU_TSC_SCALE) is read-only: want EINVAL, got %d errno %d",
		    r, errno);
	kvm_vm_free(vm);
	ksft_test_result_pass("KVM_VCPU_TSC_SCALE reports the default ratio, read-only\n");
}

/* The host's TSC -> CLOCK_TAI line, sampled far enough apart. */
static void measure_host_line(void)
{
	vmclock_host_sample(&line_a);
	usleep(LINE_BASELINE_US);
	vmclock_host_sample(&line_b);
	vmclock_fill_tai_line(&host_line, &line_a, &line_b);
	pr_info("host line: samples %lu us apart, widths %lu and %lu ns\n",
		(line_b.tai_ns - line_a.tai_ns) / 1000, line_a.width_ns,
		line_b.width_ns);
}

int main(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vmclock cfg;
	struct kvm_vm *vm;

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VMCLOCK) & KVM_VMCLOCK_F_USERSPACE);
	/* The reference is CLOCK_TAI against the TSC; KVM needs it too. */
	TEST_REQUIRE(sys_clocksource_is_based_on_tsc());

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	TEST_REQUIRE(!__vcpu_has_device_attr(vcpu, KVM_VCPU_TSC_CTRL,
					     KVM_VCPU_TSC_OFFSET));

	/*
	 * A vCPU whose TSC scaling ratio KVM left at 0 (KVM_SET_TSC_KHZ to
	 * the VM's default rate failed when the vCPU was created, "user
	 * requested TSC rate below hardware speed") has no usable guest TSC
	 * relation, so every vmclock check would fail for that reason.
	 */
	get_vmclock(vm, &cfg);
	TEST_ASSERT(cfg.tsc_hz,
		    "A new vCPU has no guest TSC rate (KVM_GET_VMCLOCK tsc_hz 0, KVM_GET_TSC_KHZ %d): KVM did not set its TSC scaling ratio",
		    __vcpu_ioctl(vcpu, KVM_GET_TSC_KHZ, NULL));
	kvm_vm_free(vm);

	ksft_print_header();
	ksft_set_plan(NR_TESTS);

	measure_host_line();

	test_header();
	test_accuracy();
	test_offset_change();
	test_status_flips();
	test_errors();
	test_memslots();
	test_dirty_log();
	test_hostile_guest();
	test_concurrency();
	test_stats();
	test_tsc_scale();

	ksft_finished();
}
