// SPDX-License-Identifier: GPL-2.0-only
/*
 * Tests for KVM_VMCLOCK_MODE_AUTO: KVM deriving a guest's vmclock from host
 * timekeeping, and publishing it only when the host clock really changed.
 *
 * The host clock is steered here the way an NTP daemon would, with
 * adjtimex() and clock_settime(), so the test needs CAP_SYS_TIME and changes
 * the clock of the machine it runs on; it puts back what it changed.  Run it
 * on a test machine, not on a host whose clock matters.
 *
 * The reference for the published clock is KVM_GET_CLOCK, which returns
 * CLOCK_REALTIME and the host TSC value it was computed from in one go: the
 * vmclock evaluated at that TSC (moved into the guest TSC domain) must give
 * the same time.  KVM_GET_CLOCK's kvmclock value, which follows
 * CLOCK_MONOTONIC_RAW, shows how the guest's kvmclock compares.
 *
 * With -b SECONDS it runs as a benchmark instead and prints how many updates
 * the guest sees per minute with the host clock steady and with the kernel
 * PLL slewing it, against the number of timekeeping updates (ticks), and how
 * far the published clock is from host CLOCK_TAI.
 */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#include <asm/barrier.h>
#include <linux/vmclock-abi.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "vmclock.h"

#define NR_TESTS		9

#define VMCLOCK_SLOT		10
#define VMCLOCK_GPA		0xc0000000ULL
#define VMCLOCK_GVA		VMCLOCK_GPA

#define TSC_OFFSET		BIT_ULL(40)

/* TAI - UTC since 2017, as an NTP daemon would set it with ADJ_TAI. */
#define TAI_OFFSET		37

/* adjtimex() frequencies are in ppm with a 16-bit binary fraction. */
#define PPM(x)			((long)(x) * 65536)
#define FREQ_STEP_PPM		100

/* From +100 to -100 ppm: (1 - 100e-6) / (1 + 100e-6) - 1. */
#define NTP_DOWN_PPM		(-199.98000199980002)

/* KVM slews a line that would start behind the guest's for 2 s. */
#define SLEW_WAIT_NS		(5 * NSEC_PER_SEC)

/*
 * How far the published clock may be from host CLOCK_REALTIME at the same
 * TSC value.  KVM publishes the line the timekeeper steers CLOCK_REALTIME
 * to; the timekeeper's own clock leaves it by its NTP error, which the
 * per-tick mult dithering keeps to about one mult unit per tick, well below
 * a nanosecond (ACCURACY_NS, with the truncation of both times to
 * nanoseconds).  A rate change adds up to the change times the part of the
 * tick that had passed, 400 ns for 100 ppm at HZ=250, which the timekeeper
 * works off slowly (RATE_CHANGE_ERROR_NS).
 */
#define ACCURACY_NS		50
#define RATE_CHANGE_ERROR_NS	1000

/* The kernel's maximum error grows by 500 us a second (MAXFREQ). */
#define NTP_MAXERROR_US		20000
#define NTP_ESTERROR_US		1000

/*
 * adjtimex() changes that do not step the clock or change its rate (status,
 * error bounds) reach the timekeeper's notifier, and so KVM, at the next
 * tick; wait for a few, at HZ=100 or more.
 */
#define TICKS_US		30000

/* How long the steady host is watched, and how often the vCPU runs then. */
#define STEADY_SEC		3
#define STEADY_RUN_US		20000

/* A steady host ticks hundreds of times in STEADY_SEC (HZ >= 100). */
#define MIN_STEADY_TICKS	(STEADY_SEC * 100 / 2)

/* How long a VM may take to get a valid clock back after the switch. */
#define RECOVER_NS		(2 * NSEC_PER_SEC)

/* How long the monotonicity test changes rates under a reading guest. */
#define MONOTONIC_NS		(2 * NSEC_PER_SEC)
#define MONOTONIC_STEP_US	10000

/* The leap second test starts this long before midnight UTC. */
#define LEAP_LEAD_NS		(1200 * 1000 * 1000ULL)

enum guest_op {
	OP_SYNC,	/* Only report back. */
	OP_READ,	/* Read the clock once. */
	OP_READ_LOOP,	/* Read the clock until told to stop, check it. */
};

static u32 guest_op;
static bool guest_stop;

static void guest_read(struct vmclock_abi *clk)
{
	struct vmclock_time t = {};
	u64 status;

	status = vmclock_read_tai(clk, &t);
	GUEST_SYNC6(status, t.tsc, t.sec, t.nsec,
		    READ_ONCE(clk->counter_period_frac_sec),
		    READ_ONCE(clk->counter_period_shift));
}

/*
 * Read the clock as fast as possible until the host says stop, and count
 * how often time went backwards between two successive reads, by how much
 * at most, and how many different structures (seq_count values) were seen.
 */
static void guest_read_loop(struct vmclock_abi *clk)
{
	u64 reads = 0, failed = 0, backwards = 0, worst = 0, seqs = 0;
	u32 last_seq = READ_ONCE(clk->seq_count);
	struct vmclock_time t;
	u64 now, last = 0;

	while (!READ_ONCE(guest_stop)) {
		u32 seq = READ_ONCE(clk->seq_count);

		if (seq != last_seq) {
			seqs++;
			last_seq = seq;
		}
		if (vmclock_read_tai(clk, &t) != VMCLOCK_READ_OK) {
			failed++;
			continue;
		}
		now = t.sec * NSEC_PER_SEC + t.nsec;
		if (now < last) {
			backwards++;
			if (last - now > worst)
				worst = last - now;
		}
		last = now;
		reads++;
	}
	GUEST_SYNC5(reads, failed, backwards, worst, seqs);
}

static void guest_code(struct vmclock_abi *clk)
{
	for (;;) {
		switch (READ_ONCE(guest_op)) {
		case OP_READ:
			guest_read(clk);
			break;
		case OP_READ_LOOP:
			guest_read_loop(clk);
			break;
		default:
			GUEST_SYNC1(0);
			break;
		}
	}
}

/* Host side. */

struct test_vm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	/* A second vCPU, for tests that read on one while KVM writes on the other. */
	struct kvm_vcpu *vcpu2;
	/*
	 * The guest TSC offset, as KVM has it.  Kept here: a vCPU ioctl would
	 * wait for a vCPU that another thread runs.
	 */
	u64 tsc_offset;
};

struct guest_reading {
	u64 status;
	u64 tsc;
	u64 ns;
	u64 period;
	u8 shift;
};

/*
 * The bound for the published clock against host time: ACCURACY_NS until
 * the test changes the host clock's rate, after which the host clock may
 * take minutes to converge back onto its NTP line (the timekeeper only
 * slows down by the rounding of its multiplier when it is ahead).
 */
static s64 host_error_ns = ACCURACY_NS;

static struct timex saved_timex;
static bool timex_saved;
static int tai_offset_now = TAI_OFFSET;

static u64 now_ns(clockid_t id)
{
	struct timespec ts;

	TEST_ASSERT(!clock_gettime(id, &ts), "clock_gettime(%d) failed, errno %d",
		    id, errno);
	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

static int host_adjtimex(struct timex *tx)
{
	int r = adjtimex(tx);

	TEST_ASSERT(r >= 0, "adjtimex(modes 0x%x) failed, errno %d (%s)",
		    tx->modes, errno, strerror(errno));
	return r;
}

static struct timex host_timex(void)
{
	struct timex tx = {};

	host_adjtimex(&tx);
	return tx;
}

static void set_freq_ppm(long ppm_scaled)
{
	struct timex tx = { .modes = ADJ_FREQUENCY, .freq = ppm_scaled };

	host_adjtimex(&tx);
	host_error_ns = RATE_CHANGE_ERROR_NS;
}

static void set_tai_offset(int tai)
{
	struct timex tx = { .modes = ADJ_TAI, .constant = tai };

	host_adjtimex(&tx);
	tai_offset_now = tai;
}

/* Synchronized (as chrony or ntpd would say) with fresh error bounds. */
static void set_synced(bool synced)
{
	struct timex tx = {
		.modes = ADJ_STATUS | ADJ_MAXERROR | ADJ_ESTERROR,
		.maxerror = NTP_MAXERROR_US,
		.esterror = NTP_ESTERROR_US,
	};

	tx.status = host_timex().status & ~(STA_UNSYNC | STA_INS | STA_DEL);
	if (!synced)
		tx.status |= STA_UNSYNC;
	host_adjtimex(&tx);
	usleep(TICKS_US);
}

static void set_status_bits(int set, int clear)
{
	struct timex tx = { .modes = ADJ_STATUS };

	tx.status = (host_timex().status | set) & ~clear;
	host_adjtimex(&tx);
	usleep(TICKS_US);
}

static u64 saved_realtime, saved_monotonic;
static char saved_clocksource[64];

#define CLOCKSOURCE_DIR	"/sys/devices/system/clocksource/clocksource0/"

/*
 * Put the host clock back as it was, as far as a test can: the time (as
 * CLOCK_MONOTONIC says it went on), the clocksource, NTP's frequency and
 * status, error bounds and TAI offset.  A kernel PLL offset left slewing
 * is cleared first.
 */
static void restore_host_clock(void)
{
	struct timex tx = { .modes = ADJ_OFFSET };
	struct timespec ts, mono;
	int fd;

	if (!timex_saved)
		return;
	adjtimex(&tx);

	tx = saved_timex;
	tx.modes = ADJ_FREQUENCY | ADJ_STATUS | ADJ_MAXERROR | ADJ_ESTERROR |
		   ADJ_TAI;
	tx.constant = saved_timex.tai;
	adjtimex(&tx);

	fd = open(CLOCKSOURCE_DIR "current_clocksource", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, saved_clocksource, strlen(saved_clocksource)) < 0)
			perror("restoring the clocksource");
		close(fd);
	}

	clock_gettime(CLOCK_MONOTONIC, &mono);
	ts.tv_sec = (saved_realtime - saved_monotonic) / NSEC_PER_SEC + mono.tv_sec;
	ts.tv_nsec = (saved_realtime - saved_monotonic) % NSEC_PER_SEC + mono.tv_nsec;
	if (ts.tv_nsec >= NSEC_PER_SEC) {
		ts.tv_sec++;
		ts.tv_nsec -= NSEC_PER_SEC;
	}
	clock_settime(CLOCK_REALTIME, &ts);
}

/* Killed by a test runner's timeout: still restore the host clock. */
static void restore_and_exit(int sig)
{
	restore_host_clock();
	_exit(KSFT_FAIL);
}

static void save_host_clock(void)
{
	char *cs = sys_get_cur_clocksource();

	snprintf(saved_clocksource, sizeof(saved_clocksource), "%s", cs);
	free(cs);
	saved_timex = host_timex();
	saved_monotonic = now_ns(CLOCK_MONOTONIC);
	saved_realtime = now_ns(CLOCK_REALTIME);
	timex_saved = true;
	atexit(restore_host_clock);
	signal(SIGTERM, restore_and_exit);
	signal(SIGINT, restore_and_exit);
}

/* The host's tick count, which the pvclock_gtod notifier follows. */
static u64 host_jiffies(void)
{
	unsigned long long jiffies = 0;
	char line[256];
	FILE *f;

	f = fopen("/proc/timer_list", "r");
	TEST_ASSERT(f, "Cannot open /proc/timer_list, errno %d", errno);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "jiffies: %llu", &jiffies) == 1)
			break;
	fclose(f);
	TEST_ASSERT(jiffies, "No jiffies in /proc/timer_list");
	return jiffies;
}

static void write_sysfs(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY);

	TEST_ASSERT(fd >= 0, "open(%s) failed, errno %d", path, errno);
	TEST_ASSERT(write(fd, value, strlen(value)) == strlen(value),
		    "Writing '%s' to %s failed, errno %d", value, path, errno);
	close(fd);
}

/* A clocksource other than the TSC that the host can switch to. */
static const char *other_clocksource(void)
{
	static const char * const names[] = { "hpet", "acpi_pm" };
	char buf[512] = "";
	FILE *f;
	int i;

	f = fopen(CLOCKSOURCE_DIR "available_clocksource", "r");
	TEST_ASSERT(f, "Cannot read available_clocksource");
	TEST_ASSERT(fgets(buf, sizeof(buf), f), "Empty available_clocksource");
	fclose(f);

	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (strstr(buf, names[i]))
			return names[i];
	return NULL;
}

static int __set_vmclock(struct kvm_vm *vm, u64 gpa, u32 size, u16 mode,
			 u16 flags)
{
	struct kvm_vmclock cfg = {
		.gpa = gpa,
		.size = size,
		.mode = mode,
		.flags = flags,
		.notify_fd = -1,
	};

	return __vm_ioctl(vm, KVM_SET_VMCLOCK, &cfg);
}

/* An automatic vmclock, TAI or (@flags KVM_VMCLOCK_F_UTC) UTC. */
static void set_vmclock(struct kvm_vm *vm, u16 flags)
{
	int r = __set_vmclock(vm, VMCLOCK_GPA, PAGE_SIZE,
			      KVM_VMCLOCK_MODE_AUTO, flags);

	TEST_ASSERT(!r, "KVM_SET_VMCLOCK(auto mode, flags 0x%x) failed, errno %d (%s)",
		    flags, errno, strerror(errno));
}

static u64 vmclock_updates(struct test_vm *t)
{
	return vm_get_stat(t->vm, vmclock_updates);
}

static void run_vcpu_op(struct test_vm *t, struct kvm_vcpu *vcpu, u32 op,
			struct ucall *uc)
{
	guest_op = op;
	sync_global_to_guest(t->vm, guest_op);

	vcpu_run(vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);

	switch (get_ucall(vcpu, uc)) {
	case UCALL_SYNC:
		break;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(*uc);
		break;
	default:
		TEST_FAIL("Unexpected ucall %lu", uc->cmd);
	}
}

static void run_op(struct test_vm *t, u32 op, struct ucall *uc)
{
	run_vcpu_op(t, t->vcpu, op, uc);
}

static void run_sync(struct test_vm *t)
{
	struct ucall uc;

	run_op(t, OP_SYNC, &uc);
}

static void guest_read_clock(struct test_vm *t, struct guest_reading *r)
{
	struct ucall uc;

	run_op(t, OP_READ, &uc);
	r->status = uc.args[0];
	r->tsc = uc.args[1];
	r->ns = uc.args[2] * NSEC_PER_SEC + uc.args[3];
	r->period = uc.args[4];
	r->shift = uc.args[5];
}

/*
 * A VM with @nr_vcpus (1 or 2) vCPUs sharing one TSC offset, and an
 * automatic vmclock registered with @flags (0: TAI, KVM_VMCLOCK_F_UTC).
 */
static void create_test_vm_vcpus(struct test_vm *t, u16 flags, int nr_vcpus)
{
	struct kvm_vcpu *vcpus[2] = {};
	u64 offset = TSC_OFFSET;
	struct ucall uc;
	int i;

	t->vm = vm_create_with_vcpus(nr_vcpus, guest_code, vcpus);
	t->vcpu = vcpus[0];
	t->vcpu2 = vcpus[1];
	vm_userspace_mem_region_add(t->vm, VM_MEM_SRC_ANONYMOUS, VMCLOCK_GPA,
				    VMCLOCK_SLOT, 1, 0);
	virt_map(t->vm, VMCLOCK_GVA, VMCLOCK_GPA, 1);
	guest_stop = false;
	sync_global_to_guest(t->vm, guest_stop);
	/* In order: KVM matches each vCPU's TSC with the previous write. */
	for (i = 0; i < nr_vcpus; i++) {
		vcpu_args_set(vcpus[i], 1, VMCLOCK_GVA);
		vcpu_device_attr_set(vcpus[i], KVM_VCPU_TSC_CTRL,
				     KVM_VCPU_TSC_OFFSET, &offset);
	}

	set_vmclock(t->vm, flags);
	/* The master clock requests of vCPU creation, and the first update. */
	for (i = 0; i < nr_vcpus; i++)
		run_vcpu_op(t, vcpus[i], OP_SYNC, &uc);
	vcpu_device_attr_get(t->vcpu, KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_OFFSET,
			     &t->tsc_offset);
}

static void create_test_vm(struct test_vm *t, u16 flags)
{
	create_test_vm_vcpus(t, flags, 1);
}

static void destroy_test_vm(struct test_vm *t)
{
	kvm_vm_free(t->vm);
}

/* A consistent copy of what KVM published, read as the guest would. */
static void read_published(struct test_vm *t, struct vmclock_abi *out)
{
	struct vmclock_abi *clk = addr_gpa2hva(t->vm, VMCLOCK_GPA);
	u32 seq;
	int i;

	for (i = 0; i < VMCLOCK_READ_MAX_TRIES; i++) {
		seq = READ_ONCE(clk->seq_count);
		/* Pairs with KVM's barrier after making seq_count odd. */
		smp_rmb();
		memcpy(out, clk, sizeof(*out));
		/* Pairs with KVM's barrier before making it even again. */
		smp_rmb();
		if (!(seq & 1) && seq == READ_ONCE(clk->seq_count))
			return;
	}
	TEST_FAIL("seq_count never settled (0x%x)", clk->seq_count);
}

/* CLOCK_TAI in ns that @clk gives at guest TSC value @tsc. */
static u64 clk_tai_ns(const struct vmclock_abi *clk, u64 tsc)
{
	u64 sec, nsec;

	vmclock_time_at(clk, tsc, &sec, &nsec);
	if (clk->time_type == VMCLOCK_TIME_UTC)
		sec -= (s16)clk->tai_offset_sec;
	return sec * NSEC_PER_SEC + nsec;
}

/*
 * The host's CLOCK_REALTIME, kvmclock and the host TSC, all at the same
 * instant (the kvmclock as the guest's kvmclock page gives it, from KVM's
 * master clock).
 */
static void get_kvm_clock(struct test_vm *t, struct kvm_clock_data *data)
{
	memset(data, 0, sizeof(*data));
	vm_ioctl(t->vm, KVM_GET_CLOCK, data);
	TEST_ASSERT((data->flags & (KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC)) ==
		    (KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC),
		    "KVM_GET_CLOCK gave no (CLOCK_REALTIME, TSC) pair, flags 0x%x: no master clock?",
		    data->flags);
}

/*
 * How far the vmclock @clk is ahead of host CLOCK_TAI, in ns, at the host
 * TSC value of @data.  The TSC is not scaled here, so the guest TSC is the
 * host TSC plus the offset.
 */
static s64 deviation_ns(struct test_vm *t, const struct vmclock_abi *clk,
			const struct kvm_clock_data *data)
{
	u64 tai = data->realtime + (u64)tai_offset_now * NSEC_PER_SEC;

	return (s64)(clk_tai_ns(clk, data->host_tsc + t->tsc_offset) - tai);
}

static s64 published_deviation_ns(struct test_vm *t)
{
	struct kvm_clock_data data;
	struct vmclock_abi clk;

	read_published(t, &clk);
	get_kvm_clock(t, &data);
	return deviation_ns(t, &clk, &data);
}

static void assert_status(const char *what, const struct vmclock_abi *clk,
			  u8 status)
{
	TEST_ASSERT(clk->clock_status == status,
		    "%s: clock_status %u, expected %u (flags 0x%llx)", what,
		    clk->clock_status, status, clk->flags);
}

static void assert_flags(const char *what, const struct vmclock_abi *clk,
			 u64 set, u64 clear)
{
	TEST_ASSERT((clk->flags & set) == set && !(clk->flags & clear),
		    "%s: flags 0x%llx, expected 0x%lx set and 0x%lx clear",
		    what, clk->flags, set, clear);
}

/* Ratio of two periods (2^-(64 + shift) s units) in ppm, minus 1e6. */
static double period_change_ppm(u64 before, u8 before_shift, u64 after,
				u8 after_shift)
{
	double b = before / (double)(1ULL << before_shift) / 18446744073709551616.0;
	double a = after / (double)(1ULL << after_shift) / 18446744073709551616.0;

	return (a / b - 1) * 1e6;
}

/* A passed sub-test, with the figures it measured. */
static void __printf(2, 3) test_passed(const char *name, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ksft_test_result_pass("%s: %s", name, buf);
}

/* One line of benchmark results. */
static void __printf(2, 3) bench_say(const char *what, const char *fmt, ...)
{
	va_list ap;

	printf("bench: %-10s ", what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

/* 1. KVM_CHECK_EXTENSION, invalid modes and flags, KVM_SET_VMCLOCK_HOST. */
static void test_errors(void)
{
	static const struct {
		const char *what;
		u16 mode;
		u16 flags;
	} bad[] = {
		{ "mode USERSPACE | AUTO (3)", 3, 0 },
		{ "UTC without a mode", 0, KVM_VMCLOCK_F_UTC },
		{ "USERSPACE | UTC", KVM_VMCLOCK_MODE_USERSPACE, KVM_VMCLOCK_F_UTC },
		{ "AUTO | an unknown flag", KVM_VMCLOCK_MODE_AUTO, 1U << 2 },
		{ "AUTO | UTC | bit 15", KVM_VMCLOCK_MODE_AUTO,
		  KVM_VMCLOCK_F_UTC | (1U << 15) },
	};
	u32 want = KVM_VMCLOCK_CAP_USERSPACE | KVM_VMCLOCK_CAP_AUTO |
		   KVM_VMCLOCK_CAP_NOTIFY;
	struct kvm_vmclock_host host;
	struct vmclock_abi clk = {};
	struct kvm_vmclock cfg;
	struct test_vm t;
	int i, r;

	TEST_ASSERT(kvm_check_cap(KVM_CAP_VMCLOCK) == want,
		    "KVM_CAP_VMCLOCK is 0x%x, expected 0x%x (USERSPACE | AUTO | NOTIFY)",
		    kvm_check_cap(KVM_CAP_VMCLOCK), want);

	create_test_vm(&t, KVM_VMCLOCK_F_UTC);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		r = __set_vmclock(t.vm, VMCLOCK_GPA, PAGE_SIZE, bad[i].mode,
				  bad[i].flags);
		TEST_ASSERT(r == -1 && errno == EINVAL,
			    "KVM_SET_VMCLOCK with %s: got %d errno %d, expected EINVAL",
			    bad[i].what, r, errno);
		vm_ioctl(t.vm, KVM_GET_VMCLOCK, &cfg);
		TEST_ASSERT(cfg.mode == KVM_VMCLOCK_MODE_AUTO &&
			    cfg.flags == KVM_VMCLOCK_F_UTC &&
			    cfg.gpa == VMCLOCK_GPA && cfg.notify_fd == -1,
			    "KVM_SET_VMCLOCK with %s changed the registration to gpa 0x%llx mode %u flags 0x%x notify_fd %d, expected auto mode with F_UTC",
			    bad[i].what, cfg.gpa, cfg.mode, cfg.flags,
			    cfg.notify_fd);
	}

	/* The clock data is KVM's own in auto mode. */
	read_published(&t, &clk);
	vmclock_host_from_abi(&host, &clk);
	r = __vm_ioctl(t.vm, KVM_SET_VMCLOCK_HOST, &host);
	TEST_ASSERT(r == -1 && errno == EINVAL,
		    "KVM_SET_VMCLOCK_HOST in auto mode: got %d errno %d, expected EINVAL",
		    r, errno);

	destroy_test_vm(&t);
	test_passed("errors",
		    "CAP 0x%x, %zu bad mode/flag sets and SET_VMCLOCK_HOST in auto mode rejected\n",
		    want, ARRAY_SIZE(bad));
}

/* 2. What is published for TAI and UTC, synchronized or not. */
static void test_fields(void)
{
	struct test_vm tai, utc;
	struct vmclock_abi c;
	u64 maxerr;

	set_tai_offset(TAI_OFFSET);
	set_synced(false);
	create_test_vm(&tai, 0);
	create_test_vm(&utc, KVM_VMCLOCK_F_UTC);

	read_published(&tai, &c);
	TEST_ASSERT(c.magic == VMCLOCK_MAGIC && c.version == 1 &&
		    c.size == PAGE_SIZE && c.counter_id == VMCLOCK_COUNTER_X86_TSC,
		    "Bad header: magic 0x%x version %u size %u counter_id %u",
		    c.magic, c.version, c.size, c.counter_id);
	TEST_ASSERT(c.time_type == VMCLOCK_TIME_TAI &&
		    (s16)c.tai_offset_sec == -TAI_OFFSET,
		    "TAI vmclock: time_type %u tai_offset_sec %d, expected TAI and %d",
		    c.time_type, (s16)c.tai_offset_sec, -TAI_OFFSET);
	assert_status("unsynchronized host, TAI", &c, VMCLOCK_STATUS_FREERUNNING);
	assert_flags("unsynchronized host, TAI", &c,
		     VMCLOCK_FLAG_TAI_OFFSET_VALID | VMCLOCK_FLAG_TIME_MONOTONIC,
		     VMCLOCK_FLAG_TIME_ESTERROR_VALID |
		     VMCLOCK_FLAG_TIME_MAXERROR_VALID);

	read_published(&utc, &c);
	TEST_ASSERT(c.time_type == VMCLOCK_TIME_UTC &&
		    (s16)c.tai_offset_sec == -TAI_OFFSET,
		    "UTC vmclock: time_type %u tai_offset_sec %d", c.time_type,
		    (s16)c.tai_offset_sec);
	assert_flags("unsynchronized host, UTC", &c,
		     VMCLOCK_FLAG_TAI_OFFSET_VALID | VMCLOCK_FLAG_TIME_MONOTONIC, 0);

	/* An NTP daemon declares the clock synchronized. */
	set_synced(true);
	run_sync(&tai);
	read_published(&tai, &c);
	assert_status("synchronized host", &c, VMCLOCK_STATUS_SYNCHRONIZED);
	assert_flags("synchronized host", &c,
		     VMCLOCK_FLAG_TIME_ESTERROR_VALID |
		     VMCLOCK_FLAG_TIME_MAXERROR_VALID |
		     VMCLOCK_FLAG_PERIOD_MAXERROR_VALID, 0);
	maxerr = c.time_maxerror_nanosec;
	TEST_ASSERT(c.time_esterror_nanosec >= NTP_ESTERROR_US * 1000ULL &&
		    c.time_esterror_nanosec < NTP_ESTERROR_US * 1000ULL + 1000 &&
		    maxerr >= NTP_MAXERROR_US * 1000ULL &&
		    maxerr <= (NTP_MAXERROR_US + 3 * 500) * 1000ULL,
		    "Error bounds esterror %llu maxerror %lu ns for NTP's %u / %u us",
		    c.time_esterror_nanosec, maxerr, NTP_ESTERROR_US,
		    NTP_MAXERROR_US);
	TEST_ASSERT(c.counter_period_maxerror_rate_frac_sec,
		    "No period maximum error rate published");

	/* Without a TAI offset from the NTP daemon there is no TAI. */
	set_tai_offset(0);
	run_sync(&tai);
	run_sync(&utc);
	read_published(&tai, &c);
	assert_status("TAI vmclock, TAI offset unknown", &c,
		      VMCLOCK_STATUS_UNRELIABLE);
	read_published(&utc, &c);
	assert_status("UTC vmclock, TAI offset unknown", &c,
		      VMCLOCK_STATUS_SYNCHRONIZED);
	assert_flags("UTC vmclock, TAI offset unknown", &c, 0,
		     VMCLOCK_FLAG_TAI_OFFSET_VALID);

	set_tai_offset(TAI_OFFSET);
	run_sync(&tai);
	read_published(&tai, &c);
	assert_status("TAI offset back", &c, VMCLOCK_STATUS_SYNCHRONIZED);

	destroy_test_vm(&tai);
	destroy_test_vm(&utc);
	set_synced(false);
	test_passed("fields",
		    "TAI/UTC, FREERUNNING/SYNCHRONIZED, esterror %u us -> %llu ns, maxerror %u us -> %lu ns\n",
		    NTP_ESTERROR_US, c.time_esterror_nanosec,
		    NTP_MAXERROR_US, maxerr);
}

/* 3. The guest's time agrees with host CLOCK_TAI. */
static void test_accuracy(void)
{
	struct guest_reading r;
	u64 before, after;
	s64 dev, worst = 0;
	struct test_vm t;
	int i;

	create_test_vm(&t, 0);

	/* At the same TSC value, from KVM_GET_CLOCK. */
	for (i = 0; i < 100; i++) {
		dev = published_deviation_ns(&t);
		if (llabs(dev) > llabs(worst))
			worst = dev;
	}
	TEST_ASSERT(llabs(worst) <= host_error_ns,
		    "The published clock is %ld ns from host CLOCK_TAI at the same TSC (limit %ld)",
		    worst, host_error_ns);

	/* What the guest reads lies between host reads around its run. */
	before = now_ns(CLOCK_TAI);
	guest_read_clock(&t, &r);
	after = now_ns(CLOCK_TAI);
	TEST_ASSERT(r.status == VMCLOCK_READ_OK, "Guest read %s",
		    vmclock_read_status_name(r.status));
	TEST_ASSERT(r.ns + ACCURACY_NS >= before && r.ns <= after + ACCURACY_NS,
		    "Guest read %lu ns, outside [%lu, %lu] read by the host around it",
		    r.ns, before, after);

	destroy_test_vm(&t);
	test_passed("accuracy",
		    "published clock vs host CLOCK_TAI at the same TSC: worst %ld ns in 100 samples; guest read %ld ns after the host's read before its run\n",
		    worst, (s64)(r.ns - before));
}

/*
 * 4. adjtimex(ADJ_FREQUENCY) by +/-100 ppm: the vmclock follows at once,
 * the kvmclock does not.
 */
struct freq_result {
	double period_ppm;	/* Period change as first published */
	double final_ppm;	/* ... and once any slew is over */
	double vm_drift_ppm;	/* vmclock against host time, then */
	double kvmclock_drift_ppm;
	s64 dev_ns;		/* vmclock - host time, then */
};

/* Wait for the update that ends a slew: KVM slews for 2 s. */
static void wait_for_update(struct test_vm *t, u64 updates)
{
	u64 end = now_ns(CLOCK_MONOTONIC) + SLEW_WAIT_NS;

	do {
		usleep(50000);
		run_sync(t);
	} while (vmclock_updates(t) == updates && now_ns(CLOCK_MONOTONIC) < end);
	TEST_ASSERT(vmclock_updates(t) == updates + 1,
		    "%lu updates after a slew, expected 1",
		    vmclock_updates(t) - updates);
}

static void freq_step(struct test_vm *t, long ppm, bool slower,
		      struct freq_result *f)
{
	struct guest_reading before, after;
	struct kvm_clock_data d0, d1;
	struct vmclock_abi c0, c1;
	u64 updates;
	s64 dev0;
	double dt;

	read_published(t, &c0);
	guest_read_clock(t, &before);
	updates = vmclock_updates(t);
	set_freq_ppm(PPM(ppm));
	/* The update reaches the guest before it runs again. */
	guest_read_clock(t, &after);
	TEST_ASSERT(after.period != before.period &&
		    vmclock_updates(t) == updates + 1,
		    "%+ld ppm: the guest's next run still saw period %lu (vmclock_updates +%lu)",
		    ppm, after.period, vmclock_updates(t) - updates);
	f->period_ppm = period_change_ppm(before.period, before.shift,
					  after.period, after.shift);

	/*
	 * A slower line starts behind the one the guest had, so KVM slews
	 * to it, then publishes the NTP line itself.
	 */
	if (slower)
		wait_for_update(t, updates + 1);
	read_published(t, &c1);
	f->final_ppm = period_change_ppm(c0.counter_period_frac_sec,
					 c0.counter_period_shift,
					 c1.counter_period_frac_sec,
					 c1.counter_period_shift);

	/* A second of steady host: the vmclock follows, no more updates. */
	updates = vmclock_updates(t);
	get_kvm_clock(t, &d0);
	dev0 = deviation_ns(t, &c1, &d0);
	usleep(1000000);
	run_sync(t);
	get_kvm_clock(t, &d1);
	TEST_ASSERT(vmclock_updates(t) == updates,
		    "%+ld ppm: %lu updates while the host clock was steady",
		    ppm, vmclock_updates(t) - updates);
	f->dev_ns = deviation_ns(t, &c1, &d1);
	TEST_ASSERT(llabs(dev0) <= RATE_CHANGE_ERROR_NS &&
		    llabs(f->dev_ns) <= RATE_CHANGE_ERROR_NS,
		    "%+ld ppm: vmclock - host TAI %ld ns, then %ld ns a second later",
		    ppm, dev0, f->dev_ns);

	dt = d1.realtime - d0.realtime;
	f->vm_drift_ppm = (f->dev_ns - dev0) / dt * 1e6;
	f->kvmclock_drift_ppm = (((s64)(d1.clock - d0.clock)) - dt) / dt * 1e6;
}

static void test_frequency(void)
{
	struct freq_result up, down;
	struct test_vm t;

	set_tai_offset(TAI_OFFSET);
	create_test_vm(&t, 0);

	freq_step(&t, FREQ_STEP_PPM, false, &up);
	freq_step(&t, -FREQ_STEP_PPM, true, &down);
	set_freq_ppm(0);
	destroy_test_vm(&t);

	/*
	 * The period is the NTP-adjusted rate: +100 ppm, then -200 ppm
	 * exactly once the slew is over.  The vmclock is on the NTP line;
	 * host CLOCK_REALTIME, which the timekeeper keeps continuous at the
	 * rate change, converges to that line over the next ticks at up to
	 * one multiplier step per tick (about 0.2 ppm here).  The kvmclock
	 * runs at the nominal TSC rate, so against host time it is 100 ppm
	 * slow, then 100 ppm fast; allow 20 ppm for the emulated host's
	 * timing noise over a second.
	 */
	TEST_ASSERT(fabs(up.period_ppm - FREQ_STEP_PPM) < 0.001 &&
		    fabs(up.final_ppm - FREQ_STEP_PPM) < 0.001 &&
		    fabs(down.final_ppm - NTP_DOWN_PPM) < 0.001 &&
		    down.period_ppm < down.final_ppm,
		    "Period changed by %+.4f, then %+.4f (slewing: %+.4f) ppm, expected +100 and %+.4f",
		    up.period_ppm, down.final_ppm, down.period_ppm, NTP_DOWN_PPM);
	TEST_ASSERT(fabs(up.vm_drift_ppm) < 0.5 && fabs(down.vm_drift_ppm) < 0.5,
		    "vmclock drifted from host time by %+.3f / %+.3f ppm",
		    up.vm_drift_ppm, down.vm_drift_ppm);
	TEST_ASSERT(fabs(up.kvmclock_drift_ppm + FREQ_STEP_PPM) < 20 &&
		    fabs(down.kvmclock_drift_ppm - FREQ_STEP_PPM) < 20,
		    "kvmclock drifted from host time by %+.1f / %+.1f ppm, expected -100 / +100",
		    up.kvmclock_drift_ppm, down.kvmclock_drift_ppm);
	test_passed("frequency",
		    "+100 ppm: period %+.3f ppm, vmclock vs host %+.4f ppm (%+ld ns), kvmclock vs host %+.1f ppm; -100 ppm: period %+.3f ppm while slewing, %+.4f ppm after, vmclock vs host %+.4f ppm (%+ld ns), kvmclock %+.1f ppm\n",
		    up.period_ppm, up.vm_drift_ppm, up.dev_ns,
		    up.kvmclock_drift_ppm, down.period_ppm, down.final_ppm,
		    down.vm_drift_ppm, down.dev_ns, down.kvmclock_drift_ppm);
}

/* Run the guest every STEADY_RUN_US for @ns; return ticks seen meanwhile. */
static u64 run_steadily(struct test_vm *t, u64 ns, s64 *worst_dev)
{
	u64 end = now_ns(CLOCK_MONOTONIC) + ns;
	u64 j0 = host_jiffies();
	s64 dev;

	*worst_dev = 0;
	while (now_ns(CLOCK_MONOTONIC) < end) {
		run_sync(t);
		dev = published_deviation_ns(t);
		if (llabs(dev) > llabs(*worst_dev))
			*worst_dev = dev;
		usleep(STEADY_RUN_US);
	}
	return host_jiffies() - j0;
}

/* 5. A steady host clock publishes nothing, however often it ticks. */
static void test_steady(void)
{
	u64 ticks_free, ticks_synced, updates;
	s64 dev_free, dev_synced;
	struct test_vm t;

	set_tai_offset(TAI_OFFSET);
	set_synced(false);
	create_test_vm(&t, 0);

	updates = vmclock_updates(&t);
	ticks_free = run_steadily(&t, STEADY_SEC * NSEC_PER_SEC, &dev_free);
	TEST_ASSERT(vmclock_updates(&t) == updates,
		    "Free-running host: %lu vmclock updates in %d s (%lu ticks)",
		    vmclock_updates(&t) - updates, STEADY_SEC, ticks_free);

	/* Synchronized: the maximum error grows every second by itself. */
	set_synced(true);
	run_sync(&t);
	updates = vmclock_updates(&t);
	ticks_synced = run_steadily(&t, STEADY_SEC * NSEC_PER_SEC, &dev_synced);
	TEST_ASSERT(vmclock_updates(&t) == updates,
		    "Synchronized host: %lu vmclock updates in %d s (%lu ticks)",
		    vmclock_updates(&t) - updates, STEADY_SEC, ticks_synced);

	TEST_ASSERT(ticks_free >= MIN_STEADY_TICKS &&
		    ticks_synced >= MIN_STEADY_TICKS,
		    "Only %lu and %lu ticks in %d s", ticks_free, ticks_synced,
		    STEADY_SEC);
	TEST_ASSERT(llabs(dev_free) <= host_error_ns &&
		    llabs(dev_synced) <= host_error_ns,
		    "Without updates the vmclock strayed %ld / %ld ns from host CLOCK_TAI",
		    dev_free, dev_synced);

	set_synced(false);
	destroy_test_vm(&t);
	test_passed("steady",
		    "0 updates in %d s free-running (%lu ticks) and %d s synchronized (%lu ticks); worst deviation %ld / %ld ns\n",
		    STEADY_SEC, ticks_free, STEADY_SEC, ticks_synced,
		    dev_free, dev_synced);
}

/*
 * 6. Host clocksource away from the TSC: UNRELIABLE before the guest runs
 * again; back to the TSC: valid again.
 */
static void test_clocksource(void)
{
	const char *other = other_clocksource();
	struct guest_reading r;
	struct test_vm t;
	u64 start, took;

	if (!other) {
		ksft_test_result_skip("clocksource: the host has no clocksource besides the TSC\n");
		return;
	}
	set_tai_offset(TAI_OFFSET);
	create_test_vm(&t, 0);
	guest_read_clock(&t, &r);
	TEST_ASSERT(r.status == VMCLOCK_READ_OK, "Guest read %s before the switch",
		    vmclock_read_status_name(r.status));

	write_sysfs(CLOCKSOURCE_DIR "current_clocksource", other);
	guest_read_clock(&t, &r);
	TEST_ASSERT(r.status == VMCLOCK_READ_UNRELIABLE,
		    "First guest run after switching to %s: the guest read %s, not UNRELIABLE",
		    other, vmclock_read_status_name(r.status));

	write_sysfs(CLOCKSOURCE_DIR "current_clocksource", "tsc");
	start = now_ns(CLOCK_MONOTONIC);
	do {
		guest_read_clock(&t, &r);
		took = now_ns(CLOCK_MONOTONIC) - start;
	} while (r.status != VMCLOCK_READ_OK && took < RECOVER_NS);
	TEST_ASSERT(r.status == VMCLOCK_READ_OK,
		    "%lu ms after switching back to tsc the guest still reads %s",
		    took / 1000000, vmclock_read_status_name(r.status));
	TEST_ASSERT(llabs(published_deviation_ns(&t)) <= host_error_ns,
		    "Back on tsc, the vmclock is %ld ns from host time",
		    published_deviation_ns(&t));

	destroy_test_vm(&t);
	test_passed("clocksource",
		    "%s -> UNRELIABLE at the next entry; tsc -> valid after %lu us\n",
		    other, took / 1000);
}

/* 7. A guest reading the clock while the rate changes never goes back. */
struct reader {
	struct test_vm *t;
	struct kvm_vcpu *vcpu;
	struct ucall uc;	/* The guest's report */
	pthread_t thread;
};

static void *reader_thread(void *arg)
{
	struct reader *r = arg;

	run_vcpu_op(r->t, r->vcpu, OP_READ_LOOP, &r->uc);
	return NULL;
}

static void start_reader(struct reader *r, struct test_vm *t,
			 struct kvm_vcpu *vcpu)
{
	bool *stop = addr_gva2hva(t->vm, (gva_t)&guest_stop);

	WRITE_ONCE(*stop, false);
	r->t = t;
	r->vcpu = vcpu;
	TEST_ASSERT(!pthread_create(&r->thread, NULL, reader_thread, r),
		    "pthread_create() failed");
}

static void stop_readers(struct test_vm *t, struct reader *r, int nr)
{
	bool *stop = addr_gva2hva(t->vm, (gva_t)&guest_stop);
	int i;

	WRITE_ONCE(*stop, true);
	for (i = 0; i < nr; i++)
		pthread_join(r[i].thread, NULL);
}

static void test_monotonic(void)
{
	static const long steps[] = { FREQ_STEP_PPM, -FREQ_STEP_PPM, 0,
				      -FREQ_STEP_PPM / 2 };
	u64 end, changes = 0, updates, reads, seen;
	struct reader r[2];
	struct test_vm t;
	int i;

	set_tai_offset(TAI_OFFSET);
	create_test_vm_vcpus(&t, 0, 2);
	updates = vmclock_updates(&t);

	/* Both vCPUs read, so each update is written while the other reads. */
	start_reader(&r[0], &t, t.vcpu);
	start_reader(&r[1], &t, t.vcpu2);
	end = now_ns(CLOCK_MONOTONIC) + MONOTONIC_NS;
	while (now_ns(CLOCK_MONOTONIC) < end) {
		set_freq_ppm(PPM(steps[changes % ARRAY_SIZE(steps)]));
		changes++;
		usleep(MONOTONIC_STEP_US);
	}
	stop_readers(&t, r, 2);
	set_freq_ppm(0);
	updates = vmclock_updates(&t) - updates;

	reads = 0;
	seen = 0;
	for (i = 0; i < 2; i++) {
		struct ucall *uc = &r[i].uc;

		TEST_ASSERT(uc->args[0] && !uc->args[1],
			    "vCPU %d got %lu good and %lu failed reads", i,
			    uc->args[0], uc->args[1]);
		TEST_ASSERT(!uc->args[2],
			    "vCPU %d: time went backwards %lu times in %lu reads, by up to %lu ns, across %lu rate changes",
			    i, uc->args[2], uc->args[0], uc->args[3], changes);
		reads += uc->args[0];
		seen = max(seen, uc->args[4]);
	}
	/* Kicks take a while under emulation; most changes must show. */
	TEST_ASSERT(seen >= changes / 4,
		    "The reading guest saw only %lu updates for %lu rate changes",
		    seen, changes);

	test_passed("monotonic",
		    "%lu reads on 2 vCPUs across %lu rate changes (%lu updates written, %lu seen by a vCPU), never backwards\n",
		    reads, changes, updates, seen);
	destroy_test_vm(&t);
}

/* 8. clock_settime() steps: TIME_MONOTONIC only when time did not go back. */
static void settime_ns(u64 ns)
{
	struct timespec ts = { .tv_sec = ns / NSEC_PER_SEC,
			       .tv_nsec = ns % NSEC_PER_SEC };

	TEST_ASSERT(!clock_settime(CLOCK_REALTIME, &ts),
		    "clock_settime() failed, errno %d", errno);
}

static void test_steps(void)
{
	struct vmclock_abi c0, c1;
	struct test_vm t;
	u64 u0;
	s64 jump;

	set_tai_offset(TAI_OFFSET);
	create_test_vm(&t, 0);
	read_published(&t, &c0);

	u0 = vmclock_updates(&t);
	settime_ns(now_ns(CLOCK_REALTIME) + 10 * NSEC_PER_SEC);
	run_sync(&t);
	read_published(&t, &c1);
	jump = c1.time_sec - c0.time_sec;
	TEST_ASSERT(vmclock_updates(&t) == u0 + 1 && jump >= 10 && jump <= 12,
		    "Step forward by 10 s: %lu updates, time_sec moved by %ld s",
		    vmclock_updates(&t) - u0, jump);
	assert_flags("step forward", &c1, VMCLOCK_FLAG_TIME_MONOTONIC, 0);
	TEST_ASSERT(llabs(published_deviation_ns(&t)) <= host_error_ns,
		    "After the step forward the vmclock is %ld ns from host time",
		    published_deviation_ns(&t));

	settime_ns(now_ns(CLOCK_REALTIME) - 10 * NSEC_PER_SEC);
	run_sync(&t);
	read_published(&t, &c1);
	assert_flags("step back", &c1, 0, VMCLOCK_FLAG_TIME_MONOTONIC);
	TEST_ASSERT(llabs(published_deviation_ns(&t)) <= host_error_ns,
		    "After the step back the vmclock is %ld ns from host time",
		    published_deviation_ns(&t));

	/* The next line does not go back: monotonic again. */
	set_freq_ppm(PPM(1));
	run_sync(&t);
	read_published(&t, &c1);
	assert_flags("rate change after the step back", &c1,
		     VMCLOCK_FLAG_TIME_MONOTONIC, 0);
	set_freq_ppm(0);

	destroy_test_vm(&t);
	test_passed("steps",
		    "+10 s keeps TIME_MONOTONIC, -10 s clears it for that update, the vmclock follows host time\n");
}

/* 9. A leap second insertion, as the guests see it in TAI and in UTC. */
struct leap_view {
	u8 leap;
	s16 tai_offset;
	u64 flags;
	u64 utc_sec;
};

static void leap_view(struct test_vm *t, struct leap_view *v)
{
	struct vmclock_abi c;

	run_sync(t);
	read_published(t, &c);
	v->leap = c.leap_indicator;
	v->tai_offset = (s16)c.tai_offset_sec;
	v->flags = c.flags;
	v->utc_sec = c.time_sec;
}

/*
 * The leap indicator only moves forward through PRE_POS, POS and POST_POS
 * (in numerical order), and TIME_MONOTONIC stays: the ABI exempts leap
 * seconds in UTC, and TAI does not jump.
 */
static void leap_progress(const char *what, const struct leap_view *v,
			  u8 *last, bool *seen_pos)
{
	TEST_ASSERT((v->leap == VMCLOCK_LEAP_PRE_POS ||
		     v->leap == VMCLOCK_LEAP_POS ||
		     v->leap == VMCLOCK_LEAP_POST_POS) && v->leap >= *last,
		    "%s vmclock: leap_indicator %u after %u", what, v->leap,
		    *last);
	TEST_ASSERT(v->flags & VMCLOCK_FLAG_TIME_MONOTONIC,
		    "%s vmclock: TIME_MONOTONIC dropped at leap_indicator %u (flags 0x%lx)",
		    what, v->leap, v->flags);
	*last = v->leap;
	if (v->leap == VMCLOCK_LEAP_POS)
		*seen_pos = true;
}

static void test_leap_second(void)
{
	u64 mono0 = now_ns(CLOCK_MONOTONIC), real0 = now_ns(CLOCK_REALTIME);
	u64 midnight = (real0 / NSEC_PER_SEC / 86400 + 1) * 86400 * NSEC_PER_SEC;
	u8 tai_leap = VMCLOCK_LEAP_PRE_POS, utc_leap = VMCLOCK_LEAP_PRE_POS;
	struct leap_view v, u, first;
	bool seen_pos = false;
	struct test_vm tai, utc;
	u64 end;

	set_tai_offset(TAI_OFFSET);
	create_test_vm(&tai, 0);
	create_test_vm(&utc, KVM_VMCLOCK_F_UTC);

	/* Setting the clock makes it unsynchronized: synchronize it after. */
	settime_ns(midnight - LEAP_LEAD_NS);
	set_synced(true);
	set_status_bits(STA_INS, 0);
	leap_view(&tai, &first);
	TEST_ASSERT(first.leap == VMCLOCK_LEAP_PRE_POS,
		    "STA_INS set: leap_indicator %u, expected PRE_POS", first.leap);

	end = now_ns(CLOCK_MONOTONIC) + LEAP_LEAD_NS + 2 * NSEC_PER_SEC;
	do {
		usleep(50000);
		leap_view(&tai, &v);
		leap_view(&utc, &u);
		leap_progress("TAI", &v, &tai_leap, &seen_pos);
		leap_progress("UTC", &u, &utc_leap, &seen_pos);
	} while ((tai_leap != VMCLOCK_LEAP_POST_POS ||
		  utc_leap != VMCLOCK_LEAP_POST_POS) &&
		 now_ns(CLOCK_MONOTONIC) < end);
	TEST_ASSERT(seen_pos && tai_leap == VMCLOCK_LEAP_POST_POS &&
		    utc_leap == VMCLOCK_LEAP_POST_POS,
		    "The guests saw leap_indicator POS: %d, then %u (TAI) / %u (UTC), expected POST_POS",
		    seen_pos, tai_leap, utc_leap);
	TEST_ASSERT(v.tai_offset == first.tai_offset - 1 &&
		    u.tai_offset == first.tai_offset - 1,
		    "tai_offset_sec after the leap: %d (TAI) / %d (UTC), was %d",
		    v.tai_offset, u.tai_offset, first.tai_offset);
	tai_offset_now = TAI_OFFSET + 1;
	TEST_ASSERT(llabs(published_deviation_ns(&tai)) <= host_error_ns &&
		    llabs(published_deviation_ns(&utc)) <= host_error_ns,
		    "After the leap the vmclocks are %ld / %ld ns from host CLOCK_TAI",
		    published_deviation_ns(&tai), published_deviation_ns(&utc));

	/* The NTP daemon clears STA_INS some time after the leap. */
	set_status_bits(0, STA_INS);
	leap_view(&tai, &v);
	TEST_ASSERT(v.leap == VMCLOCK_LEAP_NONE,
		    "STA_INS cleared: leap_indicator %u, expected NONE", v.leap);

	destroy_test_vm(&tai);
	destroy_test_vm(&utc);
	set_tai_offset(TAI_OFFSET);
	set_synced(false);
	settime_ns(real0 + now_ns(CLOCK_MONOTONIC) - mono0);
	test_passed("leap second",
		    "PRE_POS -> POS -> POST_POS -> NONE, tai_offset_sec %d -> %d, TIME_MONOTONIC kept in TAI and UTC\n",
		    first.tai_offset, v.tai_offset);
}

/*
 * Benchmark: updates per minute with a steady host and with the kernel PLL
 * slewing the clock, against timekeeping updates (ticks), and the largest
 * distance of the published clock from host CLOCK_TAI.
 */
struct bench_result {
	u64 ns;
	u64 ticks;
	u64 updates;
	s64 worst_dev;
	s64 worst_dev_settled;	/* ... from BENCH_SETTLE_NS into the phase */
	u64 samples;
	u64 guest_reads;
	u64 guest_backwards;
};

/*
 * A rate change that adjtimex() makes without updating the timekeeper (the
 * PLL's ADJ_OFFSET) puts host CLOCK_REALTIME off its NTP line, which the
 * vmclock follows at once, by up to the change times a tick; the timekeeper
 * takes seconds to work that off.  Report the worst deviation after that
 * too.
 */
#define BENCH_SETTLE_NS		(5 * NSEC_PER_SEC)

/*
 * With the guest reading its clock all along, as a guest that uses it
 * would, so that updates reach it as fast as they do in production, sample
 * the published clock against host time ten times a second.
 */
static void bench_phase(struct test_vm *t, u64 ns, struct bench_result *b)
{
	u64 start = now_ns(CLOCK_MONOTONIC), end = start + ns;
	u64 j0 = host_jiffies(), u0 = vmclock_updates(t);
	struct reader r;
	s64 dev;

	b->worst_dev = 0;
	b->worst_dev_settled = 0;
	b->samples = 0;
	start_reader(&r, t, t->vcpu);
	while (now_ns(CLOCK_MONOTONIC) < end) {
		usleep(100000);
		dev = published_deviation_ns(t);
		if (llabs(dev) > llabs(b->worst_dev))
			b->worst_dev = dev;
		if (now_ns(CLOCK_MONOTONIC) - start >= BENCH_SETTLE_NS &&
		    llabs(dev) > llabs(b->worst_dev_settled))
			b->worst_dev_settled = dev;
		b->samples++;
	}
	stop_readers(t, &r, 1);
	b->ns = now_ns(CLOCK_MONOTONIC) - start;
	b->ticks = host_jiffies() - j0;
	b->updates = vmclock_updates(t) - u0;
	b->guest_reads = r.uc.args[0];
	b->guest_backwards = r.uc.args[2];
}

static double per_minute(u64 n, u64 ns)
{
	return n * 60.0 * NSEC_PER_SEC / ns;
}

static void bench_print(const char *what, const struct bench_result *b)
{
	bench_say(what,
		  "%6.1f s: %4lu updates (%.2f/min), %6lu ticks = notifier calls (%.0f/min), worst vmclock - host CLOCK_TAI %+ld ns over %lu samples (%+ld ns after the first %d s); %lu guest reads, %lu backwards\n",
		  b->ns / 1e9, b->updates, per_minute(b->updates, b->ns),
		  b->ticks, per_minute(b->ticks, b->ns), b->worst_dev, b->samples,
		  b->worst_dev_settled, (int)(BENCH_SETTLE_NS / NSEC_PER_SEC),
		  b->guest_reads, b->guest_backwards);
}

static void benchmark(u64 seconds)
{
	struct kvm_clock_data d0, d1;
	struct bench_result steady, slew;
	struct timex tx = {};
	struct test_vm t;
	u64 slew_ns = seconds < 60 ? seconds : 60;
	s64 kvmclock_drift;

	set_tai_offset(TAI_OFFSET);
	set_synced(true);
	set_freq_ppm(0);
	create_test_vm(&t, 0);

	get_kvm_clock(&t, &d0);
	bench_phase(&t, seconds * NSEC_PER_SEC, &steady);
	get_kvm_clock(&t, &d1);
	kvmclock_drift = (s64)(d1.clock - d0.clock) -
			 (s64)(d1.realtime - d0.realtime);
	bench_print("steady", &steady);
	bench_say("steady",
		  "kvmclock - host CLOCK_REALTIME moved by %+ld ns in %.1f s (%+.3f ppm)\n",
		  kvmclock_drift, (d1.realtime - d0.realtime) / 1e9,
		  kvmclock_drift * 1e6 / (d1.realtime - d0.realtime));

	/*
	 * The kernel PLL slews a 50 ms offset with ntpd's usual time constant:
	 * the tick length changes once a second, by less each time.
	 */
	tx.modes = ADJ_STATUS | ADJ_OFFSET | ADJ_NANO | ADJ_TIMECONST;
	tx.status = (host_timex().status | STA_PLL | STA_NANO) & ~STA_UNSYNC;
	tx.offset = 50 * 1000 * 1000;
	tx.constant = 6;
	host_adjtimex(&tx);
	bench_phase(&t, slew_ns * NSEC_PER_SEC, &slew);
	bench_print("pll-slew", &slew);

	/* Stop slewing: no offset left, PLL off. */
	memset(&tx, 0, sizeof(tx));
	tx.modes = ADJ_OFFSET | ADJ_NANO;
	host_adjtimex(&tx);
	set_status_bits(0, STA_PLL | STA_NANO);

	destroy_test_vm(&t);
	set_synced(false);
}

int main(int argc, char *argv[])
{
	u64 bench_seconds = 0;
	struct timex tx = {};
	int opt;

	while ((opt = getopt(argc, argv, "b:")) != -1) {
		switch (opt) {
		case 'b':
			bench_seconds = strtoull(optarg, NULL, 0);
			break;
		default:
			printf("usage: %s [-b SECONDS]\n", argv[0]);
			exit(KSFT_FAIL);
		}
	}

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VMCLOCK) & KVM_VMCLOCK_CAP_AUTO);
	TEST_REQUIRE(sys_clocksource_is_based_on_tsc());
	/* Steering the host clock needs CAP_SYS_TIME. */
	tx.modes = ADJ_TAI;
	tx.constant = host_timex().tai;
	TEST_REQUIRE(adjtimex(&tx) >= 0);

	save_host_clock();

	if (bench_seconds) {
		benchmark(bench_seconds);
		return 0;
	}

	ksft_print_header();
	ksft_set_plan(NR_TESTS);

	test_errors();
	test_fields();
	test_accuracy();
	test_frequency();
	test_steady();
	test_clocksource();
	test_monotonic();
	test_steps();
	test_leap_second();

	ksft_finished();
}
