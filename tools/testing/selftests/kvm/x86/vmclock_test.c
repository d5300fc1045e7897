// SPDX-License-Identifier: GPL-2.0-only
/*
 * Tests for KVM_SET_VMCLOCK, KVM_GET_VMCLOCK, KVM_SET_VMCLOCK_HOST and
 * KVM_VMCLOCK_DISRUPTION in userspace mode: KVM keeping a vmclock structure
 * (include/uapi/linux/vmclock-abi.h) in guest memory consistent with the
 * guest's TSC.
 *
 * The VMM describes the host TSC -> CLOCK_TAI line in the host TSC domain;
 * the guest reads the structure KVM publishes with the same arithmetic as
 * drivers/ptp/ptp_vmclock.c (vmclock_read_tai()), and the host checks the
 * result against its own line at the guest's TSC translated back into the
 * host TSC domain.  Without TSC scaling that conversion is exact, so the
 * guest's time must match to the nanosecond.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <asm/barrier.h>
#include <asm/pvclock.h>
#include <asm/pvclock-abi.h>
#include <linux/userfaultfd.h>
#include <linux/vmclock-abi.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "vmclock.h"

#define NR_TESTS		22
#define NR_VCPUS		2

/* The most vCPUs a VM has here: the one-writer test, and a late vCPU. */
#define MAX_VCPUS		16

/* The vmclock lives in a memslot of its own, so that it can be moved. */
#define VMCLOCK_SLOT		10
#define VMCLOCK_GPA		0xc0000000ULL
#define VMCLOCK_GVA		VMCLOCK_GPA
#define VMCLOCK_NPAGES		2
#define VMCLOCK_MOVED_GPA	0xc0200000ULL
#define RO_SLOT			11
#define RO_GPA			0xc0400000ULL
#define UNBACKED_GPA		0xd0000000ULL
#define PRIVATE_SLOT		12
#define PRIVATE_GPA		0xc0600000ULL
/* The races test's second place, whose memslot comes and goes. */
#define RACE_SLOT		13
#define RACE_GPA		0xc0800000ULL
#define RACE_MOVED_GPA		0xc0a00000ULL

/* Rounds of each racing thread of the races test. */
#define RACE_REG_ROUNDS		1200
#define RACE_HOST_ROUNDS	3000
#define RACE_SLOT_ROUNDS	600
/* VMs torn down with work pending, per kind of work. */
#define RACE_TEARDOWN_ROUNDS	20

/* Entries of a vCPU's dirty ring: far more than a test dirties. */
#define DIRTY_RING_ENTRIES	1024

/* How many updates the notification test triggers. */
#define NR_NOTIFY_TRIGGERS	6

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

/*
 * vCPUs in KVM_RUN when an update's writer blocks on guest memory, and how
 * long to wait for a (first) fault on it; a second writer is waited for a
 * quarter of that.
 */
#define BLOCKED_VCPUS		4
#define BLOCKED_WAIT_MS		5000

/* seq_count left odd by the hostile guest. */
#define HOSTILE_SEQ		0xdeadbeefU

/* The flags the VMM owns, set with KVM_VMCLOCK_DISRUPTION. */
#define VMM_FLAGS		(VMCLOCK_FLAG_DISRUPTION_SOON |		\
				 VMCLOCK_FLAG_DISRUPTION_IMMINENT |	\
				 VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT)

/* Flags KVM still relays while the clock is unreliable. */
#define UNRELIABLE_FLAGS	(VMM_FLAGS | VMCLOCK_FLAG_NOTIFICATION_PRESENT)

enum guest_op {
	OP_SYNC,	/* Only report back: the vmclock may be unmapped. */
	OP_READ,	/* Read the vmclock once. */
	OP_SCRIBBLE,	/* Write garbage over it and leave seq_count odd. */
	OP_READ_LOOP,	/* Read and check it until told to stop. */
	OP_SPIN,	/* Do nothing until told to stop. */
	OP_SCRIBBLE_LOOP, /* Scribble over it until told to stop. */
	OP_SPIN_COUNT,	/* Count loops until told to stop. */
	OP_RACE_LOOP,	/* Read and check it until told to stop, by outcome. */
	OP_KVMCLOCK_ON,	/* Enable kvmclock at guest_pvti_gpa. */
	OP_READ_COST,	/* Time COST_READS reads of each clock. */
};

/* Per-vCPU operation, and shared state for the looping operations. */
static u32 guest_op[MAX_VCPUS];
static bool guest_stop;
static u32 guest_spinning[MAX_VCPUS];	/* Set by OP_SPIN once in the guest */
static struct vmclock_abi guest_ref;	/* The line, in the guest TSC domain */
/* The kvmclock page of the cost benchmark's vCPU. */
static gpa_t guest_pvti_gpa;
static struct pvclock_vcpu_time_info *guest_pvti;

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
 * Scribble until the host says stop: garbage everywhere (magic and size
 * included), seq_count odd and different each round.
 */
static void guest_scribble_loop(struct vmclock_abi *clk)
{
	u64 *p = (u64 *)clk, n = 0;
	int i;

	while (!READ_ONCE(guest_stop)) {
		for (i = 0; i < sizeof(*clk) / sizeof(*p); i++)
			WRITE_ONCE(p[i], 0x5a5a5a5a5a5a5a5aULL * (i + 1) + n);
		WRITE_ONCE(clk->seq_count, HOSTILE_SEQ + 2 * (u32)n);
		n++;
	}
	GUEST_SYNC1(n);
}

/*
 * Loop until the host says stop; report the loops and the longest gap
 * between two of them in TSC cycles (the vCPU was out of the guest then).
 */
static void guest_spin_count(void)
{
	u64 n = 0, worst = 0, last = rdtsc(), now;

	while (!READ_ONCE(guest_stop)) {
		now = rdtsc();
		if (now - last > worst)
			worst = now - last;
		last = now;
		n++;
	}
	GUEST_SYNC2(n, worst);
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

/*
 * The races test's reader: like guest_read_loop(), but counting each
 * outcome apart, as KVM may rightly say UNRELIABLE while the VMM has not
 * given it a clock since a registration, but must never leave seq_count
 * odd for good at a place whose memslot stays.
 */
static void guest_race_loop(struct vmclock_abi *clk)
{
	u64 ok = 0, bad = 0, unreliable = 0, timed_out = 0, worst = 0;
	struct vmclock_time t;
	u64 got, want, dist;

	while (!READ_ONCE(guest_stop)) {
		switch (vmclock_read_tai(clk, &t)) {
		case VMCLOCK_READ_OK:
			got = t.sec * NSEC_PER_SEC + t.nsec;
			want = clk_tai_ns(&guest_ref, t.tsc);
			dist = got > want ? got - want : want - got;
			if (dist > SAME_LINE_TOLERANCE_NS) {
				bad++;
				worst = max(worst, dist);
			} else {
				ok++;
			}
			break;
		case VMCLOCK_READ_TIMED_OUT:
			timed_out++;
			break;
		default:
			unreliable++;
			break;
		}
	}
	GUEST_SYNC5(ok, bad, unreliable, timed_out, worst);
}

/* Reads per clock in the cost benchmark's guest loop. */
#define COST_READS		20000

static u64 guest_kvmclock_read(const struct pvclock_vcpu_time_info *pvti)
{
	unsigned int version;
	u64 ns;

	do {
		version = pvclock_read_begin(pvti);
		ns = __pvclock_read_cycles(pvti, rdtsc());
	} while (pvclock_read_retry(pvti, version));
	return ns;
}

/*
 * The guest side of the cost benchmark: COST_READS reads of the vmclock as
 * ptp_vmclock reads it, then of kvmclock as the guest's clocksource reads
 * it, each loop timed with the TSC.  The sums keep the reads from being
 * optimized away.
 */
static void guest_read_cost(struct vmclock_abi *clk)
{
	u64 t0, t1, t2, sum = 0, failed = 0;
	struct vmclock_time t;
	int i;

	t0 = rdtsc();
	for (i = 0; i < COST_READS; i++) {
		if (vmclock_read_tai(clk, &t) == VMCLOCK_READ_OK)
			sum += t.nsec;
		else
			failed++;
	}
	t1 = rdtsc();
	for (i = 0; i < COST_READS; i++)
		sum += guest_kvmclock_read(guest_pvti);
	t2 = rdtsc();
	GUEST_SYNC4(t1 - t0, t2 - t1, failed, sum);
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
		case OP_SCRIBBLE_LOOP:
			guest_scribble_loop(clk);
			break;
		case OP_SPIN_COUNT:
			guest_spin_count();
			break;
		case OP_RACE_LOOP:
			guest_race_loop(clk);
			break;
		case OP_KVMCLOCK_ON:
			wrmsr(MSR_KVM_SYSTEM_TIME_NEW,
			      guest_pvti_gpa | KVM_MSR_ENABLED);
			GUEST_SYNC1(0);
			break;
		case OP_READ_COST:
			guest_read_cost(clk);
			break;
		case OP_SPIN:
			WRITE_ONCE(guest_spinning[id], 1);
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

static void add_vmclock_slot(struct kvm_vm *vm, u32 flags)
{
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, VMCLOCK_GPA,
				    VMCLOCK_SLOT, VMCLOCK_NPAGES, flags);
}

/* The guest side of a vCPU added with vm_vcpu_add(). */
static void setup_vcpu(struct kvm_vcpu *vcpu)
{
	TEST_ASSERT(vcpu->id < MAX_VCPUS, "vCPU id %u, at most %d here",
		    vcpu->id, MAX_VCPUS - 1);
	vcpu_args_set(vcpu, 2, VMCLOCK_GVA, vcpu->id);
	guest_op[vcpu->id] = OP_SYNC;
	sync_global_to_guest(vcpu->vm, guest_op);
}

/* The vmclock memslot mapped and the guest state reset, for @vm. */
static void setup_vm(struct kvm_vm *vm, struct kvm_vcpu **vcpus,
		     int nr_vcpus, u32 slot_flags)
{
	int i;

	add_vmclock_slot(vm, slot_flags);
	virt_map(vm, VMCLOCK_GVA, VMCLOCK_GPA, VMCLOCK_NPAGES);

	memset(guest_op, 0, sizeof(guest_op));
	guest_stop = false;
	sync_global_to_guest(vm, guest_stop);
	memset(guest_spinning, 0, sizeof(guest_spinning));
	sync_global_to_guest(vm, guest_spinning);
	for (i = 0; i < nr_vcpus; i++)
		setup_vcpu(vcpus[i]);
}

static struct kvm_vm *create_vm(struct kvm_vcpu **vcpus, int nr_vcpus)
{
	struct kvm_vm *vm;

	TEST_ASSERT(nr_vcpus <= MAX_VCPUS, "%d vCPUs, at most %d here",
		    nr_vcpus, MAX_VCPUS);
	vm = vm_create_with_vcpus(nr_vcpus, guest_code, vcpus);
	setup_vm(vm, vcpus, nr_vcpus, 0);

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
	struct kvm_vmclock cfg;

	if (r->status == expect)
		return;

	/* guest_tsc_khz is 0 if the vCPUs' TSC rates differ. */
	memset(&cfg, 0, sizeof(cfg));
	vm_ioctl(vm, KVM_GET_VMCLOCK, &cfg);
	TEST_FAIL("%s: guest read %s, expected %s (KVM_GET_VMCLOCK status 0x%x, guest_tsc_khz %u)",
		  what, vmclock_read_status_name(r->status),
		  vmclock_read_status_name(expect), cfg.status,
		  cfg.guest_tsc_khz);
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

static int __set_vmclock(struct kvm_vm *vm, u64 gpa, u32 size, u16 mode,
			 u16 flags, int notify_fd)
{
	struct kvm_vmclock cfg = {
		.gpa = gpa,
		.size = size,
		.mode = mode,
		.flags = flags,
		.notify_fd = notify_fd,
	};

	return __vm_ioctl(vm, KVM_SET_VMCLOCK, &cfg);
}

static void set_vmclock(struct kvm_vm *vm, u64 gpa, u32 size)
{
	int r = __set_vmclock(vm, gpa, size, KVM_VMCLOCK_MODE_USERSPACE, 0, -1);

	TEST_ASSERT(!r, "KVM_SET_VMCLOCK(gpa 0x%lx, size %u) failed, errno %d (%s)",
		    gpa, size, errno, strerror(errno));
}

static int disable_vmclock(struct kvm_vm *vm)
{
	return __set_vmclock(vm, KVM_VMCLOCK_GPA_DISABLED, 0, 0, 0, -1);
}

static void get_vmclock(struct kvm_vm *vm, struct kvm_vmclock *cfg)
{
	memset(cfg, 0xaa, sizeof(*cfg));
	vm_ioctl(vm, KVM_GET_VMCLOCK, cfg);
}

/*
 * What KVM_GET_VMCLOCK must say of a registration: no file descriptor and
 * no F_NOTIFY (they are local to the process that registered), no padding.
 */
static void assert_vmclock_config(const char *what, struct kvm_vm *vm,
				  u64 gpa, u32 size, u16 mode)
{
	struct kvm_vmclock cfg;
	int i;

	get_vmclock(vm, &cfg);
	TEST_ASSERT(cfg.gpa == gpa && cfg.size == size && cfg.mode == mode,
		    "%s: KVM_GET_VMCLOCK returned gpa 0x%llx size %u mode %u, expected gpa 0x%lx size %u mode %u",
		    what, cfg.gpa, cfg.size, cfg.mode, gpa, size, mode);
	TEST_ASSERT(!cfg.flags && cfg.notify_fd == -1,
		    "%s: KVM_GET_VMCLOCK returned flags 0x%x notify_fd %d, expected 0 and -1",
		    what, cfg.flags, cfg.notify_fd);
	TEST_ASSERT(!cfg.pad, "%s: KVM_GET_VMCLOCK returned pad 0x%x", what,
		    cfg.pad);
	for (i = 0; i < ARRAY_SIZE(cfg.reserved); i++)
		TEST_ASSERT(!cfg.reserved[i],
			    "%s: KVM_GET_VMCLOCK returned reserved[%d] = 0x%llx",
			    what, i, cfg.reserved[i]);
}

static void assert_status_bits(const char *what, struct kvm_vm *vm,
			       u32 status)
{
	struct kvm_vmclock cfg;

	get_vmclock(vm, &cfg);
	TEST_ASSERT(cfg.status == status,
		    "%s: KVM_GET_VMCLOCK status is 0x%x, expected 0x%x (bit 0: STALLED, the last write to guest memory failed)",
		    what, cfg.status, status);
}

/* The clock data of @clk as KVM_SET_VMCLOCK_HOST takes it. */
static void set_host(struct kvm_vm *vm, const struct vmclock_abi *clk)
{
	vmclock_set_host(vm, clk);
}

/*
 * New clock data on the same line (only an error bound differs): a trigger
 * that changes what is published without changing the time.
 */
static void set_new_data(struct kvm_vm *vm, struct vmclock_abi *host)
{
	host->time_esterror_nanosec++;
	set_host(vm, host);
}

static int __disrupt(struct kvm_vm *vm, u32 flags, u32 notice)
{
	struct kvm_vmclock_disruption d = { .flags = flags, .notice = notice };

	return __vm_ioctl(vm, KVM_VMCLOCK_DISRUPTION, &d);
}

/*
 * KVM_VMCLOCK_DISRUPTION, and what the guest must see of it from the next
 * update on, in @want: the VMM-owned fields of the structure.
 */
static void disrupt(struct kvm_vm *vm, struct vmclock_abi *want, u32 flags,
		    u32 notice)
{
	int r = __disrupt(vm, flags, notice);

	TEST_ASSERT(!r, "KVM_VMCLOCK_DISRUPTION(flags 0x%x, notice 0x%x) failed, errno %d (%s)",
		    flags, notice, errno, strerror(errno));

	if (flags & KVM_VMCLOCK_DISRUPTED)
		want->disruption_marker++;
	if (flags & KVM_VMCLOCK_NEW_GENERATION) {
		want->vm_generation_counter++;
		want->flags |= VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT;
	}
	if (flags & KVM_VMCLOCK_SET_NOTICE) {
		want->flags &= ~(VMCLOCK_FLAG_DISRUPTION_SOON |
				 VMCLOCK_FLAG_DISRUPTION_IMMINENT);
		if (notice & KVM_VMCLOCK_NOTICE_SOON)
			want->flags |= VMCLOCK_FLAG_DISRUPTION_SOON;
		if (notice & KVM_VMCLOCK_NOTICE_IMMINENT)
			want->flags |= VMCLOCK_FLAG_DISRUPTION_IMMINENT;
	}
}

static u64 vmclock_updates(struct kvm_vm *vm)
{
	return vm_get_stat(vm, vmclock_updates);
}

static u64 vmclock_write_failures(struct kvm_vm *vm)
{
	return vm_get_stat(vm, vmclock_write_failures);
}

static void assert_updates(const char *what, struct kvm_vm *vm, u64 before,
			   u64 delta)
{
	u64 now = vmclock_updates(vm);

	TEST_ASSERT(now - before == delta,
		    "%s: vmclock_updates went up by %lu, expected %lu",
		    what, now - before, delta);
}

/* Every flag KVM_SET_VMCLOCK_HOST accepts. */
#define RICH_FLAGS	VMCLOCK_KVM_HOST_FLAGS

/*
 * A clock that uses every field KVM relays, so that all are checked.  The
 * VMM-owned fields start as on a page KVM has not written before (zero);
 * set_rich_host() sets them too.
 */
static void make_rich_clock(struct vmclock_abi *clk)
{
	*clk = host_line;

	clk->time_type = VMCLOCK_TIME_UTC;
	clk->time_sec += UTC_TAI_OFFSET_SEC;
	clk->tai_offset_sec = (u16)UTC_TAI_OFFSET_SEC;
	clk->clock_status = VMCLOCK_STATUS_FREERUNNING;
	clk->leap_second_smearing_hint = VMCLOCK_SMEARING_NOON_LINEAR;
	clk->leap_indicator = VMCLOCK_LEAP_PRE_POS;
	clk->flags = RICH_FLAGS;
	clk->counter_period_esterror_rate_frac_sec =
		clk->counter_period_frac_sec >> 20;
	clk->counter_period_maxerror_rate_frac_sec =
		clk->counter_period_frac_sec >> 16;
	clk->time_esterror_nanosec = 1234;
	clk->time_maxerror_nanosec = 56789;
}

/*
 * The clock data of @host, and a disruption event that sets every
 * VMM-owned field, so that all fields of the structure are in use.
 */
static void set_rich_host(struct kvm_vm *vm, struct vmclock_abi *host)
{
	set_host(vm, host);
	disrupt(vm, host, KVM_VMCLOCK_DISRUPTED | KVM_VMCLOCK_NEW_GENERATION |
		KVM_VMCLOCK_SET_NOTICE, KVM_VMCLOCK_NOTICE_SOON);
}

/* Only the VMM-owned fields of @host: what survives without clock data. */
static void vmm_owned_only(struct vmclock_abi *dst,
			   const struct vmclock_abi *host)
{
	memset(dst, 0, sizeof(*dst));
	dst->disruption_marker = host->disruption_marker;
	dst->vm_generation_counter = host->vm_generation_counter;
	dst->flags = host->flags & UNRELIABLE_FLAGS;
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

static long vcpu_tsc_khz(struct kvm_vcpu *vcpu)
{
	long khz = __vcpu_ioctl(vcpu, KVM_GET_TSC_KHZ, NULL);

	TEST_ASSERT(khz > 0, "KVM_GET_TSC_KHZ on vCPU %u returned %ld, errno %d",
		    vcpu->id, khz, errno);
	return khz;
}

/* guest_tsc_khz is what KVM_GET_TSC_KHZ says for every vCPU. */
static void assert_guest_tsc_khz(const char *what, struct kvm_vm *vm,
				 struct kvm_vcpu **vcpus, int nr_vcpus)
{
	struct kvm_vmclock cfg;
	int i;

	get_vmclock(vm, &cfg);
	for (i = 0; i < nr_vcpus; i++)
		TEST_ASSERT(cfg.guest_tsc_khz == vcpu_tsc_khz(vcpus[i]),
			    "%s: KVM_GET_VMCLOCK guest_tsc_khz is %u, but KVM_GET_TSC_KHZ of vCPU %u is %ld",
			    what, cfg.guest_tsc_khz, vcpus[i]->id,
			    vcpu_tsc_khz(vcpus[i]));
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
			      KVM_VMCLOCK_MODE_USERSPACE);
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
	u64 measured_hz;
	s64 ppm;
	int i;

	vm = create_vm(vcpus, NR_VCPUS);
	set_tsc_offset_all(vcpus, NR_VCPUS, BIG_TSC_OFFSET);
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);

	make_rich_clock(&host);
	set_rich_host(vm, &host);

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
			      KVM_VMCLOCK_MODE_USERSPACE);
	assert_guest_tsc_khz("accuracy", vm, vcpus, NR_VCPUS);
	hz = (unsigned __int128)(line_b.tsc - line_a.tsc) * NSEC_PER_SEC;
	measured_hz = hz / (line_b.tai_ns - line_a.tai_ns);
	ppm = ((s64)cfg.guest_tsc_khz * 1000 - (s64)measured_hz) * 1000000 /
	      (s64)measured_hz;
	pr_info("accuracy: KVM_GET_VMCLOCK guest_tsc_khz %u, measured %lu Hz (%+ld ppm)\n",
		cfg.guest_tsc_khz, measured_hz, ppm);
	TEST_ASSERT(ppm >= -10000 && ppm <= 10000,
		    "accuracy: KVM_GET_VMCLOCK reports a guest TSC of %u kHz, but the TSC runs at %lu Hz",
		    cfg.guest_tsc_khz, measured_hz);

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
	make_rich_clock(&host);
	set_rich_host(vm, &host);
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
	struct kvm_vcpu *vcpus[NR_VCPUS + 1];
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
	make_rich_clock(&host);
	set_rich_host(vm, &host);
	disrupt(vm, &host, KVM_VMCLOCK_SET_NOTICE,
		KVM_VMCLOCK_NOTICE_SOON | KVM_VMCLOCK_NOTICE_IMMINENT);
	read_and_check("status: matched TSCs", vcpus[0], &host, BIG_TSC_OFFSET);
	assert_guest_tsc_khz("status: matched TSCs", vm, vcpus, NR_VCPUS);

	/* vCPU 1 gets another TSC: no single clock fits both. */
	set_tsc_offset(vcpus[1], OTHER_TSC_OFFSET);
	for (i = NR_VCPUS - 1; i >= 0; i--) {
		guest_read_clock(vcpus[i], &r);
		assert_read_status("status: mismatched TSC offsets", vm, &r,
				   VMCLOCK_READ_UNRELIABLE);
	}
	assert_unreliable("status: mismatched TSC offsets", clk, &host,
			  VMCLOCK_SIZE);

	/* Matched again: valid again, on whichever vCPU runs first. */
	set_tsc_offset_all(vcpus, NR_VCPUS, BIG_TSC_OFFSET);
	for (i = NR_VCPUS - 1; i >= 0; i--)
		read_and_check("status: matched again", vcpus[i], &host,
			       BIG_TSC_OFFSET);
	assert_published("status: matched again", clk, &host, BIG_TSC_OFFSET,
			 VMCLOCK_SIZE);

	/*
	 * A vCPU created after registration, given the same TSC as the
	 * others before it runs: the clock stays valid, on every vCPU.
	 */
	vcpus[NR_VCPUS] = vm_vcpu_add(vm, NR_VCPUS, guest_code);
	setup_vcpu(vcpus[NR_VCPUS]);
	set_tsc_offset(vcpus[NR_VCPUS], BIG_TSC_OFFSET);
	for (i = NR_VCPUS; i >= 0; i--)
		read_and_check("status: a vCPU added with the same TSC",
			       vcpus[i], &host, BIG_TSC_OFFSET);
	assert_published("status: a vCPU added with the same TSC", clk, &host,
			 BIG_TSC_OFFSET, VMCLOCK_SIZE);
	assert_guest_tsc_khz("status: a vCPU added with the same TSC", vm,
			     vcpus, NR_VCPUS + 1);

	/*
	 * A faster guest TSC than the host's: with TSC scaling that is just
	 * another ratio; without, KVM keeps the guest TSC up in catch-up mode,
	 * which is no fixed relation to the host TSC.
	 */
	if (kvm_check_cap(KVM_CAP_TSC_CONTROL)) {
		ksft_print_msg("status: TSC scaling available, no catch-up mode to test\n");
	} else {
		khz = vcpu_tsc_khz(vcpus[0]);
		vcpu_ioctl(vcpus[0], KVM_SET_TSC_KHZ,
			   (void *)(unsigned long)(khz + khz / 10));
		guest_read_clock(vcpus[0], &r);
		assert_read_status("status: TSC catch-up mode", vm, &r,
				   VMCLOCK_READ_UNRELIABLE);
		assert_unreliable("status: TSC catch-up mode", clk, &host,
				  VMCLOCK_SIZE);
		get_vmclock(vm, &cfg);
		TEST_ASSERT(!cfg.guest_tsc_khz,
			    "status: KVM_GET_VMCLOCK reports guest_tsc_khz %u although vCPU 0 runs at %ld kHz and the others at %ld kHz, expected 0",
			    cfg.guest_tsc_khz, vcpu_tsc_khz(vcpus[0]),
			    vcpu_tsc_khz(vcpus[1]));
	}

	kvm_vm_free(vm);
	ksft_test_result_pass("UNRELIABLE while the guest TSC is not fixed\n");
}

/*
 * A failed call must leave the registration alone: KVM_GET_VMCLOCK returns
 * after it exactly what it returned before.
 */
static void assert_failed_with(struct kvm_vm *vm, int r, int err,
			       const struct kvm_vmclock *before,
			       const char *name, const char *what)
{
	int saved_errno = errno;
	struct kvm_vmclock after;

	TEST_ASSERT(r == -1 && saved_errno == err,
		    "%s with %s returned %d, errno %d (%s), expected %s",
		    name, what, r, saved_errno, strerror(saved_errno),
		    strerror(err));
	get_vmclock(vm, &after);
	TEST_ASSERT(!memcmp(before, &after, sizeof(after)),
		    "%s with %s failed, but KVM_GET_VMCLOCK changed from gpa 0x%llx size %u mode %u flags 0x%x status 0x%x to gpa 0x%llx size %u mode %u flags 0x%x status 0x%x",
		    name, what, before->gpa, before->size, before->mode,
		    before->flags, before->status, after.gpa, after.size,
		    after.mode, after.flags, after.status);
}

static void expect_set_error(struct kvm_vm *vm, const struct kvm_vmclock *cfg,
			     int err, const char *what)
{
	struct kvm_vmclock before, arg = *cfg;
	int r;

	get_vmclock(vm, &before);
	r = __vm_ioctl(vm, KVM_SET_VMCLOCK, &arg);
	assert_failed_with(vm, r, err, &before, "KVM_SET_VMCLOCK", what);
}

static void expect_host_error(struct kvm_vm *vm,
			      const struct kvm_vmclock_host *host, int err,
			      const char *what)
{
	struct kvm_vmclock_host arg = *host;
	struct kvm_vmclock before;
	int r;

	get_vmclock(vm, &before);
	r = __vm_ioctl(vm, KVM_SET_VMCLOCK_HOST, &arg);
	assert_failed_with(vm, r, err, &before, "KVM_SET_VMCLOCK_HOST", what);
}

static void expect_disruption_error(struct kvm_vm *vm,
				    const struct kvm_vmclock_disruption *d,
				    int err, const char *what)
{
	struct kvm_vmclock_disruption arg = *d;
	struct kvm_vmclock before;
	int r;

	get_vmclock(vm, &before);
	r = __vm_ioctl(vm, KVM_VMCLOCK_DISRUPTION, &arg);
	assert_failed_with(vm, r, err, &before, "KVM_VMCLOCK_DISRUPTION", what);
}

static void expect_bad_pointer(struct kvm_vm *vm, unsigned long cmd,
			       const char *name)
{
	int r = ioctl(vm->fd, cmd, (void *)8);

	TEST_ASSERT(r == -1 && errno == EFAULT,
		    "%s with a bad pointer returned %d, errno %d, expected EFAULT",
		    name, r, errno);
}

#define GOOD_LOC	.gpa = VMCLOCK_GPA, .size = VMCLOCK_SIZE
#define USERSPACE	.mode = KVM_VMCLOCK_MODE_USERSPACE
#define MIN_SIZE	sizeof(struct vmclock_abi)

/* Invalid registrations, each with the documented error code. */
static const struct {
	const char *what;
	struct kvm_vmclock cfg;
	int err;
} set_errors[] = {
	{ "mode 0", { GOOD_LOC }, EINVAL },
	{ "mode 3", { GOOD_LOC, .mode = 3 }, EINVAL },
	{ "mode 0xffff", { GOOD_LOC, .mode = 0xffff }, EINVAL },
	{ "an unknown flag (bit 2)", { GOOD_LOC, USERSPACE, .flags = 1U << 2 },
	  EINVAL },
	{ "flag bit 15", { GOOD_LOC, USERSPACE, .flags = 1U << 15 }, EINVAL },
	{ "F_UTC in userspace mode",
	  { GOOD_LOC, USERSPACE, .flags = KVM_VMCLOCK_F_UTC }, EINVAL },
	{ "F_UTC | F_NOTIFY in userspace mode",
	  { GOOD_LOC, USERSPACE,
	    .flags = KVM_VMCLOCK_F_UTC | KVM_VMCLOCK_F_NOTIFY }, EINVAL },
	{ "an unknown flag in auto mode",
	  { GOOD_LOC, .mode = KVM_VMCLOCK_MODE_AUTO, .flags = 1U << 2 },
	  EINVAL },
	{ "nonzero pad", { GOOD_LOC, USERSPACE, .pad = 1 }, EINVAL },
	{ "nonzero reserved[0]", { GOOD_LOC, USERSPACE, .reserved = { 1 } },
	  EINVAL },
	{ "nonzero reserved[3]",
	  { GOOD_LOC, USERSPACE, .reserved = { [3] = BIT_ULL(63) } }, EINVAL },
	{ "a gpa that is not 8-byte aligned",
	  { .gpa = VMCLOCK_GPA + 4, .size = MIN_SIZE, USERSPACE }, EINVAL },
	{ "an odd gpa", { .gpa = VMCLOCK_GPA + 1, .size = MIN_SIZE, USERSPACE },
	  EINVAL },
	{ "size 0", { .gpa = VMCLOCK_GPA, USERSPACE }, EINVAL },
	{ "size below sizeof(struct vmclock_abi)",
	  { .gpa = VMCLOCK_GPA, .size = MIN_SIZE - 1, USERSPACE }, EINVAL },
	{ "size above a page",
	  { .gpa = VMCLOCK_GPA, .size = PAGE_SIZE + 1, USERSPACE }, EINVAL },
	{ "size of two pages",
	  { .gpa = VMCLOCK_GPA, .size = 2 * PAGE_SIZE, USERSPACE }, EINVAL },
	{ "a structure crossing a page",
	  { .gpa = VMCLOCK_GPA + PAGE_SIZE - 64, .size = MIN_SIZE, USERSPACE },
	  EINVAL },
	{ "a region crossing a page",
	  { .gpa = VMCLOCK_GPA + 8, .size = VMCLOCK_SIZE, USERSPACE }, EINVAL },
	{ "GPA_DISABLED and nonzero size",
	  { .gpa = KVM_VMCLOCK_GPA_DISABLED, .size = VMCLOCK_SIZE }, EINVAL },
	{ "GPA_DISABLED and a mode",
	  { .gpa = KVM_VMCLOCK_GPA_DISABLED, USERSPACE }, EINVAL },
	{ "GPA_DISABLED and nonzero flags",
	  { .gpa = KVM_VMCLOCK_GPA_DISABLED, .flags = KVM_VMCLOCK_F_NOTIFY },
	  EINVAL },
	{ "GPA_DISABLED and nonzero pad",
	  { .gpa = KVM_VMCLOCK_GPA_DISABLED, .pad = 1 }, EINVAL },
	{ "GPA_DISABLED and nonzero reserved",
	  { .gpa = KVM_VMCLOCK_GPA_DISABLED, .reserved = { [2] = 1 } }, EINVAL },
	{ "a gpa outside any memslot",
	  { .gpa = UNBACKED_GPA, .size = VMCLOCK_SIZE, USERSPACE }, EFAULT },
	{ "a gpa in a read-only memslot",
	  { .gpa = RO_GPA, .size = VMCLOCK_SIZE, USERSPACE }, EFAULT },
};

/*
 * The fields of struct kvm_vmclock_host in order, up to reserved[]; they
 * follow each other without holes, so each one's length is the distance to
 * the next.
 */
#define HFIELD(f) { #f, offsetof(struct kvm_vmclock_host, f) }

static const struct field_desc host_fields[] = {
	HFIELD(counter_value), HFIELD(period_frac_sec),
	HFIELD(period_esterror_rate_frac_sec),
	HFIELD(period_maxerror_rate_frac_sec), HFIELD(time_sec),
	HFIELD(time_frac_sec), HFIELD(time_esterror_nanosec),
	HFIELD(time_maxerror_nanosec), HFIELD(flags), HFIELD(period_shift),
	HFIELD(time_type), HFIELD(clock_status), HFIELD(leap_indicator),
	HFIELD(leap_second_smearing_hint), HFIELD(pad), HFIELD(tai_offset_sec),
	HFIELD(reserved),
};

/* Set field @name of @h (not reserved[]) to @value. */
static void set_host_field(struct kvm_vmclock_host *h, const char *name,
			   u64 value)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(host_fields) - 1; i++) {
		if (strcmp(host_fields[i].name, name))
			continue;
		memcpy((void *)h + host_fields[i].offset, &value,
		       host_fields[i + 1].offset - host_fields[i].offset);
		return;
	}
	TEST_FAIL("No field %s in struct kvm_vmclock_host", name);
}

/* Invalid clock data: one field of a valid clock changed. */
static const struct {
	const char *what;
	const char *field;
	u64 value;
} host_errors[] = {
	{ "period_shift 64", "period_shift", 64 },
	{ "period_shift 255", "period_shift", 255 },
	{ "a zero period", "period_frac_sec", 0 },
	{ "an unknown clock_status", "clock_status",
	  VMCLOCK_STATUS_UNRELIABLE + 1 },
	{ "an unknown time_type", "time_type",
	  VMCLOCK_TIME_INVALID_MAYBE_SMEARED + 1 },
	{ "an unknown leap_indicator", "leap_indicator",
	  VMCLOCK_LEAP_POST_NEG + 1 },
	{ "an unknown smearing hint", "leap_second_smearing_hint",
	  VMCLOCK_SMEARING_UTC_SLS + 1 },
	{ "nonzero pad", "pad", 0x80 },
	{ "the VMM-owned flag DISRUPTION_SOON", "flags",
	  RICH_FLAGS | VMCLOCK_FLAG_DISRUPTION_SOON },
	{ "the VMM-owned flag DISRUPTION_IMMINENT", "flags",
	  RICH_FLAGS | VMCLOCK_FLAG_DISRUPTION_IMMINENT },
	{ "the VMM-owned flag VM_GEN_COUNTER_PRESENT", "flags",
	  RICH_FLAGS | VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT },
	{ "KVM's flag NOTIFICATION_PRESENT", "flags",
	  RICH_FLAGS | VMCLOCK_FLAG_NOTIFICATION_PRESENT },
	{ "unknown flag bit 10", "flags",
	  RICH_FLAGS | (VMCLOCK_FLAG_NOTIFICATION_PRESENT << 1) },
	{ "unknown flag bit 63", "flags", RICH_FLAGS | BIT_ULL(63) },
};

/* Invalid disruption events, all EINVAL. */
static const struct {
	const char *what;
	struct kvm_vmclock_disruption d;
} disruption_errors[] = {
	{ "an unknown flag (bit 3)", { .flags = 1U << 3 } },
	{ "flag bit 31", { .flags = KVM_VMCLOCK_DISRUPTED | (1U << 31) } },
	{ "an unknown notice bit (bit 2)",
	  { .flags = KVM_VMCLOCK_SET_NOTICE, .notice = 1U << 2 } },
	{ "notice bit 31",
	  { .flags = KVM_VMCLOCK_SET_NOTICE,
	    .notice = KVM_VMCLOCK_NOTICE_SOON | (1U << 31) } },
	{ "a notice without SET_NOTICE",
	  { .flags = KVM_VMCLOCK_DISRUPTED,
	    .notice = KVM_VMCLOCK_NOTICE_SOON } },
	{ "a notice and no flag", { .notice = KVM_VMCLOCK_NOTICE_IMMINENT } },
	{ "nonzero reserved[0]",
	  { .flags = KVM_VMCLOCK_DISRUPTED, .reserved = { 1 } } },
	{ "nonzero reserved[2]",
	  { .flags = KVM_VMCLOCK_NEW_GENERATION,
	    .reserved = { [2] = BIT_ULL(63) } } },
};

/* F_NOTIFY with a file descriptor that is no eventfd, or none at all. */
static void check_notify_fd_errors(struct kvm_vm *vm)
{
	struct kvm_vmclock cfg = {
		GOOD_LOC, USERSPACE, .flags = KVM_VMCLOCK_F_NOTIFY,
	};
	int fds[2], closed;

	cfg.notify_fd = -1;
	expect_set_error(vm, &cfg, EBADF, "F_NOTIFY and notify_fd -1");

	closed = eventfd(0, EFD_NONBLOCK);
	TEST_ASSERT(closed >= 0, "eventfd() failed, errno %d", errno);
	close(closed);
	cfg.notify_fd = closed;
	expect_set_error(vm, &cfg, EBADF, "F_NOTIFY and a closed eventfd");

	TEST_ASSERT(!pipe(fds), "pipe() failed, errno %d", errno);
	cfg.notify_fd = fds[0];
	expect_set_error(vm, &cfg, EINVAL, "F_NOTIFY and a pipe, not an eventfd");
	close(fds[0]);
	close(fds[1]);

	cfg.notify_fd = vm->fd;
	expect_set_error(vm, &cfg, EINVAL, "F_NOTIFY and the VM's fd");
}

static void check_set_errors(struct kvm_vm *vm)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(set_errors); i++)
		expect_set_error(vm, &set_errors[i].cfg, set_errors[i].err,
				 set_errors[i].what);
	if (kvm_check_cap(KVM_CAP_VMCLOCK) & KVM_VMCLOCK_CAP_NOTIFY)
		check_notify_fd_errors(vm);
	expect_bad_pointer(vm, KVM_SET_VMCLOCK, "KVM_SET_VMCLOCK");
}

static void check_host_errors(struct kvm_vm *vm, const struct vmclock_abi *good)
{
	struct kvm_vmclock_host h, base;
	int i;

	vmclock_host_from_abi(&base, good);
	for (i = 0; i < ARRAY_SIZE(host_errors); i++) {
		h = base;
		set_host_field(&h, host_errors[i].field, host_errors[i].value);
		expect_host_error(vm, &h, EINVAL, host_errors[i].what);
	}
	h = base;
	h.reserved[0] = 1;
	expect_host_error(vm, &h, EINVAL, "nonzero reserved[0]");
	h = base;
	h.reserved[ARRAY_SIZE(h.reserved) - 1] = BIT_ULL(63);
	expect_host_error(vm, &h, EINVAL, "nonzero reserved[5]");

	/* Moving this reference point to the present makes the time negative. */
	h = base;
	h.counter_value = rdtsc() + BIT_ULL(44);
	h.time_sec = 1;
	h.time_frac_sec = 0;
	expect_host_error(vm, &h, EINVAL, "a counter_value far in the future");
	expect_bad_pointer(vm, KVM_SET_VMCLOCK_HOST, "KVM_SET_VMCLOCK_HOST");
}

static void check_disruption_errors(struct kvm_vm *vm)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(disruption_errors); i++)
		expect_disruption_error(vm, &disruption_errors[i].d, EINVAL,
					disruption_errors[i].what);
	expect_bad_pointer(vm, KVM_VMCLOCK_DISRUPTION, "KVM_VMCLOCK_DISRUPTION");
}

/* ENOENT from the calls that need a registered vmclock. */
static void check_unregistered(struct kvm_vm *vm, const struct vmclock_abi *good,
			       const char *what)
{
	struct kvm_vmclock_disruption d = { .flags = KVM_VMCLOCK_DISRUPTED };
	struct kvm_vmclock_host h;

	vmclock_host_from_abi(&h, good);
	expect_host_error(vm, &h, ENOENT, what);
	expect_disruption_error(vm, &d, ENOENT, what);
	d.flags = KVM_VMCLOCK_SET_NOTICE;
	d.notice = KVM_VMCLOCK_NOTICE_SOON;
	expect_disruption_error(vm, &d, ENOENT, what);
}

/* 5: every error path, and that a failed call changes nothing. */
static void test_errors(void)
{
	u8 snapshot[VMCLOCK_SIZE];
	struct vmclock_abi host, owned, *clk;
	struct guest_reading r;
	struct kvm_vmclock cfg;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u64 updates;

	make_rich_clock(&host);

	/* A VM without vCPUs or registration. */
	vm = vm_create_barebones();
	get_vmclock(vm, &cfg);
	TEST_ASSERT(cfg.gpa == KVM_VMCLOCK_GPA_DISABLED && !cfg.size &&
		    !cfg.mode && !cfg.flags && cfg.notify_fd == -1 &&
		    !cfg.status && !cfg.guest_tsc_khz,
		    "errors: KVM_GET_VMCLOCK of a new VM returned gpa 0x%llx size %u mode %u flags 0x%x notify_fd %d status 0x%x guest_tsc_khz %u, expected GPA_DISABLED, notify_fd -1 and zeroes",
		    cfg.gpa, cfg.size, cfg.mode, cfg.flags, cfg.notify_fd,
		    cfg.status, cfg.guest_tsc_khz);
	check_unregistered(vm, &host, "no vmclock registered, no vCPU");
	expect_bad_pointer(vm, KVM_GET_VMCLOCK, "KVM_GET_VMCLOCK");
	kvm_vm_free(vm);

	vm = create_vm(&vcpu, 1);
	clk = vmclock_hva(vm);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, RO_GPA, RO_SLOT,
				    1, KVM_MEM_READONLY);
	check_unregistered(vm, &host, "no vmclock registered");

	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	set_rich_host(vm, &host);
	read_and_check("errors: before", vcpu, &host, tsc_offset(vcpu));
	memcpy(snapshot, clk, VMCLOCK_SIZE);
	updates = vmclock_updates(vm);

	check_set_errors(vm);
	assert_vmclock_config("errors: after failed KVM_SET_VMCLOCK", vm,
			      VMCLOCK_GPA, VMCLOCK_SIZE,
			      KVM_VMCLOCK_MODE_USERSPACE);
	check_host_errors(vm, &host);
	check_disruption_errors(vm);

	/* Nothing changed: no update, the same data in guest memory. */
	read_and_check("errors: after", vcpu, &host, tsc_offset(vcpu));
	assert_updates("errors: after failed calls", vm, updates, 0);
	TEST_ASSERT(!memcmp(snapshot, clk, VMCLOCK_SIZE),
		    "errors: guest memory changed after failed calls");

	/* Disabling stops updates and forgets the data, memory stays. */
	TEST_ASSERT(!disable_vmclock(vm),
		    "errors: disabling the vmclock failed, errno %d", errno);
	assert_vmclock_config("errors: disabled", vm, KVM_VMCLOCK_GPA_DISABLED,
			      0, 0);
	check_unregistered(vm, &host, "the vmclock disabled");
	set_tsc_offset(vcpu, BIG_TSC_OFFSET);
	run_sync(vcpu);
	assert_updates("errors: disabled, TSC offset changed", vm, updates, 0);
	TEST_ASSERT(!memcmp(snapshot, clk, VMCLOCK_SIZE),
		    "errors: guest memory changed after the vmclock was disabled");

	/*
	 * Registered again, it is unreliable until data is supplied again.
	 * The page holds a vmclock KVM wrote: the VMM-owned fields carry on
	 * from there.
	 */
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	guest_read_clock(vcpu, &r);
	assert_read_status("errors: registered again", vm, &r,
			   VMCLOCK_READ_UNRELIABLE);
	vmm_owned_only(&owned, &host);
	assert_unreliable("errors: registered again", clk, &owned,
			  VMCLOCK_SIZE);
	set_host(vm, &host);
	read_and_check("errors: data supplied again", vcpu, &host,
		       BIG_TSC_OFFSET);
	assert_published("errors: data supplied again", clk, &host,
			 BIG_TSC_OFFSET, VMCLOCK_SIZE);

	kvm_vm_free(vm);
	ksft_test_result_pass("error paths change nothing\n");
}

/*
 * Fill the page behind the vmclock the way memory that KVM must rewrite
 * looks, as new memory restored from what KVM wrote last (@last) would:
 * every field garbled but seq_count and the VMM-owned ones, which are what
 * KVM left there (so KVM finds no foreign write whose fields to adopt).
 */
static void garble_page(struct vmclock_abi *clk, const struct vmclock_abi *last)
{
	memset(clk, 0xee, PAGE_SIZE);
	clk->seq_count = last->seq_count;
	clk->disruption_marker = last->disruption_marker;
	clk->vm_generation_counter = last->vm_generation_counter;
	clk->flags = (clk->flags & ~VMM_FLAGS) | (last->flags & VMM_FLAGS);
}

/*
 * 6: KVM_GET_VMCLOCK's output is a valid KVM_SET_VMCLOCK argument (as on a
 * migration destination) and setting it changes nothing.
 */
static void test_get_set(void)
{
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct kvm_vmclock cfg, again;
	struct vmclock_abi host, *clk;
	struct kvm_vm *vm;
	int i, r;

	vm = create_vm(vcpus, NR_VCPUS);
	clk = vmclock_hva(vm);
	set_tsc_offset_all(vcpus, NR_VCPUS, BIG_TSC_OFFSET);
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	make_rich_clock(&host);
	set_rich_host(vm, &host);
	read_and_check("get/set: before", vcpus[0], &host, BIG_TSC_OFFSET);

	/* notify_fd -1, no F_NOTIFY, status clear, the vCPUs' TSC rate. */
	assert_vmclock_config("get/set", vm, VMCLOCK_GPA, VMCLOCK_SIZE,
			      KVM_VMCLOCK_MODE_USERSPACE);
	assert_status_bits("get/set", vm, 0);
	assert_guest_tsc_khz("get/set", vm, vcpus, NR_VCPUS);

	get_vmclock(vm, &cfg);
	r = __vm_ioctl(vm, KVM_SET_VMCLOCK, &cfg);
	TEST_ASSERT(!r,
		    "get/set: KVM_SET_VMCLOCK with what KVM_GET_VMCLOCK returned failed, errno %d (%s)",
		    errno, strerror(errno));
	get_vmclock(vm, &again);
	TEST_ASSERT(!memcmp(&cfg, &again, sizeof(cfg)),
		    "get/set: KVM_GET_VMCLOCK changed after setting its own output: gpa 0x%llx size %u mode %u guest_tsc_khz %u, was gpa 0x%llx size %u mode %u guest_tsc_khz %u",
		    again.gpa, again.size, again.mode, again.guest_tsc_khz,
		    cfg.gpa, cfg.size, cfg.mode, cfg.guest_tsc_khz);
	for (i = NR_VCPUS - 1; i >= 0; i--)
		read_and_check("get/set: after", vcpus[i], &host,
			       BIG_TSC_OFFSET);
	assert_published("get/set: after", clk, &host, BIG_TSC_OFFSET,
			 VMCLOCK_SIZE);

	/* Output fields, and notify_fd without F_NOTIFY, are ignored. */
	cfg.status = KVM_VMCLOCK_STATUS_STALLED;
	cfg.guest_tsc_khz = 1;
	cfg.notify_fd = 0x7fffffff;
	r = __vm_ioctl(vm, KVM_SET_VMCLOCK, &cfg);
	TEST_ASSERT(!r,
		    "get/set: KVM_SET_VMCLOCK with status, guest_tsc_khz and notify_fd (no F_NOTIFY) set failed, errno %d (%s): they are to be ignored",
		    errno, strerror(errno));
	get_vmclock(vm, &cfg);
	TEST_ASSERT(!memcmp(&cfg, &again, sizeof(cfg)),
		    "get/set: KVM_GET_VMCLOCK changed after a registration with ignored fields set: status 0x%x guest_tsc_khz %u notify_fd %d",
		    cfg.status, cfg.guest_tsc_khz, cfg.notify_fd);
	read_and_check("get/set: ignored fields", vcpus[0], &host,
		       BIG_TSC_OFFSET);
	assert_published("get/set: ignored fields", clk, &host, BIG_TSC_OFFSET,
			 VMCLOCK_SIZE);

	kvm_vm_free(vm);
	ksft_test_result_pass("KVM_GET_VMCLOCK output set again changes nothing\n");
}

/* 7: KVM_VMCLOCK_DISRUPTION: the VMM-owned fields, in both modes. */
static void test_disruption(void)
{
	struct kvm_vmclock_disruption d = { .flags = KVM_VMCLOCK_DISRUPTED };
	struct vmclock_abi host, *clk;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u64 updates, offset, foreign, marker, gen;
	u32 seq;
	int r;

	vm = create_vm(&vcpu, 1);
	clk = vmclock_hva(vm);
	offset = tsc_offset(vcpu);
	expect_disruption_error(vm, &d, ENOENT, "no vmclock registered");

	/* A fresh page: the VMM-owned fields start from zero. */
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	make_rich_clock(&host);
	set_host(vm, &host);
	run_sync(vcpu);
	assert_published("disruption: none yet", clk, &host, offset,
			 VMCLOCK_SIZE);

	updates = vmclock_updates(vm);
	disrupt(vm, &host, KVM_VMCLOCK_DISRUPTED, 0);
	run_sync(vcpu);
	assert_published("disruption: one DISRUPTED", clk, &host, offset,
			 VMCLOCK_SIZE);
	assert_updates("disruption: one DISRUPTED", vm, updates, 1);

	/* Each call counts, even when one update publishes them all. */
	disrupt(vm, &host, KVM_VMCLOCK_DISRUPTED, 0);
	disrupt(vm, &host, KVM_VMCLOCK_DISRUPTED, 0);
	disrupt(vm, &host, KVM_VMCLOCK_DISRUPTED, 0);
	run_sync(vcpu);
	assert_published("disruption: three DISRUPTED before one run", clk,
			 &host, offset, VMCLOCK_SIZE);
	TEST_ASSERT(clk->disruption_marker == 4,
		    "disruption: disruption_marker is %llu after 4 DISRUPTED calls on a fresh page",
		    clk->disruption_marker);

	disrupt(vm, &host, KVM_VMCLOCK_NEW_GENERATION, 0);
	run_sync(vcpu);
	assert_published("disruption: NEW_GENERATION", clk, &host, offset,
			 VMCLOCK_SIZE);
	TEST_ASSERT(clk->vm_generation_counter == 1 &&
		    (clk->flags & VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT),
		    "disruption: after NEW_GENERATION vm_generation_counter is %llu, flags 0x%llx: expected 1 and VM_GEN_COUNTER_PRESENT",
		    clk->vm_generation_counter, clk->flags);

	disrupt(vm, &host,
		KVM_VMCLOCK_DISRUPTED | KVM_VMCLOCK_NEW_GENERATION, 0);
	run_sync(vcpu);
	assert_published("disruption: DISRUPTED | NEW_GENERATION", clk, &host,
			 offset, VMCLOCK_SIZE);

	disrupt(vm, &host, KVM_VMCLOCK_SET_NOTICE, KVM_VMCLOCK_NOTICE_SOON);
	run_sync(vcpu);
	assert_published("disruption: notice SOON", clk, &host, offset,
			 VMCLOCK_SIZE);
	disrupt(vm, &host, KVM_VMCLOCK_SET_NOTICE,
		KVM_VMCLOCK_NOTICE_SOON | KVM_VMCLOCK_NOTICE_IMMINENT);
	run_sync(vcpu);
	assert_published("disruption: notice SOON | IMMINENT", clk, &host,
			 offset, VMCLOCK_SIZE);
	disrupt(vm, &host, KVM_VMCLOCK_SET_NOTICE,
		KVM_VMCLOCK_NOTICE_IMMINENT);
	run_sync(vcpu);
	assert_published("disruption: notice IMMINENT", clk, &host, offset,
			 VMCLOCK_SIZE);
	disrupt(vm, &host, KVM_VMCLOCK_SET_NOTICE, 0);
	run_sync(vcpu);
	assert_published("disruption: notice cleared", clk, &host, offset,
			 VMCLOCK_SIZE);
	TEST_ASSERT(!(clk->flags & (VMCLOCK_FLAG_DISRUPTION_SOON |
				    VMCLOCK_FLAG_DISRUPTION_IMMINENT)) &&
		    (clk->flags & VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT),
		    "disruption: flags 0x%llx after clearing the notice: SOON and IMMINENT must be clear, VM_GEN_COUNTER_PRESENT kept",
		    clk->flags);
	read_and_check("disruption: the time itself", vcpu, &host, offset);

	/*
	 * A VMM bumps the marker itself while the vCPUs are paused (as QEMU
	 * does after a migration): KVM takes it over, adds the next
	 * DISRUPTED on top and continues seq_count from the VMM's.
	 */
	seq = clk->seq_count;
	WRITE_ONCE(clk->seq_count, seq + 1);
	WRITE_ONCE(clk->disruption_marker, clk->disruption_marker + 1);
	WRITE_ONCE(clk->seq_count, seq + 2);
	host.disruption_marker++;
	foreign = vm_get_stat(vm, vmclock_foreign_writes);
	disrupt(vm, &host, KVM_VMCLOCK_DISRUPTED, 0);
	run_sync(vcpu);
	assert_published("disruption: after a VMM's own bump", clk, &host,
			 offset, VMCLOCK_SIZE);
	TEST_ASSERT(clk->seq_count == seq + 4,
		    "disruption: seq_count 0x%x after KVM's update over the VMM's 0x%x, expected 0x%x",
		    clk->seq_count, seq + 2, seq + 4);
	TEST_ASSERT(vm_get_stat(vm, vmclock_foreign_writes) - foreign == 1,
		    "disruption: vmclock_foreign_writes went up by %lu over one VMM write, expected 1",
		    vm_get_stat(vm, vmclock_foreign_writes) - foreign);

	/* Automatic mode at the same place: the fields carry on. */
	if (kvm_check_cap(KVM_CAP_VMCLOCK) & KVM_VMCLOCK_CAP_AUTO) {
		r = __set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE,
				  KVM_VMCLOCK_MODE_AUTO, 0, -1);
		TEST_ASSERT(!r, "disruption: KVM_SET_VMCLOCK in auto mode failed, errno %d",
			    errno);
		run_sync(vcpu);
		marker = clk->disruption_marker;
		gen = clk->vm_generation_counter;
		TEST_ASSERT(marker == host.disruption_marker &&
			    gen == host.vm_generation_counter,
			    "disruption: auto mode registered over the userspace vmclock published marker %lu generation %lu, expected %llu and %llu",
			    marker, gen, host.disruption_marker,
			    host.vm_generation_counter);
		disrupt(vm, &host,
			KVM_VMCLOCK_DISRUPTED | KVM_VMCLOCK_NEW_GENERATION, 0);
		run_sync(vcpu);
		TEST_ASSERT(!(clk->seq_count & 1) &&
			    clk->disruption_marker == marker + 1 &&
			    clk->vm_generation_counter == gen + 1,
			    "disruption: auto mode: marker %llu generation %llu seq_count 0x%x after DISRUPTED | NEW_GENERATION, expected %lu and %lu",
			    clk->disruption_marker, clk->vm_generation_counter,
			    clk->seq_count, marker + 1, gen + 1);
	} else {
		ksft_print_msg("disruption: no auto mode, checked in userspace mode only\n");
	}

	kvm_vm_free(vm);
	ksft_test_result_pass("KVM_VMCLOCK_DISRUPTION sets the VMM-owned fields\n");
}

/* The count of eventfd @fd, 0 if it was not signalled (EAGAIN). */
static u64 eventfd_count(int fd)
{
	u64 count;
	ssize_t n;

	n = read(fd, &count, sizeof(count));
	if (n < 0) {
		TEST_ASSERT(errno == EAGAIN,
			    "read() of the notification eventfd failed, errno %d",
			    errno);
		return 0;
	}
	TEST_ASSERT(n == sizeof(count), "read() of an eventfd returned %ld",
		    n);
	return count;
}

/* 8: F_NOTIFY: one eventfd signal per update KVM publishes. */
static void test_notify(void)
{
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct vmclock_abi host, last, *clk;
	struct kvm_vmclock cfg;
	u64 updates, count, offset;
	struct kvm_vm *vm;
	int efd, fd, i, r;

	if (!(kvm_check_cap(KVM_CAP_VMCLOCK) & KVM_VMCLOCK_CAP_NOTIFY)) {
		ksft_test_result_skip("notify: KVM_CAP_VMCLOCK has no KVM_VMCLOCK_CAP_NOTIFY\n");
		return;
	}

	efd = eventfd(0, EFD_NONBLOCK);
	TEST_ASSERT(efd >= 0, "eventfd() failed, errno %d", errno);

	vm = create_vm(vcpus, NR_VCPUS);
	clk = vmclock_hva(vm);
	offset = BIG_TSC_OFFSET;
	set_tsc_offset_all(vcpus, NR_VCPUS, offset);
	run_all(vcpus, NR_VCPUS);

	/*
	 * KVM holds the eventfd itself, not the number: register with a
	 * duplicate and close it.
	 */
	fd = dup(efd);
	TEST_ASSERT(fd >= 0, "dup() failed, errno %d", errno);
	updates = vmclock_updates(vm);
	r = __set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE,
			  KVM_VMCLOCK_MODE_USERSPACE, KVM_VMCLOCK_F_NOTIFY, fd);
	TEST_ASSERT(!r,
		    "notify: KVM_SET_VMCLOCK with F_NOTIFY and an eventfd failed, errno %d (%s)",
		    errno, strerror(errno));
	close(fd);
	assert_vmclock_config("notify", vm, VMCLOCK_GPA, VMCLOCK_SIZE,
			      KVM_VMCLOCK_MODE_USERSPACE);

	make_rich_clock(&host);
	host.flags |= VMCLOCK_FLAG_NOTIFICATION_PRESENT;
	set_rich_host(vm, &host);
	run_all(vcpus, NR_VCPUS);
	assert_published("notify: registered", clk, &host, offset,
			 VMCLOCK_SIZE);
	updates = vmclock_updates(vm) - updates;
	count = eventfd_count(efd);
	TEST_ASSERT(updates && count == updates,
		    "notify: the eventfd counted %lu signals for the first %lu updates",
		    count, updates);

	/* Every kind of trigger, each followed by a run of every vCPU. */
	updates = vmclock_updates(vm);
	for (i = 0; i < NR_NOTIFY_TRIGGERS; i++) {
		switch (i % 3) {
		case 0:
			set_new_data(vm, &host);
			break;
		case 1:
			disrupt(vm, &host, KVM_VMCLOCK_DISRUPTED, 0);
			break;
		default:
			offset = offset == BIG_TSC_OFFSET ? OTHER_TSC_OFFSET :
							    BIG_TSC_OFFSET;
			set_tsc_offset_all(vcpus, NR_VCPUS, offset);
			break;
		}
		run_all(vcpus, NR_VCPUS);
	}
	updates = vmclock_updates(vm) - updates;
	count = eventfd_count(efd);
	TEST_ASSERT(updates == NR_NOTIFY_TRIGGERS,
		    "notify: %d triggers gave %lu updates", NR_NOTIFY_TRIGGERS,
		    updates);
	TEST_ASSERT(count == updates,
		    "notify: the eventfd counted %lu signals for %lu updates, expected one per update",
		    count, updates);
	read_and_check("notify: after the triggers", vcpus[0], &host, offset);
	assert_published("notify: after the triggers", clk, &host, offset,
			 VMCLOCK_SIZE);

	/* No trigger: no update, no signal. */
	run_all(vcpus, NR_VCPUS);
	count = eventfd_count(efd);
	TEST_ASSERT(!count,
		    "notify: the eventfd counted %lu signals over runs without a trigger, expected none (EAGAIN)",
		    count);

	/* A write that stalls publishes nothing: no signal until it is done. */
	last = *clk;
	vm_mem_region_delete(vm, VMCLOCK_SLOT);
	set_new_data(vm, &host);
	run_all(vcpus, NR_VCPUS);
	assert_status_bits("notify: memslot deleted", vm,
			   KVM_VMCLOCK_STATUS_STALLED);
	count = eventfd_count(efd);
	TEST_ASSERT(!count,
		    "notify: the eventfd counted %lu signals for writes that stalled, expected none",
		    count);
	updates = vmclock_updates(vm);
	add_vmclock_slot(vm, 0);
	clk = vmclock_hva(vm);
	garble_page(clk, &last);
	run_all(vcpus, NR_VCPUS);
	assert_status_bits("notify: memslot back", vm, 0);
	assert_published("notify: memslot back", clk, &host, offset,
			 VMCLOCK_SIZE);
	updates = vmclock_updates(vm) - updates;
	count = eventfd_count(efd);
	TEST_ASSERT(updates == 1 && count == 1,
		    "notify: %lu updates and %lu signals once the memslot was back, expected 1 and 1",
		    updates, count);

	/*
	 * Registered again from KVM_GET_VMCLOCK's output, i.e. without
	 * F_NOTIFY: the guest no longer sees NOTIFICATION_PRESENT and the
	 * old eventfd is not signalled any more.
	 */
	get_vmclock(vm, &cfg);
	r = __vm_ioctl(vm, KVM_SET_VMCLOCK, &cfg);
	TEST_ASSERT(!r, "notify: KVM_SET_VMCLOCK with KVM_GET_VMCLOCK's output failed, errno %d",
		    errno);
	host.flags &= ~VMCLOCK_FLAG_NOTIFICATION_PRESENT;
	set_new_data(vm, &host);
	run_all(vcpus, NR_VCPUS);
	assert_published("notify: registered without F_NOTIFY", clk, &host,
			 offset, VMCLOCK_SIZE);
	count = eventfd_count(efd);
	TEST_ASSERT(!count,
		    "notify: the eventfd counted %lu signals after registering without F_NOTIFY",
		    count);

	close(efd);
	kvm_vm_free(vm);
	ksft_test_result_pass("F_NOTIFY: one eventfd signal per update, none otherwise\n");
}

/*
 * 9: the vmclock's memslot deleted (writes stall), re-added, moved, its HVA
 * remapped.
 */
static void test_memslots(void)
{
	u8 garbled[PAGE_SIZE];
	struct vmclock_abi host, last, *clk;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u64 updates, failures, offset;
	void *p;

	vm = create_vm(&vcpu, 1);
	offset = tsc_offset(vcpu);
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	make_rich_clock(&host);
	set_rich_host(vm, &host);
	run_sync(vcpu);
	assert_published("memslots: initial", vmclock_hva(vm), &host, offset,
			 VMCLOCK_SIZE);
	assert_status_bits("memslots: initial", vm, 0);

	/*
	 * Deleted: the vCPU runs (the guest leaves the page alone), and
	 * KVM's write fails: STALLED, counted as a failure, not an update.
	 */
	updates = vmclock_updates(vm);
	failures = vmclock_write_failures(vm);
	last = *vmclock_hva(vm);
	vm_mem_region_delete(vm, VMCLOCK_SLOT);
	run_sync(vcpu);
	set_new_data(vm, &host);
	run_sync(vcpu);
	assert_updates("memslots: deleted", vm, updates, 0);
	assert_vmclock_config("memslots: deleted", vm, VMCLOCK_GPA,
			      VMCLOCK_SIZE, KVM_VMCLOCK_MODE_USERSPACE);
	assert_status_bits("memslots: deleted", vm, KVM_VMCLOCK_STATUS_STALLED);
	TEST_ASSERT(vmclock_write_failures(vm) > failures,
		    "memslots: deleted: vmclock_write_failures stayed at %lu although the write could not be done",
		    failures);

	/* Stalled, KVM does not retry at every entry. */
	failures = vmclock_write_failures(vm);
	run_sync(vcpu);
	run_sync(vcpu);
	TEST_ASSERT(vmclock_write_failures(vm) == failures,
		    "memslots: deleted: vmclock_write_failures went up by %lu over runs without a trigger or memslot change: KVM retried a stalled write",
		    vmclock_write_failures(vm) - failures);
	assert_status_bits("memslots: still deleted", vm,
			   KVM_VMCLOCK_STATUS_STALLED);

	/* Re-added with new memory: the latest data is published there. */
	add_vmclock_slot(vm, 0);
	clk = vmclock_hva(vm);
	garble_page(clk, &last);
	run_sync(vcpu);
	assert_updates("memslots: re-added", vm, updates, 1);
	assert_published("memslots: re-added", clk, &host, offset, VMCLOCK_SIZE);
	assert_status_bits("memslots: re-added", vm, 0);

	/*
	 * Moved away, with new data to write: nothing is written into the
	 * memory at its new gpa, and the write stalls again.
	 */
	last = *clk;
	garble_page(clk, &last);
	memcpy(garbled, clk, PAGE_SIZE);
	vm_mem_region_move(vm, VMCLOCK_SLOT, VMCLOCK_MOVED_GPA);
	set_new_data(vm, &host);
	run_sync(vcpu);
	assert_updates("memslots: moved away", vm, updates, 1);
	TEST_ASSERT(!memcmp(clk, garbled, PAGE_SIZE),
		    "memslots: KVM wrote the vmclock into a memslot that no longer covers its gpa");
	assert_status_bits("memslots: moved away", vm,
			   KVM_VMCLOCK_STATUS_STALLED);

	/* Moved back: published again. */
	vm_mem_region_move(vm, VMCLOCK_SLOT, VMCLOCK_GPA);
	run_sync(vcpu);
	assert_updates("memslots: moved back", vm, updates, 2);
	assert_published("memslots: moved back", clk, &host, offset,
			 VMCLOCK_SIZE);
	assert_status_bits("memslots: moved back", vm, 0);

	/*
	 * New memory behind the same HVA: KVM writes through the VMM's
	 * mapping, so the next update lands in the new page.
	 */
	last = *clk;
	p = mmap(clk, PAGE_SIZE, PROT_READ | PROT_WRITE,
		 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(p == clk, "mmap(MAP_FIXED) over the vmclock failed, errno %d",
		    errno);
	garble_page(clk, &last);
	run_sync(vcpu);
	if (clk->magic != VMCLOCK_MAGIC)
		ksft_print_msg("memslots: no republish on an HVA remap alone\n");
	set_new_data(vm, &host);
	run_sync(vcpu);
	assert_published("memslots: HVA remapped", clk, &host, offset,
			 VMCLOCK_SIZE);

	kvm_vm_free(vm);
	ksft_test_result_pass("memslot delete (STALLED), re-add, move and HVA remap\n");
}

static bool vmclock_page_dirty(struct kvm_vm *vm)
{
	u64 bitmap[1] = {};

	kvm_vm_get_dirty_log(vm, VMCLOCK_SLOT, bitmap);
	return bitmap[0] & 1;
}

/* 10: KVM's writes are dirty logged. */
static void test_dirty_log(void)
{
	struct vmclock_abi host;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u64 updates;

	vm = create_vm(&vcpu, 1);
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	make_rich_clock(&host);
	set_rich_host(vm, &host);
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

	set_new_data(vm, &host);
	run_sync(vcpu);
	assert_updates("dirty log: update", vm, updates, 1);
	TEST_ASSERT(vmclock_page_dirty(vm),
		    "dirty log: KVM updated the vmclock but the page is not in the dirty log");
	assert_published("dirty log", vmclock_hva(vm), &host, tsc_offset(vcpu),
			 VMCLOCK_SIZE);

	kvm_vm_free(vm);
	ksft_test_result_pass("updates are dirty logged\n");
}

/*
 * Whether the vmclock page is among the entries KVM pushed to @vcpu's dirty
 * ring since the last call; collects them all and resets the ring.
 */
static bool vmclock_page_in_ring(struct kvm_vcpu *vcpu, u32 *fetch)
{
	struct kvm_dirty_gfn *ring = vcpu_map_dirty_ring(vcpu), *e;
	bool found = false;

	for (;;) {
		e = &ring[*fetch % vcpu->dirty_gfns_count];
		/* Pairs with KVM's release when it pushes the entry. */
		if (smp_load_acquire(&e->flags) != KVM_DIRTY_GFN_F_DIRTY)
			break;
		/* Address space 0, offset 0 of the vmclock's memslot. */
		if (e->slot == VMCLOCK_SLOT && !e->offset)
			found = true;
		/* Hands the entry back; KVM acquires it on reset. */
		smp_store_release(&e->flags, KVM_DIRTY_GFN_F_RESET);
		(*fetch)++;
	}
	kvm_vm_reset_dirty_ring(vcpu->vm);
	return found;
}

/* 11: KVM's writes reach the dirty ring of the vCPU that made them. */
static void test_dirty_ring(void)
{
	struct vmclock_abi host;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u64 updates;
	u32 fetch = 0;

	if (!kvm_has_cap(KVM_CAP_DIRTY_LOG_RING) &&
	    !kvm_has_cap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL)) {
		ksft_test_result_skip("dirty ring: no KVM_CAP_DIRTY_LOG_RING(_ACQ_REL)\n");
		return;
	}

	/* The ring must be enabled before any vCPU is created. */
	vm = vm_create(1);
	vm_enable_dirty_ring(vm, DIRTY_RING_ENTRIES *
			     sizeof(struct kvm_dirty_gfn));
	vcpu = vm_vcpu_add(vm, 0, guest_code);
	setup_vm(vm, &vcpu, 1, KVM_MEM_LOG_DIRTY_PAGES);
	run_sync(vcpu);
	vmclock_page_in_ring(vcpu, &fetch);

	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	make_rich_clock(&host);
	set_rich_host(vm, &host);
	run_sync(vcpu);
	TEST_ASSERT(vmclock_page_in_ring(vcpu, &fetch),
		    "dirty ring: KVM wrote the vmclock but its gfn is not in the vCPU's dirty ring");
	assert_published("dirty ring: first", vmclock_hva(vm), &host,
			 tsc_offset(vcpu), VMCLOCK_SIZE);

	/* No update, no entry: the guest does not touch the page. */
	updates = vmclock_updates(vm);
	run_sync(vcpu);
	assert_updates("dirty ring: no trigger", vm, updates, 0);
	TEST_ASSERT(!vmclock_page_in_ring(vcpu, &fetch),
		    "dirty ring: the vmclock gfn was pushed although nothing wrote it");

	set_new_data(vm, &host);
	run_sync(vcpu);
	assert_updates("dirty ring: update", vm, updates, 1);
	TEST_ASSERT(vmclock_page_in_ring(vcpu, &fetch),
		    "dirty ring: KVM updated the vmclock but its gfn is not in the vCPU's dirty ring");
	assert_published("dirty ring: update", vmclock_hva(vm), &host,
			 tsc_offset(vcpu), VMCLOCK_SIZE);

	kvm_vm_free(vm);
	ksft_test_result_pass("updates are pushed to the dirty ring\n");
}

/* 12: no vmclock in private memory, which KVM cannot write through. */
static void test_private_memory(void)
{
	struct kvm_vmclock cfg = {
		.gpa = PRIVATE_GPA, .size = VMCLOCK_SIZE, USERSPACE,
	};
	struct kvm_vm *vm;
	int r;

	if (!(kvm_check_cap(KVM_CAP_VM_TYPES) &
	      BIT(KVM_X86_SW_PROTECTED_VM))) {
		ksft_test_result_skip("private memory: no SW_PROTECTED_VM type\n");
		return;
	}

	vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	TEST_ASSERT(vm_check_cap(vm, KVM_CAP_MEMORY_ATTRIBUTES) &
		    KVM_MEMORY_ATTRIBUTE_PRIVATE,
		    "private memory: a KVM_X86_SW_PROTECTED_VM without private memory attributes");
	vm_mem_add(vm, VM_MEM_SRC_ANONYMOUS, PRIVATE_GPA, PRIVATE_SLOT, 1,
		   KVM_MEM_GUEST_MEMFD, -1, 0);

	vm_mem_set_private(vm, PRIVATE_GPA, PAGE_SIZE);
	expect_set_error(vm, &cfg, EINVAL, "a gpa in private memory");
	assert_vmclock_config("private memory: refused", vm,
			      KVM_VMCLOCK_GPA_DISABLED, 0, 0);

	/* The same page shared has a userspace mapping to write through. */
	vm_mem_set_shared(vm, PRIVATE_GPA, PAGE_SIZE);
	r = __vm_ioctl(vm, KVM_SET_VMCLOCK, &cfg);
	TEST_ASSERT(!r,
		    "private memory: KVM_SET_VMCLOCK on the same gpa once shared failed, errno %d (%s)",
		    errno, strerror(errno));
	assert_vmclock_config("private memory: shared", vm, PRIVATE_GPA,
			      VMCLOCK_SIZE, KVM_VMCLOCK_MODE_USERSPACE);

	kvm_vm_free(vm);
	ksft_test_result_pass("KVM_SET_VMCLOCK on private memory: EINVAL\n");
}

/* 13: a guest that scribbles over the structure and leaves seq_count odd. */
static void test_hostile_guest(void)
{
	struct vmclock_abi host, *clk;
	struct kvm_vcpu *vcpu;
	struct ucall uc;
	struct kvm_vm *vm;
	u64 start, elapsed, offset, foreign;

	vm = create_vm(&vcpu, 1);
	clk = vmclock_hva(vm);
	offset = tsc_offset(vcpu);
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	make_rich_clock(&host);
	set_rich_host(vm, &host);
	read_and_check("hostile: before", vcpu, &host, offset);

	run_op(vcpu, OP_SCRIBBLE, &uc);
	TEST_ASSERT(clk->seq_count == HOSTILE_SEQ && clk->magic != VMCLOCK_MAGIC,
		    "hostile: the guest's garbage is not in guest memory");

	/*
	 * KVM cannot tell a guest from a VMM that wrote the page: it takes the
	 * VMM-owned fields from guest memory, whatever they are (going back
	 * to zero could repeat a disruption_marker the guest saw before), and
	 * rewrites all of its own.  seq_count continues from what was found
	 * (odd: +2 to the next odd value, +1 to stable).
	 */
	host.disruption_marker = clk->disruption_marker;
	host.vm_generation_counter = clk->vm_generation_counter;
	host.flags = (host.flags & ~VMM_FLAGS) | (clk->flags & VMM_FLAGS);
	foreign = vm_get_stat(vm, vmclock_foreign_writes);

	set_new_data(vm, &host);
	start = vmclock_host_tai_ns();
	read_and_check("hostile: after", vcpu, &host, offset);
	elapsed = vmclock_host_tai_ns() - start;
	pr_info("hostile: update over an odd seq_count took %lu us (with the guest's read)\n",
		elapsed / 1000);
	TEST_ASSERT(elapsed < MAX_PUBLISH_NS,
		    "hostile: the vCPU took %lu ms to publish over an odd seq_count",
		    elapsed / 1000000);
	assert_published("hostile: after", clk, &host, offset, VMCLOCK_SIZE);
	TEST_ASSERT(clk->seq_count == HOSTILE_SEQ + 3,
		    "hostile: seq_count is 0x%x after the update over 0x%x, expected 0x%x (found + 2, then + 1)",
		    clk->seq_count, HOSTILE_SEQ, HOSTILE_SEQ + 3);
	TEST_ASSERT(vm_get_stat(vm, vmclock_foreign_writes) - foreign == 1,
		    "hostile: vmclock_foreign_writes went up by %lu over the guest's scribbling, expected 1",
		    vm_get_stat(vm, vmclock_foreign_writes) - foreign);

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

/* 14: updates racing with a reading guest are never seen half done. */
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

/* 15: vmclock_updates counts real updates only. */
static void test_stats(void)
{
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct vmclock_abi host, *clk;
	struct kvm_vm *vm;
	u64 updates, offset, attempts, foreign, failures;
	u32 seq;

	vm = create_vm(vcpus, NR_VCPUS);
	clk = vmclock_hva(vm);
	offset = tsc_offset(vcpus[0]);
	set_tsc_offset_all(vcpus, NR_VCPUS, offset);

	updates = vmclock_updates(vm);
	attempts = vm_get_stat(vm, vmclock_write_attempts);
	foreign = vm_get_stat(vm, vmclock_foreign_writes);
	failures = vmclock_write_failures(vm);
	run_all(vcpus, NR_VCPUS);
	assert_updates("stats: nothing registered", vm, updates, 0);

	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	run_all(vcpus, NR_VCPUS);
	assert_updates("stats: registered", vm, updates, 1);

	make_rich_clock(&host);
	set_host(vm, &host);
	run_all(vcpus, NR_VCPUS);
	assert_updates("stats: clock data on two vCPUs", vm, updates, 2);

	attempts = vm_get_stat(vm, vmclock_write_attempts) - attempts;
	TEST_ASSERT(attempts >= 2,
		    "stats: vmclock_write_attempts went up by %lu for 2 updates: each update claims seq_count at least once",
		    attempts);
	attempts = vm_get_stat(vm, vmclock_write_attempts);
	run_all(vcpus, NR_VCPUS);
	assert_updates("stats: runs without a trigger", vm, updates, 2);
	TEST_ASSERT(vm_get_stat(vm, vmclock_write_attempts) == attempts,
		    "stats: vmclock_write_attempts went up from %lu to %lu without a trigger",
		    attempts, vm_get_stat(vm, vmclock_write_attempts));

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

	disrupt(vm, &host, KVM_VMCLOCK_DISRUPTED, 0);
	run_all(vcpus, NR_VCPUS);
	assert_updates("stats: a disruption", vm, updates, 3);

	set_new_data(vm, &host);
	run_all(vcpus, NR_VCPUS);
	assert_updates("stats: new clock data", vm, updates, 4);

	set_tsc_offset_all(vcpus, NR_VCPUS, BIG_TSC_OFFSET);
	run_all(vcpus, NR_VCPUS);
	assert_updates("stats: new TSC offset", vm, updates, 5);
	assert_published("stats", clk, &host, BIG_TSC_OFFSET, VMCLOCK_SIZE);

	/* KVM was the only writer, and every write went through. */
	TEST_ASSERT(vm_get_stat(vm, vmclock_foreign_writes) == foreign,
		    "stats: vmclock_foreign_writes went up by %lu although only KVM wrote the page",
		    vm_get_stat(vm, vmclock_foreign_writes) - foreign);
	TEST_ASSERT(vmclock_write_failures(vm) == failures,
		    "stats: vmclock_write_failures went up by %lu although the page was always there",
		    vmclock_write_failures(vm) - failures);

	kvm_vm_free(vm);
	ksft_test_result_pass("vmclock_updates counts real updates\n");
}

/*
 * 16: one writer per change: with many vCPUs, one trigger is one update,
 * which every vCPU's guest then reads.
 */
static void test_one_writer(void)
{
	struct kvm_vcpu *vcpus[MAX_VCPUS];
	struct vmclock_abi host, *clk;
	struct guest_reading r;
	u64 updates, before, after;
	struct kvm_vm *vm;
	u32 old_seq, seq;
	char what[64];
	int i;

	vm = create_vm(vcpus, MAX_VCPUS);
	clk = vmclock_hva(vm);
	set_tsc_offset_all(vcpus, MAX_VCPUS, BIG_TSC_OFFSET);
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	make_rich_clock(&host);
	set_rich_host(vm, &host);
	run_all(vcpus, MAX_VCPUS);
	assert_published("one writer: before", clk, &host, BIG_TSC_OFFSET,
			 VMCLOCK_SIZE);
	old_seq = stable_seq("one writer: before", clk);

	updates = vmclock_updates(vm);
	set_new_data(vm, &host);
	for (i = 0; i < MAX_VCPUS; i++) {
		snprintf(what, sizeof(what), "one writer: vCPU %d of %d", i,
			 MAX_VCPUS);
		before = vmclock_host_tai_ns();
		guest_read_clock(vcpus[i], &r);
		after = vmclock_host_tai_ns();
		assert_exact_time(what, vm, &r, &host, BIG_TSC_OFFSET, before,
				  after);
		if (!i)
			seq = r.seq;
		TEST_ASSERT(r.seq == seq && seq != old_seq,
			    "%s: the guest read seq_count 0x%x, vCPU 0 read 0x%x, before the trigger it was 0x%x: not the one new update",
			    what, r.seq, seq, old_seq);
	}
	assert_updates("one writer", vm, updates, 1);
	assert_published("one writer", clk, &host, BIG_TSC_OFFSET,
			 VMCLOCK_SIZE);

	kvm_vm_free(vm);
	ksft_test_result_pass("one update per change with %d vCPUs\n",
			      MAX_VCPUS);
}

/*
 * 18-20: the writer blocked on guest memory.  userfaultfd write-protects the
 * vmclock page, so the vCPU that publishes an update stops in its
 * compare-and-exchange of seq_count until the test lets it go, as it would
 * on a page that post-copy migration has not brought in yet.
 */
struct uffd_wp {
	int fd;
	u64 hva;
};

static bool uffd_wp_open(struct uffd_wp *u, struct kvm_vm *vm)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_THREAD_ID,
	};
	struct uffdio_register reg = {
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	u->hva = (u64)vmclock_hva(vm);
	u->fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (u->fd < 0)
		return false;

	reg.range.start = u->hva;
	reg.range.len = PAGE_SIZE;
	if (ioctl(u->fd, UFFDIO_API, &api) || ioctl(u->fd, UFFDIO_REGISTER, &reg)) {
		close(u->fd);
		return false;
	}
	return true;
}

/* Write-protect the page, or lift the protection and wake (or not) its writers. */
static void uffd_protect(struct uffd_wp *u, bool protect, bool wake)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = u->hva, .len = PAGE_SIZE },
	};

	if (protect)
		wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
	else if (!wake)
		wp.mode = UFFDIO_WRITEPROTECT_MODE_DONTWAKE;
	TEST_ASSERT(!ioctl(u->fd, UFFDIO_WRITEPROTECT, &wp),
		    "UFFDIO_WRITEPROTECT(mode 0x%llx) failed, errno %d (%s)",
		    wp.mode, errno, strerror(errno));
}

static void uffd_wake(struct uffd_wp *u)
{
	struct uffdio_range range = { .start = u->hva, .len = PAGE_SIZE };

	TEST_ASSERT(!ioctl(u->fd, UFFDIO_WAKE, &range),
		    "UFFDIO_WAKE failed, errno %d (%s)", errno, strerror(errno));
}

/*
 * Wait up to @ms for a thread to fault on the protected page, and return
 * its thread id, or 0 if none did.
 */
static u32 uffd_next_fault(struct uffd_wp *u, int ms)
{
	struct pollfd pfd = { .fd = u->fd, .events = POLLIN };
	struct uffd_msg msg;
	ssize_t n;
	int r;

	do {
		r = poll(&pfd, 1, ms);
	} while (r < 0 && errno == EINTR);
	TEST_ASSERT(r >= 0, "poll() on the userfaultfd failed, errno %d", errno);
	if (!r)
		return 0;

	n = read(u->fd, &msg, sizeof(msg));
	TEST_ASSERT(n == sizeof(msg), "read() of the userfaultfd returned %ld, errno %d",
		    n, errno);
	TEST_ASSERT(msg.event == UFFD_EVENT_PAGEFAULT &&
		    (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) &&
		    (msg.arg.pagefault.address & ~(u64)(PAGE_SIZE - 1)) == u->hva,
		    "userfaultfd: event %u flags 0x%llx at 0x%llx, expected a write fault on the vmclock page 0x%lx",
		    msg.event, msg.arg.pagefault.flags, msg.arg.pagefault.address, u->hva);
	return msg.arg.pagefault.feat.ptid;
}

/* Wait until the first @nr_vcpus vCPUs run OP_SPIN in the guest. */
static void wait_spinning(struct kvm_vm *vm, int nr_vcpus, const char *what)
{
	u32 *spinning = addr_gva2hva(vm, (gva_t)guest_spinning);
	int i, ms;

	for (i = 0; i < nr_vcpus; i++) {
		for (ms = 0; !READ_ONCE(spinning[i]); ms++) {
			TEST_ASSERT(ms < BLOCKED_WAIT_MS,
				    "%s: vCPU %d not in the guest after %d ms", what, i, ms);
			usleep(1000);
		}
	}
}

/* The counters that say what KVM did to the page. */
struct write_stats {
	u64 updates, attempts, foreign, failures;
};

static void get_write_stats(struct kvm_vm *vm, struct write_stats *s)
{
	s->updates = vmclock_updates(vm);
	s->attempts = vm_get_stat(vm, vmclock_write_attempts);
	s->foreign = vm_get_stat(vm, vmclock_foreign_writes);
	s->failures = vmclock_write_failures(vm);
}

static void assert_write_stats(const char *what, struct kvm_vm *vm,
			       const struct write_stats *before, u64 updates,
			       u64 attempts, u64 foreign)
{
	struct write_stats now;

	get_write_stats(vm, &now);
	TEST_ASSERT(now.updates - before->updates == updates &&
		    now.attempts - before->attempts == attempts &&
		    now.foreign - before->foreign == foreign &&
		    now.failures == before->failures,
		    "%s: vmclock_updates +%lu, write_attempts +%lu, foreign_writes +%lu, write_failures +%lu; expected +%lu, +%lu, +%lu, +0",
		    what, now.updates - before->updates,
		    now.attempts - before->attempts,
		    now.foreign - before->foreign,
		    now.failures - before->failures, updates, attempts, foreign);
}

/* A VM whose page holds @host and a userfaultfd on it, or NULL (skipped). */
static struct kvm_vm *blocked_setup(const char *test, struct kvm_vcpu **vcpus,
				    int nr_vcpus, struct vmclock_abi *host,
				    struct uffd_wp *u)
{
	struct kvm_vm *vm = create_vm(vcpus, nr_vcpus);

	set_tsc_offset_all(vcpus, nr_vcpus, BIG_TSC_OFFSET);
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	make_rich_clock(host);
	set_rich_host(vm, host);
	read_and_check(test, vcpus[0], host, BIG_TSC_OFFSET);

	if (uffd_wp_open(u, vm))
		return vm;

	ksft_test_result_skip("%s: no userfaultfd write-protection (errno %d)\n",
			      test, errno);
	kvm_vm_free(vm);
	return NULL;
}

/*
 * 18: while one vCPU publishes an update, and even while it waits for guest
 * memory, no other vCPU writes the page, and the VMM's ioctls go on.  The
 * other vCPUs are in KVM_RUN when the trigger kicks them all.
 */
static void test_blocked_writer(void)
{
	struct vcpu_thread threads[BLOCKED_VCPUS];
	struct kvm_vcpu *vcpus[BLOCKED_VCPUS];
	struct vmclock_abi host;
	struct write_stats before;
	struct kvm_vmclock cfg;
	struct uffd_wp u;
	struct kvm_vm *vm;
	u32 writer, other;
	u64 t0, took;
	int i;

	vm = blocked_setup("blocked writer", vcpus, BLOCKED_VCPUS, &host, &u);
	if (!vm)
		return;

	for (i = 0; i < BLOCKED_VCPUS; i++)
		guest_op[i] = OP_SPIN;
	sync_global_to_guest(vm, guest_op);
	for (i = 0; i < BLOCKED_VCPUS; i++) {
		threads[i].vcpu = vcpus[i];
		TEST_ASSERT(!pthread_create(&threads[i].tid, NULL, vcpu_thread_fn, &threads[i]),
			    "blocked writer: pthread_create failed");
	}
	wait_spinning(vm, BLOCKED_VCPUS, "blocked writer");

	get_write_stats(vm, &before);
	uffd_protect(&u, true, false);
	set_new_data(vm, &host);
	writer = uffd_next_fault(&u, BLOCKED_WAIT_MS);
	TEST_ASSERT(writer, "blocked writer: no vCPU wrote the page within %d ms of the trigger",
		    BLOCKED_WAIT_MS);

	/* The same clock data again: a trigger, but nothing new to write. */
	t0 = vmclock_host_tai_ns();
	get_vmclock(vm, &cfg);
	set_host(vm, &host);
	took = vmclock_host_tai_ns() - t0;
	TEST_ASSERT(took < NSEC_PER_SEC,
		    "blocked writer: KVM_GET_VMCLOCK and KVM_SET_VMCLOCK_HOST took %lu ms while a vCPU waited for guest memory",
		    took / 1000000);
	TEST_ASSERT(!(cfg.status & KVM_VMCLOCK_STATUS_STALLED),
		    "blocked writer: STALLED while the write is only waiting for guest memory");

	/* A retried fault of the writer itself is reported again: not another writer. */
	do {
		other = uffd_next_fault(&u, BLOCKED_WAIT_MS / 4);
		TEST_ASSERT(!other || other == writer,
			    "blocked writer: thread %u wrote the page while thread %u published the same update: two writers",
			    other, writer);
	} while (other);

	uffd_protect(&u, false, true);
	set_guest_stop(vm, true);
	for (i = 0; i < BLOCKED_VCPUS; i++)
		pthread_join(threads[i].tid, NULL);
	close(u.fd);

	assert_write_stats("blocked writer", vm, &before, 1, 1, 0);
	assert_published("blocked writer", vmclock_hva(vm), &host, BIG_TSC_OFFSET,
			 VMCLOCK_SIZE);

	kvm_vm_free(vm);
	ksft_test_result_pass("one writer with %d vCPUs in KVM_RUN, ioctls not blocked by it\n",
			      BLOCKED_VCPUS);
}

/*
 * 19: a VMM that breaks the rule and writes the page (as QEMU's vmclock
 * device bumps disruption_marker: plain stores, odd then even) between
 * KVM's read of seq_count and its compare-and-exchange.  The cmpxchg must
 * see it: KVM takes the VMM's fields and publishes again on top.
 */
static void test_racing_vmm(void)
{
	struct vcpu_thread thread = {};
	struct vmclock_abi host, *clk;
	struct write_stats before;
	struct kvm_vcpu *vcpu;
	struct uffd_wp u;
	struct kvm_vm *vm;
	u32 seq;

	vm = blocked_setup("racing VMM", &vcpu, 1, &host, &u);
	if (!vm)
		return;
	clk = vmclock_hva(vm);
	seq = stable_seq("racing VMM: before", clk);

	get_write_stats(vm, &before);
	uffd_protect(&u, true, false);
	set_new_data(vm, &host);
	thread.vcpu = vcpu;
	TEST_ASSERT(!pthread_create(&thread.tid, NULL, vcpu_thread_fn, &thread),
		    "racing VMM: pthread_create failed");
	TEST_ASSERT(uffd_next_fault(&u, BLOCKED_WAIT_MS),
		    "racing VMM: the vCPU did not write the page within %d ms",
		    BLOCKED_WAIT_MS);

	/* The writer still waits: the VMM's stores land first. */
	uffd_protect(&u, false, false);
	WRITE_ONCE(clk->seq_count, seq + 1);
	/* The update protocol: odd before the fields, even after them. */
	smp_wmb();
	WRITE_ONCE(clk->disruption_marker, clk->disruption_marker + 1);
	/* See above. */
	smp_wmb();
	WRITE_ONCE(clk->seq_count, seq + 2);
	host.disruption_marker = clk->disruption_marker;
	uffd_wake(&u);
	pthread_join(thread.tid, NULL);
	close(u.fd);

	assert_write_stats("racing VMM", vm, &before, 1, 2, 1);
	TEST_ASSERT(clk->seq_count == seq + 4,
		    "racing VMM: seq_count 0x%x, expected 0x%x (KVM's odd and even after the VMM's 0x%x)",
		    clk->seq_count, seq + 4, seq + 2);
	assert_published("racing VMM", clk, &host, BIG_TSC_OFFSET, VMCLOCK_SIZE);
	read_and_check("racing VMM: after", vcpu, &host, BIG_TSC_OFFSET);

	kvm_vm_free(vm);
	ksft_test_result_pass("a VMM writing during KVM's update is detected and kept\n");
}

static void ignore_signal(int sig)
{
}

/* A vCPU thread that enters KVM_RUN once and keeps what it returned. */
struct run_once {
	struct kvm_vcpu *vcpu;
	pthread_t tid;
	pid_t tid_nr;
	int r, err;
};

static void *vcpu_run_once_fn(void *arg)
{
	struct run_once *t = arg;

	WRITE_ONCE(t->tid_nr, gettid());
	t->r = __vcpu_run(t->vcpu);
	t->err = errno;
	return NULL;
}

/* Join @t, failing (rather than hanging) if it does not end within @ms. */
static void join_within(struct run_once *t, int ms, const char *what)
{
	struct timespec deadline;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += ms / 1000;
	deadline.tv_nsec += (ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= NSEC_PER_SEC) {
		deadline.tv_sec++;
		deadline.tv_nsec -= NSEC_PER_SEC;
	}
	r = pthread_clockjoin_np(t->tid, NULL, CLOCK_MONOTONIC, &deadline);
	TEST_ASSERT(!r, "%s: vCPU %u still in KVM_RUN after %d ms (%s)", what,
		    t->vcpu->id, ms, strerror(r));
}

/*
 * 20: the other vCPUs do not sleep on the writer: while it waits for guest
 * memory, a signal ends another vCPU's KVM_RUN at once (-EINTR), as a VMM
 * pausing its vCPUs during post-copy migration needs.  The writer itself
 * waits for the page like any guest memory access of KVM (only a fatal
 * signal ends that), then publishes once.
 */
static void test_waiting_vcpu_signalled(void)
{
	struct sigaction sa = { .sa_handler = ignore_signal };
	struct run_once runs[2] = {};
	struct kvm_vcpu *vcpus[2];
	struct run_once *writer = NULL, *waiter = NULL;
	struct write_stats before;
	struct vmclock_abi host;
	struct uffd_wp u;
	struct kvm_vm *vm;
	pid_t faulting;
	int i;

	vm = blocked_setup("signalled waiter", vcpus, 2, &host, &u);
	if (!vm)
		return;
	TEST_ASSERT(!sigaction(SIGUSR1, &sa, NULL), "sigaction(SIGUSR1) failed");

	guest_op[0] = OP_SPIN;
	guest_op[1] = OP_SPIN;
	sync_global_to_guest(vm, guest_op);
	for (i = 0; i < 2; i++) {
		runs[i].vcpu = vcpus[i];
		TEST_ASSERT(!pthread_create(&runs[i].tid, NULL, vcpu_run_once_fn, &runs[i]),
			    "signalled waiter: pthread_create failed");
	}
	wait_spinning(vm, 2, "signalled waiter");

	get_write_stats(vm, &before);
	uffd_protect(&u, true, false);
	set_new_data(vm, &host);
	faulting = uffd_next_fault(&u, BLOCKED_WAIT_MS);
	TEST_ASSERT(faulting, "signalled waiter: no vCPU wrote the page within %d ms",
		    BLOCKED_WAIT_MS);
	for (i = 0; i < 2; i++) {
		if (runs[i].tid_nr == faulting)
			writer = &runs[i];
		else
			waiter = &runs[i];
	}
	TEST_ASSERT(writer && waiter,
		    "signalled waiter: the write fault came from thread %d, not from a vCPU thread (%d, %d)",
		    faulting, runs[0].tid_nr, runs[1].tid_nr);

	/* Until it lands in the kernel, not in the vCPU thread's user code. */
	for (i = 0; i < BLOCKED_WAIT_MS / 10; i++) {
		pthread_kill(waiter->tid, SIGUSR1);
		if (!pthread_tryjoin_np(waiter->tid, NULL))
			break;
		usleep(10000);
	}
	TEST_ASSERT(i < BLOCKED_WAIT_MS / 10,
		    "signalled waiter: vCPU %u still in KVM_RUN %d ms after the first signal",
		    waiter->vcpu->id, BLOCKED_WAIT_MS);
	TEST_ASSERT(waiter->r == -1 && waiter->err == EINTR &&
		    waiter->vcpu->run->exit_reason == KVM_EXIT_INTR,
		    "signalled waiter: KVM_RUN returned %d errno %d exit reason %u, expected -1, EINTR, KVM_EXIT_INTR",
		    waiter->r, waiter->err, waiter->vcpu->run->exit_reason);
	assert_write_stats("signalled waiter: writer still waiting", vm, &before, 0, 1, 0);
	assert_status_bits("signalled waiter: writer still waiting", vm, 0);

	uffd_protect(&u, false, true);
	set_guest_stop(vm, true);
	join_within(writer, BLOCKED_WAIT_MS, "signalled waiter: the writer");
	TEST_ASSERT(!writer->r, "signalled waiter: the writer's KVM_RUN failed, errno %d",
		    writer->err);
	close(u.fd);
	assert_write_stats("signalled waiter", vm, &before, 1, 1, 0);

	/* The waiter finishes its spin, then reads what the writer published. */
	run_sync(waiter->vcpu);
	read_and_check("signalled waiter: after", waiter->vcpu, &host, BIG_TSC_OFFSET);
	assert_published("signalled waiter", vmclock_hva(vm), &host, BIG_TSC_OFFSET,
			 VMCLOCK_SIZE);

	sa.sa_handler = SIG_DFL;
	sigaction(SIGUSR1, &sa, NULL);
	kvm_vm_free(vm);
	ksft_test_result_pass("a signal stops a vCPU waiting for another's write\n");
}

/*
 * 17: KVM_VCPU_TSC_SCALE reports the raw ratio behind the guest TSC. Without
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

/*
 * 21: a guest that scribbles over the page without pause on one vCPU (magic
 * and size overwritten, seq_count odd and changing) while its two other
 * vCPUs loop and the VMM keeps supplying new data, next to a VM that
 * behaves.  An update kicks every vCPU of the VM out of the guest and keeps
 * them out until it is written (kvm_vmclock_update()), so the scribbler can
 * only race KVM's write from a vCPU not yet kicked: KVM finds the garbage
 * (a foreign write) and adopts it, and rarely loses.  Asserted: each failed
 * publication costs VMCLOCK_WRITE_ATTEMPTS attempts and arms at most one
 * retry, so the update requests beyond the VMM's are at most a quarter of
 * the attempts that did not end in an update; the looping vCPUs make
 * progress; the other VM gets every update, exactly, at the first attempt;
 * the first write after the guest stopped is exact.  Losing repeatedly is
 * tested with a write-protected page (18-20).
 */
#define HOSTILE_VCPUS		3
#define HOSTILE_UPDATES		100
#define HOSTILE_UPDATE_GAP_US	2000
#define KVM_WRITE_ATTEMPTS	4	/* VMCLOCK_WRITE_ATTEMPTS in vmclock.c */

struct vmclock_counts {
	u64 requests, attempts, updates, foreign;
};

static void get_counts(struct kvm_vm *vm, struct vmclock_counts *c)
{
	c->requests = vm_get_stat(vm, vmclock_update_requests);
	c->attempts = vm_get_stat(vm, vmclock_write_attempts);
	c->updates = vm_get_stat(vm, vmclock_updates);
	c->foreign = vm_get_stat(vm, vmclock_foreign_writes);
}

static void counts_since(struct kvm_vm *vm, struct vmclock_counts *c)
{
	struct vmclock_counts now;

	get_counts(vm, &now);
	c->requests = now.requests - c->requests;
	c->attempts = now.attempts - c->attempts;
	c->updates = now.updates - c->updates;
	c->foreign = now.foreign - c->foreign;
}

static void test_hostile_guest_continuous(void)
{
	struct vcpu_thread threads[HOSTILE_VCPUS];
	struct kvm_vcpu *vcpus[HOSTILE_VCPUS], *ovcpu;
	struct vmclock_abi host, ohost, *clk;
	struct vmclock_counts h, o;
	u64 offset, ooffset, start, ns, max_retries, loops, worst = 0;
	struct kvm_vm *vm, *other;
	int i;

	vm = create_vm(vcpus, HOSTILE_VCPUS);
	clk = vmclock_hva(vm);
	offset = tsc_offset(vcpus[0]);
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	make_rich_clock(&host);
	set_rich_host(vm, &host);
	run_all(vcpus, HOSTILE_VCPUS);
	assert_published("hostile, continuous: before", clk, &host, offset,
			 VMCLOCK_SIZE);

	other = create_vm(&ovcpu, 1);
	ooffset = tsc_offset(ovcpu);
	set_vmclock(other, VMCLOCK_GPA, VMCLOCK_SIZE);
	make_rich_clock(&ohost);
	set_rich_host(other, &ohost);
	read_and_check("hostile, continuous: the other VM before", ovcpu,
		       &ohost, ooffset);

	/* create_vm() reset the ops; the hostile VM's are set now. */
	guest_op[0] = OP_SCRIBBLE_LOOP;
	for (i = 1; i < HOSTILE_VCPUS; i++)
		guest_op[i] = OP_SPIN_COUNT;
	sync_global_to_guest(vm, guest_op);
	set_guest_stop(vm, false);

	get_counts(vm, &h);
	get_counts(other, &o);
	for (i = 0; i < HOSTILE_VCPUS; i++) {
		threads[i].vcpu = vcpus[i];
		pthread_create(&threads[i].tid, NULL, vcpu_thread_fn,
			       &threads[i]);
	}
	start = vmclock_host_tai_ns();
	for (i = 0; i < HOSTILE_UPDATES; i++) {
		set_new_data(vm, &host);
		set_new_data(other, &ohost);
		read_and_check("hostile, continuous: the other VM", ovcpu,
			       &ohost, ooffset);
		usleep(HOSTILE_UPDATE_GAP_US);
	}
	ns = vmclock_host_tai_ns() - start;
	counts_since(vm, &h);
	counts_since(other, &o);
	set_guest_stop(vm, true);
	for (i = 0; i < HOSTILE_VCPUS; i++)
		pthread_join(threads[i].tid, NULL);

	TEST_ASSERT(h.requests >= HOSTILE_UPDATES &&
		    h.attempts <= KVM_WRITE_ATTEMPTS * h.requests,
		    "hostile, continuous: %lu compare-and-exchange attempts for %lu update requests, at most %d each",
		    h.attempts, h.requests, KVM_WRITE_ATTEMPTS);
	max_retries = (h.attempts - h.updates) / KVM_WRITE_ATTEMPTS;
	TEST_ASSERT(h.requests - HOSTILE_UPDATES <= max_retries,
		    "hostile, continuous: %lu update requests for %d updates from the VMM, but only %lu attempts lost (%lu attempts, %lu updates): retries without a failed publication",
		    h.requests, HOSTILE_UPDATES, h.attempts - h.updates,
		    h.attempts, h.updates);
	TEST_ASSERT(h.foreign > 0,
		    "hostile, continuous: KVM never noticed the scribbling (vmclock_foreign_writes +0)");
	TEST_ASSERT(threads[0].uc.args[0] > 0,
		    "hostile, continuous: the scribbling vCPU never ran");
	for (i = 1; i < HOSTILE_VCPUS; i++) {
		loops = threads[i].uc.args[0];
		worst = max(worst, threads[i].uc.args[1]);
		TEST_ASSERT(loops > 0,
			    "hostile, continuous: vCPU %d made no progress while the guest scribbled",
			    i);
	}
	TEST_ASSERT(o.updates == HOSTILE_UPDATES &&
		    o.attempts == HOSTILE_UPDATES && !o.foreign,
		    "hostile, continuous: the other VM had %lu updates, %lu attempts, %lu foreign writes for %d changes: want one update and one attempt each, no foreign write",
		    o.updates, o.attempts, o.foreign, HOSTILE_UPDATES);

	/* The guest stopped: the next write adopts the VMM's fields found. */
	host.disruption_marker = clk->disruption_marker;
	host.vm_generation_counter = clk->vm_generation_counter;
	host.flags = (host.flags & ~VMM_FLAGS) | (clk->flags & VMM_FLAGS);
	set_new_data(vm, &host);
	read_and_check("hostile, continuous: after", vcpus[1], &host, offset);
	assert_published("hostile, continuous: after", clk, &host, offset,
			 VMCLOCK_SIZE);

	kvm_vm_free(other);
	kvm_vm_free(vm);
	pr_info("hostile, continuous: %lu attempts for %lu requests (%d triggers, %lu updates got through, %lu foreign writes seen) in %lu ms; the other vCPUs looped, longest gap %lu TSC cycles; the other VM: %lu updates in %lu attempts; exact after\n",
		h.attempts, h.requests, HOSTILE_UPDATES, h.updates, h.foreign,
		ns / 1000000, worst, o.updates, o.attempts);
	ksft_test_result_pass("hostile guest, continuously: bounded work, exact after\n");
}

/*
 * 22. Races, a fixed number of rounds each, so that the kernel's checkers
 * (lockdep, KASAN, UBSAN, DEBUG_OBJECTS; kmemleak in make test's KASAN
 * kernel) see KVM's vmclock paths run against each other.  Two vCPUs read
 * the vmclock at VMCLOCK_GPA all along, while
 *  - one thread registers it there or at RACE_GPA, in userspace or
 *    automatic mode, with or without a notification eventfd (closed at
 *    once, so that only KVM holds it), and unregisters it;
 *  - one feeds KVM_SET_VMCLOCK_HOST (two descriptions of one line, as in
 *    the concurrency test) and KVM_VMCLOCK_DISRUPTION;
 *  - one moves RACE_GPA's memslot away and back, deletes and re-adds it,
 *    and turns its dirty logging on and off;
 *  - one reads the configuration back with KVM_GET_VMCLOCK.
 * Every call must succeed or fail as api.rst documents for a state it may
 * have met; the guest must never read a time off the line (a torn read),
 * nor find seq_count odd for good at a place whose memslot stays; after
 * the storm a registration works as on a new VM, to the nanosecond.  Then
 * VMs are destroyed with an update request and a notification pending,
 * and the eventfd only KVM still holds.
 */
struct race {
	struct kvm_vm *vm;
	struct vmclock_abi a, b;
	bool auto_ok;
	bool done;
	u64 set_ok, set_efault, unset;
	u64 host_ok, host_errs[2];	/* ENOENT, EINVAL */
	u64 disrupt_ok, disrupt_enoent;
	u64 gets;
};

/* What a racing call may fail with: @allowed is a 0-terminated list. */
static void race_check(const char *what, int r, const int *allowed, u64 *ok,
		       u64 *errs)
{
	int i;

	if (!r) {
		(*ok)++;
		return;
	}
	for (i = 0; allowed[i] && errno != allowed[i]; i++)
		;
	TEST_ASSERT(allowed[i],
		    "races: %s failed with errno %d (%s), which api.rst does not give for any state it may have met",
		    what, errno, strerror(errno));
	errs[i]++;
}

static void *race_register_fn(void *arg)
{
	static const int set_errs[] = { EFAULT, 0 };
	struct race *rc = arg;
	u16 mode, flags;
	int i, r, fd;
	u64 gpa;

	for (i = 0; i < RACE_REG_ROUNDS; i++) {
		if (i % 8 == 3 || i % 8 == 7) {
			r = disable_vmclock(rc->vm);
			TEST_ASSERT(!r, "races: unregistering failed, errno %d",
				    errno);
			rc->unset++;
			continue;
		}
		/* Odd rounds at RACE_GPA, whose memslot may be away. */
		gpa = i & 1 ? RACE_GPA : VMCLOCK_GPA;
		mode = KVM_VMCLOCK_MODE_USERSPACE;
		flags = 0;
		if (i % 8 == 5 && rc->auto_ok) {
			mode = KVM_VMCLOCK_MODE_AUTO;
			flags = i & 8 ? KVM_VMCLOCK_F_UTC : 0;
		}
		fd = -1;
		if (i % 3 == 0) {
			fd = eventfd(0, EFD_NONBLOCK);
			TEST_ASSERT(fd >= 0, "races: eventfd() failed");
			flags |= KVM_VMCLOCK_F_NOTIFY;
		}
		r = __set_vmclock(rc->vm, gpa, VMCLOCK_SIZE, mode, flags, fd);
		if (fd >= 0)
			close(fd);
		TEST_ASSERT(!r || gpa == RACE_GPA,
			    "races: KVM_SET_VMCLOCK at 0x%lx, whose memslot stays, failed with errno %d",
			    gpa, errno);
		race_check("KVM_SET_VMCLOCK", r, set_errs, &rc->set_ok,
			   &rc->set_efault);
	}
	return NULL;
}

static void *race_host_fn(void *arg)
{
	static const int host_errs[] = { ENOENT, EINVAL, 0 };
	static const int disrupt_errs[] = { ENOENT, 0 };
	struct race *rc = arg;
	int i, r;

	for (i = 0; i < RACE_HOST_ROUNDS; i++) {
		if (i % 4 == 3) {
			r = __disrupt(rc->vm, KVM_VMCLOCK_DISRUPTED |
				      KVM_VMCLOCK_NEW_GENERATION |
				      KVM_VMCLOCK_SET_NOTICE, i & 4 ?
				      KVM_VMCLOCK_NOTICE_SOON : 0);
			race_check("KVM_VMCLOCK_DISRUPTION", r, disrupt_errs,
				   &rc->disrupt_ok, &rc->disrupt_enoent);
			continue;
		}
		/* EINVAL: in automatic mode, which it may have met. */
		r = __vmclock_set_host(rc->vm, i & 1 ? &rc->b : &rc->a);
		race_check("KVM_SET_VMCLOCK_HOST", r, host_errs, &rc->host_ok,
			   rc->host_errs);
	}
	return NULL;
}

static void *race_slot_fn(void *arg)
{
	struct race *rc = arg;
	int i;

	for (i = 0; i < RACE_SLOT_ROUNDS; i++) {
		switch (i % 3) {
		case 0:
			vm_mem_region_move(rc->vm, RACE_SLOT, RACE_MOVED_GPA);
			vm_mem_region_move(rc->vm, RACE_SLOT, RACE_GPA);
			break;
		case 1:
			vm_mem_region_delete(rc->vm, RACE_SLOT);
			vm_userspace_mem_region_add(rc->vm, VM_MEM_SRC_ANONYMOUS,
						    RACE_GPA, RACE_SLOT, 1, 0);
			break;
		case 2:
			vm_mem_region_set_flags(rc->vm, RACE_SLOT,
						KVM_MEM_LOG_DIRTY_PAGES);
			vm_mem_region_set_flags(rc->vm, RACE_SLOT, 0);
			break;
		}
	}
	return NULL;
}

static void *race_get_fn(void *arg)
{
	struct race *rc = arg;
	struct kvm_vmclock cfg;

	while (!READ_ONCE(rc->done)) {
		memset(&cfg, 0xaa, sizeof(cfg));
		TEST_ASSERT(!__vm_ioctl(rc->vm, KVM_GET_VMCLOCK, &cfg),
			    "races: KVM_GET_VMCLOCK failed, errno %d", errno);
		TEST_ASSERT(cfg.mode <= KVM_VMCLOCK_MODE_AUTO,
			    "races: KVM_GET_VMCLOCK returned mode %u", cfg.mode);
		rc->gets++;
	}
	return NULL;
}

/* Destroy VMs with an update request and a notification pending. */
static u64 race_teardown(const struct vmclock_abi *a, bool auto_ok)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u16 mode;
	int i, r, fd;

	for (i = 0; i < RACE_TEARDOWN_ROUNDS; i++) {
		vm = create_vm(&vcpu, 1);
		mode = i & 1 && auto_ok ? KVM_VMCLOCK_MODE_AUTO :
					  KVM_VMCLOCK_MODE_USERSPACE;
		fd = eventfd(0, EFD_NONBLOCK);
		TEST_ASSERT(fd >= 0, "races: eventfd() failed");
		r = __set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE, mode,
				  KVM_VMCLOCK_F_NOTIFY, fd);
		TEST_ASSERT(!r, "races: teardown: KVM_SET_VMCLOCK failed, errno %d",
			    errno);
		close(fd);
		run_sync(vcpu);
		if (mode == KVM_VMCLOCK_MODE_USERSPACE)
			set_host(vm, a);
		TEST_ASSERT(!__disrupt(vm, KVM_VMCLOCK_DISRUPTED, 0),
			    "races: teardown: KVM_VMCLOCK_DISRUPTION failed, errno %d",
			    errno);
		kvm_vm_free(vm);
	}
	return i;
}

static void test_races(void)
{
	pthread_t reg, host, slot, get;
	struct vcpu_thread threads[NR_VCPUS];
	struct kvm_vcpu *vcpus[NR_VCPUS];
	u64 offset, gap, torn = 0, timed_out = 0, ok = 0, unreliable = 0;
	u64 worst = 0, torn_down;
	struct race rc = {};
	int i;

	rc.vm = create_vm(vcpus, NR_VCPUS);
	rc.auto_ok = kvm_check_cap(KVM_CAP_VMCLOCK) & KVM_VMCLOCK_CAP_AUTO;
	offset = tsc_offset(vcpus[0]);
	vm_userspace_mem_region_add(rc.vm, VM_MEM_SRC_ANONYMOUS, RACE_GPA,
				    RACE_SLOT, 1, 0);
	set_vmclock(rc.vm, VMCLOCK_GPA, VMCLOCK_SIZE);

	/* Two descriptions of the host line, as in test_concurrency(). */
	rc.a = host_line;
	gap = (line_b.tsc - line_a.tsc) * HAMMER_ANCHOR_GAP_SEC * NSEC_PER_SEC /
	      (line_b.tai_ns - line_a.tai_ns);
	gap = min_t(u64, gap, rc.a.counter_value / 2);
	move_anchor_back(&rc.b, &rc.a, gap);
	set_host(rc.vm, &rc.a);
	run_all(vcpus, NR_VCPUS);

	guest_ref = rc.a;
	guest_ref.counter_value += offset;
	sync_global_to_guest(rc.vm, guest_ref);
	for (i = 0; i < NR_VCPUS; i++)
		guest_op[i] = OP_RACE_LOOP;
	sync_global_to_guest(rc.vm, guest_op);

	for (i = 0; i < NR_VCPUS; i++) {
		threads[i].vcpu = vcpus[i];
		pthread_create(&threads[i].tid, NULL, vcpu_thread_fn,
			       &threads[i]);
	}
	pthread_create(&get, NULL, race_get_fn, &rc);
	pthread_create(&reg, NULL, race_register_fn, &rc);
	pthread_create(&host, NULL, race_host_fn, &rc);
	pthread_create(&slot, NULL, race_slot_fn, &rc);
	pthread_join(reg, NULL);
	pthread_join(host, NULL);
	pthread_join(slot, NULL);
	WRITE_ONCE(rc.done, true);
	pthread_join(get, NULL);

	set_guest_stop(rc.vm, true);
	for (i = 0; i < NR_VCPUS; i++) {
		pthread_join(threads[i].tid, NULL);
		ok += threads[i].uc.args[0];
		torn += threads[i].uc.args[1];
		unreliable += threads[i].uc.args[2];
		timed_out += threads[i].uc.args[3];
		worst = max(worst, threads[i].uc.args[4]);
	}
	pr_info("races: KVM_SET_VMCLOCK %lu ok, %lu EFAULT (memslot away), %lu unregistrations; KVM_SET_VMCLOCK_HOST %lu ok, %lu ENOENT, %lu EINVAL (automatic mode); KVM_VMCLOCK_DISRUPTION %lu ok, %lu ENOENT; %lu KVM_GET_VMCLOCK; guest: %lu good reads, %lu torn, %lu unreliable, %lu timed out\n",
		rc.set_ok, rc.set_efault, rc.unset, rc.host_ok, rc.host_errs[0],
		rc.host_errs[1], rc.disrupt_ok, rc.disrupt_enoent, rc.gets, ok,
		torn, unreliable, timed_out);
	TEST_ASSERT(!torn,
		    "races: %lu of the guest's reads were off the line, by up to %lu ns: torn reads",
		    torn, worst);
	TEST_ASSERT(!timed_out,
		    "races: %lu of the guest's reads found seq_count odd for good at VMCLOCK_GPA, whose memslot stayed",
		    timed_out);
	TEST_ASSERT(ok && rc.set_ok && rc.host_ok && rc.disrupt_ok,
		    "races: no progress: %lu good reads, %lu registrations, %lu host data, %lu disruptions",
		    ok, rc.set_ok, rc.host_ok, rc.disrupt_ok);

	/* After the storm, as on a new VM. */
	TEST_ASSERT(!disable_vmclock(rc.vm), "races: unregistering failed");
	set_guest_stop(rc.vm, false);
	set_vmclock(rc.vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	set_host(rc.vm, &rc.a);
	read_and_check("races: afterwards", vcpus[0], &rc.a, offset);
	assert_status_bits("races: afterwards", rc.vm, 0);
	kvm_vm_free(rc.vm);

	torn_down = race_teardown(&rc.a, rc.auto_ok);
	pr_info("races: %d registrations, %d host data and disruptions, %d memslot changes against 2 reading vCPUs; %lu VMs torn down with work pending\n",
		RACE_REG_ROUNDS, RACE_HOST_ROUNDS, 2 * RACE_SLOT_ROUNDS,
		torn_down);
	ksft_test_result_pass("races: calls as documented, no torn read or stuck seq_count\n");
}

/*
 * Benchmark (-b, run by make bench; not a test): what a vmclock costs next
 * to kvmclock in the same VM.  Times are the emulated host's (QEMU TCG),
 * where rdtsc, barriers and cmpxchg are helper calls: they do not carry
 * over to hardware, not even as ratios; the counts do.
 *  - A vCPU entry with nothing to do, with a vmclock update to publish
 *    (after KVM_SET_VMCLOCK_HOST), and with a kvmclock update
 *    (kvm_guest_time_update(), after KVM_SET_CLOCK): the difference is
 *    what the update costs the vCPU, the odd window included.
 *  - The ioctls that ask for them.
 *  - A guest read of each clock.
 */
#define COST_ROUNDS		2000

static u64 cost_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

static void bench_cost(void)
{
	u64 base = 0, vmc_run = 0, vmc_ioctl = 0, kvc_run = 0, kvc_ioctl = 0;
	u64 t0, t1, t2, updates, vmc_updates, kvc_vmc_updates, khz;
	struct kvm_clock_data data;
	struct kvm_vcpu *vcpu;
	struct vmclock_abi b;
	struct kvm_vm *vm;
	struct ucall uc;
	gva_t pvti;
	int i;

	vm = create_vm(&vcpu, 1);
	set_vmclock(vm, VMCLOCK_GPA, VMCLOCK_SIZE);
	set_host(vm, &host_line);
	move_anchor_back(&b, &host_line, host_line.counter_value / 4);
	pvti = vm_alloc(vm, getpagesize(), 0x10000);
	guest_pvti = (void *)pvti;
	guest_pvti_gpa = addr_gva2gpa(vm, pvti);
	sync_global_to_guest(vm, guest_pvti);
	sync_global_to_guest(vm, guest_pvti_gpa);
	run_op(vcpu, OP_KVMCLOCK_ON, &uc);
	run_sync(vcpu);

	for (i = 0; i < COST_ROUNDS; i++) {
		t0 = cost_now();
		run_sync(vcpu);
		base += cost_now() - t0;
	}

	updates = vmclock_updates(vm);
	for (i = 0; i < COST_ROUNDS; i++) {
		t0 = cost_now();
		set_host(vm, i & 1 ? &host_line : &b);
		t1 = cost_now();
		run_sync(vcpu);
		t2 = cost_now();
		vmc_ioctl += t1 - t0;
		vmc_run += t2 - t1;
	}
	vmc_updates = vmclock_updates(vm) - updates;

	updates = vmclock_updates(vm);
	vm_ioctl(vm, KVM_GET_CLOCK, &data);
	for (i = 0; i < COST_ROUNDS; i++) {
		data.flags = 0;
		t0 = cost_now();
		vm_ioctl(vm, KVM_SET_CLOCK, &data);
		t1 = cost_now();
		run_sync(vcpu);
		t2 = cost_now();
		kvc_ioctl += t1 - t0;
		kvc_run += t2 - t1;
	}
	kvc_vmc_updates = vmclock_updates(vm) - updates;

	run_op(vcpu, OP_READ_COST, &uc);
	khz = vcpu_tsc_khz(vcpu);
	kvm_vm_free(vm);

	pr_info("cost: emulated times (QEMU TCG), %d rounds each; they do not carry over to hardware\n",
		COST_ROUNDS);
	pr_info("cost: vCPU entry and exit, nothing to do: %lu ns\n",
		base / COST_ROUNDS);
	pr_info("cost: vmclock: KVM_SET_VMCLOCK_HOST %lu ns; the entry after it %lu ns, +%ld ns for the update (%lu updates in %d rounds)\n",
		vmc_ioctl / COST_ROUNDS, vmc_run / COST_ROUNDS,
		(s64)(vmc_run - base) / COST_ROUNDS, vmc_updates, COST_ROUNDS);
	pr_info("cost: kvmclock: KVM_SET_CLOCK %lu ns; the entry after it %lu ns, +%ld ns for kvm_guest_time_update() (vmclock updates meanwhile: %lu)\n",
		kvc_ioctl / COST_ROUNDS, kvc_run / COST_ROUNDS,
		(s64)(kvc_run - base) / COST_ROUNDS, kvc_vmc_updates);
	pr_info("cost: guest read: vmclock %lu ns (%lu TSC cycles), kvmclock %lu ns (%lu cycles); %lu vmclock reads failed\n",
		uc.args[0] * 1000000 / khz / COST_READS, uc.args[0] / COST_READS,
		uc.args[1] * 1000000 / khz / COST_READS, uc.args[1] / COST_READS,
		uc.args[2]);
}

int main(int argc, char *argv[])
{
	struct kvm_vcpu *vcpu;
	struct kvm_vmclock cfg;
	struct kvm_vm *vm;

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VMCLOCK) & KVM_VMCLOCK_CAP_USERSPACE);
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
	TEST_ASSERT(cfg.guest_tsc_khz,
		    "A new vCPU has no guest TSC rate (KVM_GET_VMCLOCK guest_tsc_khz 0, KVM_GET_TSC_KHZ %d): KVM did not set its TSC scaling ratio",
		    __vcpu_ioctl(vcpu, KVM_GET_TSC_KHZ, NULL));
	kvm_vm_free(vm);

	measure_host_line();
	if (argc > 1 && !strcmp(argv[1], "-b")) {
		bench_cost();
		return 0;
	}

	ksft_print_header();
	/* -r: the races test only (its negative controls). */
	if (argc > 1 && !strcmp(argv[1], "-r")) {
		ksft_set_plan(1);
		test_races();
		ksft_finished();
	}
	ksft_set_plan(NR_TESTS);

	test_header();
	test_accuracy();
	test_offset_change();
	test_status_flips();
	test_errors();
	test_get_set();
	test_disruption();
	test_notify();
	test_memslots();
	test_dirty_log();
	test_dirty_ring();
	test_private_memory();
	test_hostile_guest();
	test_concurrency();
	test_stats();
	test_one_writer();
	test_tsc_scale();
	test_blocked_writer();
	test_racing_vmm();
	test_waiting_vcpu_signalled();
	test_hostile_guest_continuous();
	test_races();

	ksft_finished();
}
