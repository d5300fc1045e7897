// SPDX-License-Identifier: GPL-2.0-only
/*
 * Tests for KVM_VMCLOCK_MODE_AUTO: KVM deriving a guest's vmclock from the
 * clock line that kernel/time publishes (include/linux/clock_line.h), and
 * publishing it only when the host clock really changed.
 *
 * All tests but the first steer the host clock the way an NTP daemon would
 * (adjtimex(), clock_settime(), leap seconds, clocksource switches), which
 * needs CAP_SYS_TIME and changes the clock of the machine the test runs on.
 * Like the timers selftests' DESTRUCTIVE_TESTS, they only run when
 * KVM_VMCLOCK_DESTRUCTIVE is set in the environment, and each reports a
 * skip otherwise.  The host clock's state (time, frequency, tick, status,
 * error bounds, time constant, TAI offset and clocksource) is saved before
 * the first change and put back on every exit, also when an assertion
 * fails.
 *
 * The reference for the published clock is KVM_GET_CLOCK, which returns
 * CLOCK_REALTIME and the host TSC value it was computed from in one go: the
 * vmclock evaluated at that TSC (moved into the guest TSC domain) must give
 * the same time within what KVM publishes.  The published line may be off
 * host CLOCK_REALTIME by the line's own error: the timekeeper's NTP error,
 * which the estimated error includes, plus the microsecond by which
 * kernel/time lets the published line stray from the NTP line before it
 * publishes a new one, and rounding, growing at the part of the period's
 * maximum error rate beyond 500 ppm (see line_bound_ns()).  Against true
 * time it is bounded by time_maxerror_nanosec, growing at the period's
 * maximum error rate.
 *
 * With -b SECONDS it runs as a benchmark instead, which is itself a request
 * to steer the host clock: it prints how many updates the guest sees per
 * minute with the host clock steady and with the kernel PLL slewing it,
 * against the number of timekeeping updates (ticks), and how far the
 * published clock is from host CLOCK_TAI.
 */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#include <asm/barrier.h>
#include <linux/capability.h>
#include <linux/time64.h>
#include <linux/vmclock-abi.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "vmclock.h"

#define NR_TESTS		21

/* Opt-in for the tests that change the host clock. */
#define DESTRUCTIVE_ENV		"KVM_VMCLOCK_DESTRUCTIVE"

#define VMCLOCK_SLOT		10
#define VMCLOCK_GPA		0xc0000000ULL
#define VMCLOCK_GVA		VMCLOCK_GPA

#define TSC_OFFSET		BIT_ULL(40)

/* TAI - UTC since 2017, as an NTP daemon would set it with ADJ_TAI. */
#define TAI_OFFSET		37
/* tai_offset_sec is an s16: the host knows TAI for offsets 1..32767. */
#define TAI_OFFSET_MAX		32767

/* adjtimex() frequencies are in ppm with a 16-bit binary fraction. */
#define PPM(x)			((long)((x) * 65536.0))
#define FREQ_STEP_PPM		100

/* From +100 to -100 ppm: (1 - 100e-6) / (1 + 100e-6) - 1. */
#define NTP_DOWN_PPM		(-199.98000199980002)

/*
 * KVM slews a line that would start behind the guest's: for 2 s (at least
 * 0.5 ppm slower than the NTP line) if it is more than 1 us behind, then
 * publishes the NTP line; otherwise gently, over 32 s (at most 1/32 ppm
 * slower), replaced by the next line or after 64 s.
 */
#define SLEW_WAIT_NS		(5 * NSEC_PER_SEC)
#define GENTLE_SLEW_PPM		(1000.0 / 32 / 1000)
#define SLEW_GENTLE(ppm)	((ppm) > -0.1)

/*
 * The line's own error bound, which kernel/time folds into the published
 * maximum error (clock_line.c: CLOCK_LINE_STEP_NS, the hysteresis, plus
 * CLOCK_LINE_NTP_ERROR_SLACK_NS and CLOCK_LINE_ROUND_NS), on top of the
 * timekeeper's NTP error.
 */
#define LINE_ERROR_FIXED_NS	(1000 + 16 + 2)
/*
 * Comparing the vmclock with KVM_GET_CLOCK truncates both to nanoseconds,
 * and host CLOCK_REALTIME moves with the timekeeper's multiplier between
 * ticks, not with the NTP line.
 */
#define LINE_SLACK_NS		10

/*
 * The line's own error grows by at most a microsecond a second (the drift
 * kernel/time allows the NTP line over a hold of at least a second) plus a
 * multiplier step of the timekeeper, far below a ppm for a GHz counter.
 */
#define LINE_RATE_MAX_PPB	2000

/* The kernel grows NTP's maximum error by MAXFREQ, 500 us a second. */
#define MAXERROR_GROWTH_US	500
#define MAXERROR_RATE		0.0005

/* The host's NTP state in the tests; the estimated error is exact. */
#define NTP_MAXERROR_US		20000
#define NTP_ESTERROR_US		1000

/*
 * adjtimex() changes that do not step the clock or change its rate (status,
 * error bounds, the TAI offset's validity) reach kernel/time's clock line,
 * and so KVM, at the next tick: wait for a few.
 */
#define TICKS_US		30000

/* How long a change that comes at the next tick may take to show. */
#define WAIT_NS			(2 * NSEC_PER_SEC)

/* How long the steady host is watched, and how often the vCPU runs then. */
#define STEADY_SEC		3
#define STEADY_RUN_US		20000

/* A steady host ticks hundreds of times in STEADY_SEC (HZ >= 100). */
#define MIN_STEADY_TICKS	(STEADY_SEC * 100 / 2)

/*
 * Clocksource switches with a guest entry right after each, half of them
 * with the CPU that runs the timekeeping workqueue's work busy: enough
 * rounds that an entry before the work's requests is certain.
 */
#define STALE_ROUNDS		30

/*
 * A rate decrease is written this long after the host made it: the new line
 * then starts behind the old one by the decrease times this, far more than
 * the microsecond that the published line may stray from the NTP line.
 */
#define CATCH_UP_DELAY_US	50000
#define CATCH_UP_MIN_BEHIND_NS	2000

/* How long the monotonicity test changes rates under reading guests. */
#define MONOTONIC_NS		(2 * NSEC_PER_SEC)
#define MONOTONIC_STEP_US	10000

/*
 * The leap second tests set the clock this long before midnight UTC: a
 * deletion must be armed before 23:59:58 (NTP arms it at a second boundary
 * other than 23:59:59's), an insertion before 23:59:59.
 */
#define LEAP_LEAD_NS		(2500 * NSEC_PER_MSEC)
#define LEAP_ARM_BY_NS		(2 * NSEC_PER_SEC)

/* A guest read more than this after the previous one is a jump. */
#define JUMP_NS			(500 * NSEC_PER_MSEC)

/* How often the tests that follow the host's rate sample. */
#define FOLLOW_STEP_US		100000

enum guest_op {
	OP_SYNC,	/* Only report back. */
	OP_READ,	/* Read the clock once. */
	OP_READ_LOOP,	/* Read the clock until told to stop, check it. */
};

static u32 guest_op;
static bool guest_stop;

/*
 * Read @clk as ptp_vmclock does, but in the clock's own time scale (TAI or
 * UTC, without converting UTC to TAI): the time at the TSC value read, and
 * the clock_status of the same consistent copy.
 */
static enum vmclock_read_status guest_read_own(struct vmclock_abi *clk,
					       u64 *tsc, u64 *ns, u8 *status)
{
	u64 c, sec, nsec;
	u32 seq;
	u8 st;
	int i;

	for (i = 0; i < VMCLOCK_READ_MAX_TRIES; i++) {
		/* An odd count means an update is in progress: never matches. */
		seq = READ_ONCE(clk->seq_count) & ~1U;
		/* Pairs with the hypervisor's write barrier, as virt_rmb(). */
		smp_rmb();
		st = READ_ONCE(clk->clock_status);
		c = rdtsc();
		vmclock_time_at(clk, c, &sec, &nsec);
		/* Pairs with the hypervisor's write barrier, as virt_rmb(). */
		smp_rmb();
		if (seq != READ_ONCE(clk->seq_count))
			continue;

		*status = st;
		if (st == VMCLOCK_STATUS_UNRELIABLE)
			return VMCLOCK_READ_UNRELIABLE;
		*tsc = c;
		*ns = sec * NSEC_PER_SEC + nsec;
		return VMCLOCK_READ_OK;
	}
	return VMCLOCK_READ_TIMED_OUT;
}

static void guest_read(struct vmclock_abi *clk)
{
	u64 tsc = 0, ns = 0, r;
	u8 status = 0;

	r = guest_read_own(clk, &tsc, &ns, &status);
	GUEST_SYNC6(r, status, tsc, ns, READ_ONCE(clk->counter_period_frac_sec),
		    READ_ONCE(clk->counter_period_shift));
}

/*
 * Read the clock as fast as possible until the host says stop, and count
 * the reads, those that found it UNRELIABLE, how often time went backwards
 * between two successive reads and by how much at most, how often it
 * jumped forward by more than JUMP_NS, and how many different structures
 * (seq_count values) were seen.
 */
static void guest_read_loop(struct vmclock_abi *clk)
{
	u64 reads = 0, unreliable = 0, backwards = 0, worst = 0, seqs = 0;
	u32 last_seq = READ_ONCE(clk->seq_count);
	u64 tsc, now = 0, last = 0, jumps = 0;
	u8 status;
	int r;

	while (!READ_ONCE(guest_stop)) {
		u32 seq = READ_ONCE(clk->seq_count);

		if (seq != last_seq) {
			seqs++;
			last_seq = seq;
		}
		r = guest_read_own(clk, &tsc, &now, &status);
		__GUEST_ASSERT(r != VMCLOCK_READ_TIMED_OUT,
			       "seq_count never settled (0x%x)", clk->seq_count);
		if (r == VMCLOCK_READ_UNRELIABLE) {
			unreliable++;
			continue;
		}
		if (last && now < last) {
			backwards++;
			if (last - now > worst)
				worst = last - now;
		} else if (last && now - last > JUMP_NS) {
			jumps++;
		}
		last = now;
		reads++;
	}
	GUEST_SYNC6(reads, unreliable, backwards, worst, seqs, jumps);
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
	u64 rc;		/* enum vmclock_read_status */
	u8 status;	/* clock_status */
	u64 tsc;
	u64 ns;		/* In the clock's own time scale */
	u64 period;
	u8 shift;
};

/* The vmclock against host time at one TSC value, see measure(). */
struct deviation {
	s64 err_ns;		/* vmclock - host clock of the same time scale */
	s64 line_bound_ns;	/* The line's own error bound; -1 if not published */
	s64 max_bound_ns;	/* The maximum error at that TSC; -1 if not published */
	u8 status;
	struct kvm_clock_data kc;
};

/* Why the tests that change the host clock do not run, or NULL. */
static const char *no_destructive;

static struct timex saved_timex;
static u64 saved_realtime, saved_monotonic;
static char saved_clocksource[64];
static bool host_saved;

/* The estimated error the test set last, see line_bound_ns(). */
static long host_esterror_us;
/* The tick length (ADJ_TICK) for the nominal rate: 1 s / USER_HZ in us. */
static long nominal_tick;

#define CLOCKSOURCE_DIR	"/sys/devices/system/clocksource/clocksource0/"

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

/* What adjtimex() returns without changing anything: TIME_ERROR or a leap state. */
static int host_time_state(void)
{
	struct timex tx = {};

	return host_adjtimex(&tx);
}

static int host_tai(void)
{
	return host_timex().tai;
}

static void set_freq_ppm(long ppm_scaled)
{
	struct timex tx = { .modes = ADJ_FREQUENCY, .freq = ppm_scaled };

	host_adjtimex(&tx);
}

static void set_tick(long tick)
{
	struct timex tx = { .modes = ADJ_TICK, .tick = tick };

	host_adjtimex(&tx);
}

/* Also marks TAI as known: the NTP daemon told the kernel. */
static void set_tai_offset(int tai)
{
	struct timex tx = { .modes = ADJ_TAI, .constant = tai };

	host_adjtimex(&tx);
	TEST_ASSERT(host_tai() == tai, "ADJ_TAI %d: adjtimex() reports %d",
		    tai, host_tai());
}

static void set_status(int set, int clear)
{
	struct timex tx = { .modes = ADJ_STATUS };

	tx.status = (host_timex().status | set) & ~clear;
	host_adjtimex(&tx);
}

static void set_errors(long maxerror_us, long esterror_us)
{
	struct timex tx = {
		.modes = ADJ_MAXERROR | ADJ_ESTERROR,
		.maxerror = maxerror_us,
		.esterror = esterror_us,
	};

	host_adjtimex(&tx);
	host_esterror_us = esterror_us;
}

/*
 * What an NTP daemon does once synchronized: no STA_UNSYNC, fresh error
 * bounds, and (@tai >= 0) the TAI offset, which setting the clock made
 * unknown.
 */
static void ntp_synced(long maxerror_us, long esterror_us, int tai)
{
	struct timex tx = {
		.modes = ADJ_STATUS | ADJ_MAXERROR | ADJ_ESTERROR,
		.maxerror = maxerror_us,
		.esterror = esterror_us,
	};

	tx.status = host_timex().status & ~STA_UNSYNC;
	host_adjtimex(&tx);
	host_esterror_us = esterror_us;
	if (tai >= 0)
		set_tai_offset(tai);
}

static void settime_ns(u64 ns)
{
	struct timespec ts = { .tv_sec = ns / NSEC_PER_SEC,
			       .tv_nsec = ns % NSEC_PER_SEC };

	TEST_ASSERT(!clock_settime(CLOCK_REALTIME, &ts),
		    "clock_settime() failed, errno %d", errno);
}

/*
 * Stop whatever slews the host clock: a kernel PLL offset (cleared while
 * STA_PLL is still set, or it stays) and an adjtime() in progress.
 */
static void stop_slewing(void)
{
	struct timex tx = { .modes = ADJ_OFFSET | ADJ_MICRO };

	if (host_timex().status & STA_PLL)
		host_adjtimex(&tx);
	TEST_ASSERT(!adjtime(&(struct timeval){}, NULL),
		    "adjtime(0) failed, errno %d", errno);
}

/*
 * The host clock as each test starts from: nominal rate, no slewing, no
 * leap second, synchronized with NTP_MAXERROR_US and an estimated error of
 * 0 (so that the published estimated error is the timekeeper's NTP error
 * and the conversion error alone), TAI known.  Setting the clock (forward,
 * by a millisecond) first clears the timekeeper's NTP error, which after a
 * test that slewed the clock can take a minute to work off and moves while
 * it is: a test starts from a host clock on its NTP line.
 */
static void host_baseline(void)
{
	struct timex tx;

	stop_slewing();
	settime_ns(now_ns(CLOCK_REALTIME) + NSEC_PER_MSEC);
	tx = host_timex();
	tx.modes = ADJ_STATUS | ADJ_MAXERROR | ADJ_ESTERROR | ADJ_FREQUENCY |
		   ADJ_TICK;
	tx.status &= ~(STA_UNSYNC | STA_PLL | STA_FLL | STA_INS | STA_DEL |
		       STA_PPSTIME | STA_PPSFREQ | STA_FREQHOLD);
	tx.maxerror = NTP_MAXERROR_US;
	tx.esterror = 0;
	tx.freq = 0;
	tx.tick = nominal_tick;
	host_adjtimex(&tx);
	host_esterror_us = 0;
	set_tai_offset(TAI_OFFSET);
	usleep(TICKS_US);
}

/* Step the host clock by @ns with ADJ_SETOFFSET, as chronyc makestep does. */
static void step_clock_ns(s64 ns)
{
	struct timex tx = { .modes = ADJ_SETOFFSET | ADJ_NANO };
	s64 sec = ns / NSEC_PER_SEC, nsec = ns % NSEC_PER_SEC;

	if (nsec < 0) {
		sec--;
		nsec += NSEC_PER_SEC;
	}
	tx.time.tv_sec = sec;
	tx.time.tv_usec = nsec;
	host_adjtimex(&tx);
}

static void write_sysfs(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY);

	TEST_ASSERT(fd >= 0, "open(%s) failed, errno %d", path, errno);
	TEST_ASSERT(write(fd, value, strlen(value)) == strlen(value),
		    "Writing '%s' to %s failed, errno %d", value, path, errno);
	close(fd);
}

/*
 * Put the host clock back as it was, as far as a test can: the clocksource
 * (switching clears the NTP state), the time (as CLOCK_MONOTONIC says it
 * went on; setting it clears the NTP state, which also ends any slewing),
 * then NTP's frequency, tick, status, error bounds, time constant and TAI
 * offset.  An offset of 0 was unknown: it is set before the clock, which
 * makes it unknown again.  Runs once, from atexit() or a signal handler.
 */
static void restore_host_clock(void)
{
	struct timex tx = { .modes = ADJ_TAI };
	struct timespec ts, mono;
	u64 ns;
	int fd;

	if (!host_saved)
		return;
	host_saved = false;

	fd = open(CLOCKSOURCE_DIR "current_clocksource", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, saved_clocksource, strlen(saved_clocksource)) < 0)
			perror("restoring the clocksource");
		close(fd);
	}

	if (!saved_timex.tai && adjtimex(&tx) < 0)
		perror("restoring the TAI offset");

	clock_gettime(CLOCK_MONOTONIC, &mono);
	ns = saved_realtime - saved_monotonic + mono.tv_sec * NSEC_PER_SEC +
	     mono.tv_nsec;
	ts.tv_sec = ns / NSEC_PER_SEC;
	ts.tv_nsec = ns % NSEC_PER_SEC;
	if (clock_settime(CLOCK_REALTIME, &ts))
		perror("restoring the time");

	/* In nanosecond mode, as microsecond mode adds 4 to the time constant. */
	tx = saved_timex;
	tx.modes = ADJ_TIMECONST | ADJ_NANO;
	if (adjtimex(&tx) < 0)
		perror("restoring the time constant");
	tx = saved_timex;
	tx.modes = ADJ_FREQUENCY | ADJ_STATUS | ADJ_MAXERROR | ADJ_ESTERROR |
		   ADJ_TICK | (saved_timex.status & STA_NANO ? ADJ_NANO : ADJ_MICRO);
	if (adjtimex(&tx) < 0)
		perror("restoring the NTP state");

	if (saved_timex.tai) {
		tx = (struct timex){ .modes = ADJ_TAI, .constant = saved_timex.tai };
		if (adjtimex(&tx) < 0)
			perror("restoring the TAI offset");
	}
}

/* Killed or crashed: still restore the host clock. */
static void restore_and_exit(int sig)
{
	restore_host_clock();
	_exit(KSFT_FAIL);
}

static void save_host_clock(void)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGABRT, SIGSEGV,
				    SIGBUS };
	char *cs = sys_get_cur_clocksource();
	struct sigaction sa = {
		.sa_handler = restore_and_exit,
		.sa_flags = SA_RESETHAND,
	};
	int i;

	snprintf(saved_clocksource, sizeof(saved_clocksource), "%s", cs);
	free(cs);
	saved_timex = host_timex();
	saved_monotonic = now_ns(CLOCK_MONOTONIC);
	saved_realtime = now_ns(CLOCK_REALTIME);
	host_saved = true;
	atexit(restore_host_clock);
	for (i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
}

static bool have_cap_sys_time(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};

	if (syscall(SYS_capget, &hdr, data))
		return false;
	return data[CAP_TO_INDEX(CAP_SYS_TIME)].effective &
	       CAP_TO_MASK(CAP_SYS_TIME);
}

/* Whether a test that changes the host clock may run; reports a skip if not. */
static bool destructive_ok(const char *name)
{
	if (!no_destructive)
		return true;
	ksft_test_result_skip("%s: %s\n", name, no_destructive);
	return false;
}

/* The host's tick count. */
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

static u64 vmclock_line_changes(struct test_vm *t)
{
	return vm_get_stat(t->vm, vmclock_line_changes);
}

/*
 * Whether the updates a VM got since @updates, for one host change, are
 * one, or one per line change it learned of since @changes: a rate change
 * in the middle of a tick leaves the timekeeper an NTP error that may make
 * kernel/time publish a second line at the next tick, and on a slow host
 * (KASAN) that can land while the first entry after the change is still
 * under way.  The work that brings a VM a line change may still be on its
 * way when the entry already published it: wait for it, briefly.
 */
static bool one_update_per_line(struct test_vm *t, u64 updates, u64 changes)
{
	u64 n = vmclock_updates(t) - updates;
	u64 end = now_ns(CLOCK_MONOTONIC) + NSEC_PER_SEC;

	if (n <= 1)
		return n == 1;
	while (vmclock_line_changes(t) - changes < n &&
	       now_ns(CLOCK_MONOTONIC) < end)
		usleep(1000);
	return vmclock_line_changes(t) - changes >= n;
}

/* What the guest does next; each VM has its own copy. */
static void set_guest_op(struct kvm_vm *vm, u32 op)
{
	WRITE_ONCE(*(u32 *)addr_gva2hva(vm, (gva_t)&guest_op), op);
}

static void run_vcpu_op(struct test_vm *t, struct kvm_vcpu *vcpu, u32 op,
			struct ucall *uc)
{
	set_guest_op(t->vm, op);

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

/* Run the vCPU once: any guest entry brings the vmclock up to date. */
static void run_sync(struct test_vm *t)
{
	struct ucall uc;

	run_op(t, OP_SYNC, &uc);
}

static void guest_read_clock(struct test_vm *t, struct guest_reading *r)
{
	struct ucall uc;

	run_op(t, OP_READ, &uc);
	r->rc = uc.args[0];
	r->status = uc.args[1];
	r->tsc = uc.args[2];
	r->ns = uc.args[3];
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

static struct vmclock_abi *vmclock_page(struct test_vm *t)
{
	return addr_gpa2hva(t->vm, VMCLOCK_GPA);
}

/* A consistent copy of what KVM published, read as the guest would. */
static void read_published(struct test_vm *t, struct vmclock_abi *out)
{
	struct vmclock_abi *clk = vmclock_page(t);
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

/* Run the vCPU and read what it published. */
static void run_and_read(struct test_vm *t, struct vmclock_abi *clk)
{
	run_sync(t);
	read_published(t, clk);
}

/*
 * The time @clk gives at counter value @c, in units of 2^-64 s, with KVM's
 * arithmetic (kvm_vmclock_time_at()): also for a counter before
 * counter_value, the line extrapolated backwards.
 */
static unsigned __int128 clk_time_at(const struct vmclock_abi *clk, u64 c)
{
	unsigned __int128 t0, d;

	t0 = (unsigned __int128)clk->time_sec << 64 | clk->time_frac_sec;
	if (c >= clk->counter_value)
		return t0 + (((unsigned __int128)(c - clk->counter_value) *
			      clk->counter_period_frac_sec) >>
			     clk->counter_period_shift);

	d = ((unsigned __int128)(clk->counter_value - c) *
	     clk->counter_period_frac_sec) >> clk->counter_period_shift;
	return d > t0 ? 0 : t0 - d;
}

/* Nanoseconds in @t units of 2^-64 s, rounded down. */
static u64 frac_to_ns(unsigned __int128 t)
{
	return (u64)(t >> 64) * NSEC_PER_SEC +
	       (u64)(((unsigned __int128)(u64)t * NSEC_PER_SEC) >> 64);
}

/* The time in ns (in the clock's own time scale) that @clk gives at @c. */
static u64 clk_ns(const struct vmclock_abi *clk, u64 c)
{
	return frac_to_ns(clk_time_at(clk, c));
}

/* The conversion error KVM adds: one guest TSC tick and 2 ns. */
static u64 conversion_error_ns(const struct vmclock_abi *clk)
{
	return (((unsigned __int128)clk->counter_period_frac_sec * NSEC_PER_SEC) >>
		(64 + clk->counter_period_shift)) + 2;
}

/*
 * The period's maximum error rate beyond the 500 ppm of NTP's maximum
 * error, in ppb: the rate at which the published line may move away from
 * host CLOCK_REALTIME (kernel/time's line_error_ppb: the drift it lets the
 * NTP line have before it publishes a new line, and a step of the
 * timekeeper's multiplier) and, while KVM slews a line, the slew rate.
 */
static double line_rate_ppb(const struct vmclock_abi *clk)
{
	double r = (double)clk->counter_period_maxerror_rate_frac_sec /
		   clk->counter_period_frac_sec;

	return r > MAXERROR_RATE ? (r - MAXERROR_RATE) * 1e9 : 0;
}

/*
 * How far host CLOCK_REALTIME may be from the published line at counter
 * value @c: the line's own error at counter_value (LINE_ERROR_FIXED_NS plus
 * the timekeeper's NTP error when the line was published), the conversion
 * error and, while KVM slews a line (kvm_vmclock_catch_up()), the distance
 * it still has to go, growing at line_rate_ppb() from counter_value.  All
 * but the fixed part are what the published estimated error adds to the
 * NTP daemon's, or what the period's maximum error rate adds to its
 * 500 ppm, so no host NTP error or slew can make this flake.
 */
static s64 line_bound_ns(const struct vmclock_abi *clk, u64 c)
{
	s64 bound;

	TEST_ASSERT(clk->flags & VMCLOCK_FLAG_TIME_ESTERROR_VALID,
		    "No estimated error published (status %u, flags 0x%llx)",
		    clk->clock_status, clk->flags);
	bound = clk->time_esterror_nanosec - host_esterror_us * NSEC_PER_USEC +
		LINE_ERROR_FIXED_NS + LINE_SLACK_NS;
	if (c > clk->counter_value)
		bound += (s64)ceil(line_rate_ppb(clk) / 1e9 *
				   (clk_ns(clk, c) - clk_ns(clk, clk->counter_value)));
	return bound;
}

/* The published maximum error at counter value @c: it grows from counter_value. */
static s64 max_bound_ns(const struct vmclock_abi *clk, u64 c)
{
	unsigned __int128 growth = 0;

	if (c > clk->counter_value)
		growth = ((unsigned __int128)(c - clk->counter_value) *
			  clk->counter_period_maxerror_rate_frac_sec) >>
			 clk->counter_period_shift;
	/* Rounded up: a bound. */
	return clk->time_maxerror_nanosec + frac_to_ns(growth) + 1;
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
 * The published vmclock (into @clk) against host time at one TSC value:
 * host CLOCK_REALTIME from KVM_GET_CLOCK, plus the TAI offset for a TAI
 * clock.  The TSC is not scaled here, so the guest TSC is the host TSC plus
 * the offset.
 */
static void measure(struct test_vm *t, struct vmclock_abi *clk,
		    struct deviation *d)
{
	struct vmclock_abi *page = vmclock_page(t);
	u64 c, ref;
	int tai;

	/* A reader vCPU may write the page meanwhile: then again. */
	do {
		read_published(t, clk);
		get_kvm_clock(t, &d->kc);
		tai = host_tai();
	} while (READ_ONCE(page->seq_count) != clk->seq_count);

	c = d->kc.host_tsc + t->tsc_offset;
	ref = d->kc.realtime;
	if (clk->time_type == VMCLOCK_TIME_TAI)
		ref += (u64)tai * NSEC_PER_SEC;
	d->status = clk->clock_status;
	d->err_ns = d->status == VMCLOCK_STATUS_UNRELIABLE ? 0 :
		    (s64)(clk_ns(clk, c) - ref);
	d->line_bound_ns = -1;
	d->max_bound_ns = -1;
	if (d->status == VMCLOCK_STATUS_SYNCHRONIZED) {
		d->line_bound_ns = line_bound_ns(clk, c);
		d->max_bound_ns = max_bound_ns(clk, c);
	}
}

/* The vmclock of @t is on host time, within the line's published error. */
static s64 assert_on_host_time(const char *what, struct test_vm *t)
{
	struct vmclock_abi clk;
	struct deviation d;

	measure(t, &clk, &d);
	TEST_ASSERT(d.status == VMCLOCK_STATUS_SYNCHRONIZED,
		    "%s: clock_status %u, expected SYNCHRONIZED", what, d.status);
	TEST_ASSERT(llabs(d.err_ns) <= d.line_bound_ns,
		    "%s: the vmclock is %+ld ns from host time at the same TSC, beyond the line's error bound of %ld ns (esterror %llu ns)",
		    what, d.err_ns, d.line_bound_ns, clk.time_esterror_nanosec);
	return d.err_ns;
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

/* UTC vmclock without a known TAI offset: no flag, offset 0. */
static void assert_no_tai_offset(const char *what, const struct vmclock_abi *clk)
{
	assert_flags(what, clk, 0, VMCLOCK_FLAG_TAI_OFFSET_VALID);
	TEST_ASSERT(!clk->tai_offset_sec, "%s: tai_offset_sec %d without a valid offset",
		    what, (s16)clk->tai_offset_sec);
}

/*
 * Run @t's vCPU until its vmclock shows @status (changes that reach the
 * clock line at the next tick), for at most WAIT_NS.
 */
static void wait_status(const char *what, struct test_vm *t, u8 status,
			struct vmclock_abi *clk)
{
	u64 end = now_ns(CLOCK_MONOTONIC) + WAIT_NS;

	for (;;) {
		run_and_read(t, clk);
		if (clk->clock_status == status)
			return;
		TEST_ASSERT(now_ns(CLOCK_MONOTONIC) < end,
			    "%s: clock_status still %u after %lu ms, expected %u (flags 0x%llx)",
			    what, clk->clock_status, WAIT_NS / NSEC_PER_MSEC,
			    status, clk->flags);
		usleep(2000);
	}
}

/* Ratio of two periods (2^-(64 + shift) s units) in ppm, minus 1e6. */
static double period_change_ppm(u64 before, u8 before_shift, u64 after,
				u8 after_shift)
{
	double b = before / (double)(1ULL << before_shift) / 18446744073709551616.0;
	double a = after / (double)(1ULL << after_shift) / 18446744073709551616.0;

	return (a / b - 1) * 1e6;
}

static double clk_change_ppm(const struct vmclock_abi *before,
			     const struct vmclock_abi *after)
{
	return period_change_ppm(before->counter_period_frac_sec,
				 before->counter_period_shift,
				 after->counter_period_frac_sec,
				 after->counter_period_shift);
}

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

/* A passed sub-test, with the figures it measured. */
static void __printf(2, 3) test_passed(const char *name, const char *fmt, ...)
{
	char buf[768];
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

/* Guests that read their clock in a loop, one thread per vCPU. */
struct reader {
	struct test_vm *t;
	struct kvm_vcpu *vcpu;
	struct ucall uc;	/* The guest's report */
	pthread_t thread;
};

/* The guest's report, see guest_read_loop(). */
#define R_READS(r)		((r)->uc.args[0])
#define R_UNRELIABLE(r)		((r)->uc.args[1])
#define R_BACKWARDS(r)		((r)->uc.args[2])
#define R_WORST_BACK(r)		((r)->uc.args[3])
#define R_SEQS(r)		((r)->uc.args[4])
#define R_JUMPS(r)		((r)->uc.args[5])

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

static void stop_readers(struct reader *r, int nr)
{
	int i;

	for (i = 0; i < nr; i++)
		WRITE_ONCE(*(bool *)addr_gva2hva(r[i].t->vm, (gva_t)&guest_stop),
			   true);
	for (i = 0; i < nr; i++)
		pthread_join(r[i].thread, NULL);
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

/*
 * The error bounds of a SYNCHRONIZED vmclock are what the host's NTP state
 * says: the estimated error is NTP's plus the timekeeper's NTP error plus
 * the conversion error, the maximum error NTP's when the line was published
 * plus the next second's growth, the line's own error (the same NTP error
 * plus LINE_ERROR_FIXED_NS) and the conversion error, and the period's
 * maximum error rate 500 ppm plus the line's own drift bound (below
 * LINE_RATE_MAX_PPB).  The kernel may have grown NTP's maximum error
 * once between adjtimex() and the tick that published the line.  Returns
 * the timekeeper's NTP error.
 */
static s64 assert_error_bounds(const char *what, const struct vmclock_abi *c,
			       long maxerror_us, long esterror_us)
{
	u64 conv = conversion_error_ns(c);
	s64 ntp_err = c->time_esterror_nanosec - esterror_us * NSEC_PER_USEC - conv;
	u64 max0 = (maxerror_us + MAXERROR_GROWTH_US) * NSEC_PER_USEC + ntp_err +
		   LINE_ERROR_FIXED_NS + conv;
	double line_ppb = line_rate_ppb(c);

	TEST_ASSERT(ntp_err >= 0 && ntp_err < 100000,
		    "%s: esterror %llu ns for NTP's %ld us and a conversion error of %lu ns: a timekeeper NTP error of %ld ns?",
		    what, c->time_esterror_nanosec, esterror_us, conv, ntp_err);
	TEST_ASSERT(c->time_maxerror_nanosec == max0 ||
		    c->time_maxerror_nanosec == max0 + MAXERROR_GROWTH_US * NSEC_PER_USEC,
		    "%s: maxerror %llu ns, expected %lu ns: (%ld + %d) us from NTP, %ld ns NTP error, %d ns line error, %lu ns conversion (or %d us more)",
		    what, c->time_maxerror_nanosec, max0, maxerror_us,
		    MAXERROR_GROWTH_US, ntp_err, LINE_ERROR_FIXED_NS, conv,
		    MAXERROR_GROWTH_US);
	TEST_ASSERT(c->counter_period_maxerror_rate_frac_sec >=
		    c->counter_period_frac_sec * MAXERROR_RATE &&
		    line_ppb < LINE_RATE_MAX_PPB,
		    "%s: period maximum error rate %.9f of the period, expected %.4f plus the line's drift (below %d ppb)",
		    what, (double)c->counter_period_maxerror_rate_frac_sec /
		    c->counter_period_frac_sec, MAXERROR_RATE, LINE_RATE_MAX_PPB);
	return ntp_err;
}

/* 2. What is published for TAI and UTC, synchronized or not, TAI known or not. */
static void test_fields(void)
{
	struct vmclock_abi c, u;
	struct test_vm tai, utc;
	u64 esterr, maxerr;
	double line_ppb;
	bool pps_error;
	s64 ntp_err;

	if (!destructive_ok("fields"))
		return;
	host_baseline();
	set_status(STA_UNSYNC, 0);
	usleep(TICKS_US);
	create_test_vm(&tai, 0);
	create_test_vm(&utc, KVM_VMCLOCK_F_UTC);

	TEST_ASSERT(host_time_state() == TIME_ERROR,
		    "STA_UNSYNC: adjtimex() returns %d, not TIME_ERROR",
		    host_time_state());
	read_published(&tai, &c);
	TEST_ASSERT(c.magic == VMCLOCK_MAGIC && c.version == 1 &&
		    c.size == PAGE_SIZE && c.counter_id == VMCLOCK_COUNTER_X86_TSC,
		    "Bad header: magic 0x%x version %u size %u counter_id %u",
		    c.magic, c.version, c.size, c.counter_id);
	TEST_ASSERT(c.time_type == VMCLOCK_TIME_TAI &&
		    (s16)c.tai_offset_sec == -TAI_OFFSET &&
		    c.leap_indicator == VMCLOCK_LEAP_NONE,
		    "TAI vmclock: time_type %u tai_offset_sec %d leap_indicator %u, expected TAI, %d, NONE",
		    c.time_type, (s16)c.tai_offset_sec, c.leap_indicator,
		    -TAI_OFFSET);
	assert_status("unsynchronized host, TAI", &c, VMCLOCK_STATUS_FREERUNNING);
	assert_flags("unsynchronized host, TAI", &c,
		     VMCLOCK_FLAG_TAI_OFFSET_VALID | VMCLOCK_FLAG_TIME_MONOTONIC,
		     VMCLOCK_FLAG_TIME_ESTERROR_VALID |
		     VMCLOCK_FLAG_TIME_MAXERROR_VALID |
		     VMCLOCK_FLAG_PERIOD_MAXERROR_VALID);
	TEST_ASSERT(!c.time_esterror_nanosec && !c.time_maxerror_nanosec &&
		    !c.counter_period_maxerror_rate_frac_sec,
		    "Free-running: error fields %llu / %llu / %llu, expected 0",
		    c.time_esterror_nanosec, c.time_maxerror_nanosec,
		    c.counter_period_maxerror_rate_frac_sec);

	read_published(&utc, &u);
	TEST_ASSERT(u.time_type == VMCLOCK_TIME_UTC &&
		    (s16)u.tai_offset_sec == -TAI_OFFSET,
		    "UTC vmclock: time_type %u tai_offset_sec %d", u.time_type,
		    (s16)u.tai_offset_sec);
	assert_status("unsynchronized host, UTC", &u, VMCLOCK_STATUS_FREERUNNING);
	assert_flags("unsynchronized host, UTC", &u,
		     VMCLOCK_FLAG_TAI_OFFSET_VALID | VMCLOCK_FLAG_TIME_MONOTONIC, 0);

	/* An NTP daemon declares the clock synchronized. */
	ntp_synced(NTP_MAXERROR_US, NTP_ESTERROR_US, -1);
	TEST_ASSERT(host_time_state() != TIME_ERROR,
		    "Synchronized: adjtimex() still returns TIME_ERROR");
	wait_status("synchronized host, TAI", &tai, VMCLOCK_STATUS_SYNCHRONIZED, &c);
	assert_flags("synchronized host", &c,
		     VMCLOCK_FLAG_TIME_ESTERROR_VALID |
		     VMCLOCK_FLAG_TIME_MAXERROR_VALID |
		     VMCLOCK_FLAG_PERIOD_MAXERROR_VALID |
		     VMCLOCK_FLAG_TAI_OFFSET_VALID | VMCLOCK_FLAG_TIME_MONOTONIC,
		     0);
	ntp_err = assert_error_bounds("TAI", &c, NTP_MAXERROR_US, NTP_ESTERROR_US);
	esterr = c.time_esterror_nanosec;
	maxerr = c.time_maxerror_nanosec;
	line_ppb = line_rate_ppb(&c);
	wait_status("synchronized host, UTC", &utc, VMCLOCK_STATUS_SYNCHRONIZED, &u);
	assert_error_bounds("UTC", &u, NTP_MAXERROR_US, NTP_ESTERROR_US);

	/*
	 * PPS time wanted without a PPS signal: TIME_ERROR where the kernel
	 * has PPS support (CONFIG_NTP_PPS), nothing otherwise.  The vmclock
	 * follows what adjtimex() says.
	 */
	set_status(STA_PPSTIME, 0);
	pps_error = host_time_state() == TIME_ERROR;
	usleep(TICKS_US);
	wait_status("STA_PPSTIME", &tai, pps_error ? VMCLOCK_STATUS_FREERUNNING :
		    VMCLOCK_STATUS_SYNCHRONIZED, &c);
	if (pps_error)
		assert_flags("PPS error", &c, 0, VMCLOCK_FLAG_TIME_ESTERROR_VALID |
			     VMCLOCK_FLAG_TIME_MAXERROR_VALID);
	set_status(0, STA_PPSTIME);
	wait_status("PPS error gone", &tai, VMCLOCK_STATUS_SYNCHRONIZED, &c);

	/* TAI offsets 1..32767 are TAI; 0 is adjtimex()'s "unknown". */
	set_tai_offset(0);
	wait_status("TAI offset 0", &tai, VMCLOCK_STATUS_UNRELIABLE, &c);
	run_and_read(&utc, &u);
	assert_status("UTC vmclock, TAI offset 0", &u, VMCLOCK_STATUS_SYNCHRONIZED);
	assert_no_tai_offset("UTC vmclock, TAI offset 0", &u);

	set_tai_offset(TAI_OFFSET_MAX);
	wait_status("TAI offset 32767", &tai, VMCLOCK_STATUS_SYNCHRONIZED, &c);
	TEST_ASSERT((s16)c.tai_offset_sec == -TAI_OFFSET_MAX &&
		    (c.flags & VMCLOCK_FLAG_TAI_OFFSET_VALID),
		    "TAI offset %d: tai_offset_sec %d, flags 0x%llx",
		    TAI_OFFSET_MAX, (s16)c.tai_offset_sec, c.flags);
	set_tai_offset(TAI_OFFSET_MAX + 1);
	wait_status("TAI offset 32768", &tai, VMCLOCK_STATUS_UNRELIABLE, &c);
	run_and_read(&utc, &u);
	assert_status("UTC vmclock, TAI offset 32768", &u, VMCLOCK_STATUS_SYNCHRONIZED);
	assert_no_tai_offset("UTC vmclock, TAI offset 32768", &u);

	set_tai_offset(TAI_OFFSET);
	wait_status("TAI offset back", &tai, VMCLOCK_STATUS_SYNCHRONIZED, &c);

	/*
	 * Setting the clock clears the NTP state: TAI is unknown although
	 * adjtimex() still reports the offset, until the daemon sets it.
	 */
	settime_ns(now_ns(CLOCK_REALTIME) + NSEC_PER_MSEC);
	TEST_ASSERT(host_tai() == TAI_OFFSET && host_time_state() == TIME_ERROR,
		    "After clock_settime(): TAI offset %d, adjtimex() %d",
		    host_tai(), host_time_state());
	run_and_read(&tai, &c);
	assert_status("TAI vmclock after clock_settime()", &c, VMCLOCK_STATUS_UNRELIABLE);
	run_and_read(&utc, &u);
	assert_status("UTC vmclock after clock_settime()", &u, VMCLOCK_STATUS_FREERUNNING);
	assert_no_tai_offset("UTC vmclock after clock_settime()", &u);
	ntp_synced(NTP_MAXERROR_US, 0, TAI_OFFSET);
	wait_status("ADJ_TAI after clock_settime()", &tai, VMCLOCK_STATUS_SYNCHRONIZED, &c);
	wait_status("ADJ_TAI after clock_settime(), UTC", &utc,
		    VMCLOCK_STATUS_SYNCHRONIZED, &u);
	assert_flags("ADJ_TAI after clock_settime(), UTC", &u,
		     VMCLOCK_FLAG_TAI_OFFSET_VALID, 0);

	destroy_test_vm(&tai);
	destroy_test_vm(&utc);
	test_passed("fields",
		    "TAI/UTC, FREERUNNING/SYNCHRONIZED as adjtimex() says TIME_ERROR or not (STA_UNSYNC; STA_PPSTIME without signal: %s); esterror %u us -> %lu ns, maxerror %u us -> %lu ns (NTP error %ld ns), rate 500 ppm + %.0f ppb; TAI offsets 0, 32768 and unset (clock_settime()) are no TAI\n",
		    pps_error ? "TIME_ERROR" : "no error, no PPS support",
		    NTP_ESTERROR_US, esterr, NTP_MAXERROR_US, maxerr, ntp_err,
		    line_ppb);
}

/*
 * Run @t's vCPU until KVM gives its VM the master clock, which
 * KVM_GET_CLOCK needs for its (CLOCK_REALTIME, TSC) pair.
 */
static void wait_master_clock(struct test_vm *t)
{
	u64 end = now_ns(CLOCK_MONOTONIC) + WAIT_NS;
	struct kvm_clock_data kc;

	for (;;) {
		run_sync(t);
		memset(&kc, 0, sizeof(kc));
		vm_ioctl(t->vm, KVM_GET_CLOCK, &kc);
		if (kc.flags & KVM_CLOCK_TSC_STABLE)
			return;
		TEST_ASSERT(now_ns(CLOCK_MONOTONIC) < end,
			    "No master clock %lu ms after the host went back to tsc",
			    WAIT_NS / NSEC_PER_MSEC);
		usleep(1000);
	}
}

/* 3. The guest's time agrees with host CLOCK_TAI. */
static void test_accuracy(void)
{
	s64 worst = 0, bound = 0;
	struct guest_reading r;
	struct vmclock_abi clk;
	struct deviation d;
	u64 before, after;
	struct test_vm t;
	int i;

	if (!destructive_ok("accuracy"))
		return;
	host_baseline();
	create_test_vm(&t, 0);

	/* At the same TSC value, from KVM_GET_CLOCK. */
	for (i = 0; i < 100; i++) {
		measure(&t, &clk, &d);
		assert_status("accuracy", &clk, VMCLOCK_STATUS_SYNCHRONIZED);
		TEST_ASSERT(llabs(d.err_ns) <= d.line_bound_ns,
			    "The published clock is %+ld ns from host CLOCK_TAI at the same TSC, beyond the line's error bound of %ld ns",
			    d.err_ns, d.line_bound_ns);
		if (llabs(d.err_ns) >= llabs(worst)) {
			worst = d.err_ns;
			bound = d.line_bound_ns;
		}
	}

	/* What the guest reads lies between host reads around its run. */
	before = now_ns(CLOCK_TAI);
	guest_read_clock(&t, &r);
	after = now_ns(CLOCK_TAI);
	TEST_ASSERT(r.rc == VMCLOCK_READ_OK, "Guest read %s",
		    vmclock_read_status_name(r.rc));
	TEST_ASSERT(r.ns + bound >= before && r.ns <= after + bound,
		    "Guest read %lu ns, outside [%lu, %lu] read by the host around it (+- %ld ns)",
		    r.ns, before, after, bound);

	destroy_test_vm(&t);
	test_passed("accuracy",
		    "published clock vs host CLOCK_TAI at the same TSC: worst %+ld ns in 100 samples (bound %ld ns: the line's error as published); guest read %ld ns after the host's read before its run\n",
		    worst, bound, (s64)(r.ns - before));
}

/*
 * 4. adjtimex(ADJ_FREQUENCY) by +/-100 ppm: the vmclock follows at once,
 * the kvmclock does not.
 */
struct freq_result {
	double period_ppm;	/* Period change as first published */
	double final_ppm;	/* ... and once any slew is over */
	bool gentle;		/* The slew was gentle: not over */
	double vm_drift_ppm;	/* vmclock against host time, then */
	double kvmclock_drift_ppm;
	s64 dev_ns;		/* vmclock - host time, then */
	s64 bound_ns;		/* ... and the line's error bound */
};

static void freq_step(struct test_vm *t, long ppm, bool slower,
		      struct freq_result *f)
{
	struct guest_reading before, after;
	struct vmclock_abi c0, c1, c2;
	struct deviation d0, d1;
	u64 updates, changes;
	double dt;

	read_published(t, &c0);
	guest_read_clock(t, &before);
	updates = vmclock_updates(t);
	changes = vmclock_line_changes(t);
	set_freq_ppm(PPM(ppm));
	/* The update reaches the guest before it runs again. */
	guest_read_clock(t, &after);
	TEST_ASSERT(after.period != before.period &&
		    one_update_per_line(t, updates, changes),
		    "%+ld ppm: the guest's next run saw period %lu (was %lu), vmclock_updates +%lu for %lu line changes",
		    ppm, after.period, before.period, vmclock_updates(t) - updates,
		    vmclock_line_changes(t) - changes);
	updates = vmclock_updates(t) - 1;
	f->period_ppm = period_change_ppm(before.period, before.shift,
					  after.period, after.shift);

	/*
	 * A slower line starts behind the one the guest had, so KVM slews
	 * to it, then publishes the NTP line itself, unless it slews gently.
	 */
	f->gentle = slower && SLEW_GENTLE(f->period_ppm - NTP_DOWN_PPM);
	if (slower && !f->gentle)
		wait_for_update(t, updates + 1);
	read_published(t, &c1);
	f->final_ppm = clk_change_ppm(&c0, &c1);

	/* A second of steady host: the vmclock follows, no more updates. */
	updates = vmclock_updates(t);
	measure(t, &c1, &d0);
	usleep(1000000);
	run_sync(t);
	measure(t, &c2, &d1);
	TEST_ASSERT(vmclock_updates(t) == updates && c2.seq_count == c1.seq_count,
		    "%+ld ppm: %lu updates while the host clock was steady",
		    ppm, vmclock_updates(t) - updates);
	TEST_ASSERT(llabs(d0.err_ns) <= d0.line_bound_ns &&
		    llabs(d1.err_ns) <= d1.line_bound_ns,
		    "%+ld ppm: vmclock - host TAI %+ld ns, then %+ld ns a second later (bound %ld ns)",
		    ppm, d0.err_ns, d1.err_ns, d1.line_bound_ns);
	f->dev_ns = d1.err_ns;
	f->bound_ns = d1.line_bound_ns;

	dt = d1.kc.realtime - d0.kc.realtime;
	f->vm_drift_ppm = (d1.err_ns - d0.err_ns) / dt * 1e6;
	f->kvmclock_drift_ppm = (((s64)(d1.kc.clock - d0.kc.clock)) - dt) / dt * 1e6;
}

static void test_frequency(void)
{
	struct freq_result up, down;
	struct test_vm t;

	if (!destructive_ok("frequency"))
		return;
	host_baseline();
	create_test_vm(&t, 0);

	freq_step(&t, FREQ_STEP_PPM, false, &up);
	freq_step(&t, -FREQ_STEP_PPM, true, &down);
	set_freq_ppm(0);
	destroy_test_vm(&t);

	/*
	 * The period is the NTP-adjusted rate: +100 ppm, then -200 ppm
	 * exactly once the slew is over (or up to 1/32 ppm less while KVM
	 * slews gently, for a minute).  The vmclock is on the NTP line;
	 * host CLOCK_REALTIME, which the timekeeper keeps continuous at the
	 * rate change, converges to that line over the next ticks at up to
	 * one multiplier step per tick (about 0.2 ppm here).  The kvmclock
	 * runs at the nominal TSC rate, so against host time it is 100 ppm
	 * slow, then 100 ppm fast; allow 20 ppm for the emulated host's
	 * timing noise over a second.
	 */
	TEST_ASSERT(fabs(up.period_ppm - FREQ_STEP_PPM) < 0.001 &&
		    fabs(up.final_ppm - FREQ_STEP_PPM) < 0.001 &&
		    down.final_ppm - NTP_DOWN_PPM < 0.001 &&
		    down.final_ppm - NTP_DOWN_PPM >
		    -(down.gentle ? GENTLE_SLEW_PPM : 0) - 0.001 &&
		    down.period_ppm < NTP_DOWN_PPM,
		    "Period changed by %+.4f, then %+.4f (slewing%s: %+.4f) ppm, expected +100 and %+.4f",
		    up.period_ppm, down.final_ppm, down.gentle ? " gently" : "",
		    down.period_ppm, NTP_DOWN_PPM);
	TEST_ASSERT(fabs(up.vm_drift_ppm) < 0.5 && fabs(down.vm_drift_ppm) < 0.5,
		    "vmclock drifted from host time by %+.3f / %+.3f ppm",
		    up.vm_drift_ppm, down.vm_drift_ppm);
	TEST_ASSERT(fabs(up.kvmclock_drift_ppm + FREQ_STEP_PPM) < 20 &&
		    fabs(down.kvmclock_drift_ppm - FREQ_STEP_PPM) < 20,
		    "kvmclock drifted from host time by %+.1f / %+.1f ppm, expected -100 / +100",
		    up.kvmclock_drift_ppm, down.kvmclock_drift_ppm);
	test_passed("frequency",
		    "+100 ppm: period %+.3f ppm, vmclock vs host %+.4f ppm (%+ld ns, bound %ld), kvmclock vs host %+.1f ppm; -100 ppm: period %+.3f ppm while slewing%s, %+.4f ppm after, vmclock vs host %+.4f ppm (%+ld ns, bound %ld), kvmclock %+.1f ppm\n",
		    up.period_ppm, up.vm_drift_ppm, up.dev_ns, up.bound_ns,
		    up.kvmclock_drift_ppm, down.period_ppm,
		    down.gentle ? " gently" : "", down.final_ppm,
		    down.vm_drift_ppm, down.dev_ns, down.bound_ns,
		    down.kvmclock_drift_ppm);
}

/*
 * Run the guest every STEADY_RUN_US for @ns, checking the vmclock against
 * host time within the published line error, or @bound while none is
 * published; return the ticks seen meanwhile.
 */
static u64 run_steadily(struct test_vm *t, u64 ns, s64 bound, s64 *worst_dev)
{
	u64 end = now_ns(CLOCK_MONOTONIC) + ns;
	u64 j0 = host_jiffies();
	struct vmclock_abi clk;
	struct deviation d;
	s64 b;

	*worst_dev = 0;
	while (now_ns(CLOCK_MONOTONIC) < end) {
		run_sync(t);
		measure(t, &clk, &d);
		b = d.line_bound_ns >= 0 ? d.line_bound_ns : bound;
		TEST_ASSERT(llabs(d.err_ns) <= b,
			    "Steady host (clock_status %u): the vmclock is %+ld ns from host time, bound %ld ns",
			    d.status, d.err_ns, b);
		if (llabs(d.err_ns) > llabs(*worst_dev))
			*worst_dev = d.err_ns;
		usleep(STEADY_RUN_US);
	}
	return host_jiffies() - j0;
}

/* 5. A steady host clock publishes nothing, however often it ticks. */
static void test_steady(void)
{
	u64 ticks_free, ticks_synced, updates;
	s64 dev_free, dev_synced, bound;
	struct vmclock_abi clk;
	struct test_vm t;

	if (!destructive_ok("steady"))
		return;
	host_baseline();
	create_test_vm(&t, 0);

	/* Synchronized: the maximum error grows every second by itself. */
	run_and_read(&t, &clk);
	assert_status("steady, synchronized", &clk, VMCLOCK_STATUS_SYNCHRONIZED);
	/* The line's error bound then, grown over both phases. */
	bound = line_bound_ns(&clk, clk.counter_value) +
		(s64)(line_rate_ppb(&clk) * 2 * (STEADY_SEC + 1));
	updates = vmclock_updates(&t);
	ticks_synced = run_steadily(&t, STEADY_SEC * NSEC_PER_SEC, -1, &dev_synced);
	TEST_ASSERT(vmclock_updates(&t) == updates,
		    "Synchronized host: %lu vmclock updates in %d s (%lu ticks)",
		    vmclock_updates(&t) - updates, STEADY_SEC, ticks_synced);

	/*
	 * Free-running: no error bounds are published, but the line and the
	 * timekeeper's NTP error are what they were.
	 */
	set_status(STA_UNSYNC, 0);
	wait_status("steady, free-running", &t, VMCLOCK_STATUS_FREERUNNING, &clk);
	updates = vmclock_updates(&t);
	ticks_free = run_steadily(&t, STEADY_SEC * NSEC_PER_SEC, bound, &dev_free);
	TEST_ASSERT(vmclock_updates(&t) == updates,
		    "Free-running host: %lu vmclock updates in %d s (%lu ticks)",
		    vmclock_updates(&t) - updates, STEADY_SEC, ticks_free);

	TEST_ASSERT(ticks_free >= MIN_STEADY_TICKS &&
		    ticks_synced >= MIN_STEADY_TICKS,
		    "Only %lu and %lu ticks in %d s", ticks_free, ticks_synced,
		    STEADY_SEC);

	destroy_test_vm(&t);
	test_passed("steady",
		    "0 updates in %d s synchronized (%lu ticks) and %d s free-running (%lu ticks); worst deviation %+ld / %+ld ns (bound %ld ns)\n",
		    STEADY_SEC, ticks_synced, STEADY_SEC, ticks_free,
		    dev_synced, dev_free, bound);
}

/*
 * 6. Host clocksource away from the TSC: UNRELIABLE before the guest runs
 * again.  Back to the TSC: valid at the next entry, but the switch cleared
 * the NTP state, so UTC is free-running without a TAI offset and TAI is
 * unknown until the NTP daemon sets ADJ_TAI again.
 */
static void test_clocksource(void)
{
	struct test_vm tai, utc;
	struct guest_reading r;
	struct vmclock_abi c, u;
	const char *other;
	u64 start, took;
	bool mono;

	if (!destructive_ok("clocksource"))
		return;
	other = other_clocksource();
	if (!other) {
		ksft_test_result_skip("clocksource: the host has no clocksource besides the TSC\n");
		return;
	}
	host_baseline();
	create_test_vm(&tai, 0);
	create_test_vm(&utc, KVM_VMCLOCK_F_UTC);
	guest_read_clock(&tai, &r);
	TEST_ASSERT(r.rc == VMCLOCK_READ_OK, "Guest read %s before the switch",
		    vmclock_read_status_name(r.rc));

	write_sysfs(CLOCKSOURCE_DIR "current_clocksource", other);
	guest_read_clock(&tai, &r);
	TEST_ASSERT(r.rc == VMCLOCK_READ_UNRELIABLE,
		    "First guest run after switching to %s: the TAI guest read %s, not UNRELIABLE",
		    other, vmclock_read_status_name(r.rc));
	guest_read_clock(&utc, &r);
	TEST_ASSERT(r.rc == VMCLOCK_READ_UNRELIABLE,
		    "First guest run after switching to %s: the UTC guest read %s, not UNRELIABLE",
		    other, vmclock_read_status_name(r.rc));

	write_sysfs(CLOCKSOURCE_DIR "current_clocksource", "tsc");
	guest_read_clock(&utc, &r);
	TEST_ASSERT(r.rc == VMCLOCK_READ_OK &&
		    r.status == VMCLOCK_STATUS_FREERUNNING,
		    "First guest run back on tsc: the UTC guest read %s, clock_status %u, expected FREERUNNING (the switch cleared the NTP state)",
		    vmclock_read_status_name(r.rc), r.status);
	read_published(&utc, &u);
	assert_no_tai_offset("UTC back on tsc", &u);
	mono = u.flags & VMCLOCK_FLAG_TIME_MONOTONIC;
	guest_read_clock(&tai, &r);
	TEST_ASSERT(r.rc == VMCLOCK_READ_UNRELIABLE && host_time_state() == TIME_ERROR,
		    "Back on tsc, before ADJ_TAI: the TAI guest read %s (adjtimex() %d), expected UNRELIABLE",
		    vmclock_read_status_name(r.rc), host_time_state());

	start = now_ns(CLOCK_MONOTONIC);
	ntp_synced(NTP_MAXERROR_US, 0, TAI_OFFSET);
	wait_status("TAI back on tsc after ADJ_TAI", &tai,
		    VMCLOCK_STATUS_SYNCHRONIZED, &c);
	took = now_ns(CLOCK_MONOTONIC) - start;
	wait_status("UTC back on tsc after ADJ_TAI", &utc,
		    VMCLOCK_STATUS_SYNCHRONIZED, &u);
	wait_master_clock(&tai);
	assert_on_host_time("TAI, back on tsc", &tai);
	assert_on_host_time("UTC, back on tsc", &utc);

	destroy_test_vm(&tai);
	destroy_test_vm(&utc);
	test_passed("clocksource",
		    "%s -> UNRELIABLE at the next entry (TAI and UTC); tsc -> UTC FREERUNNING at the next entry (TIME_MONOTONIC %s), TAI once ADJ_TAI is set (%lu us)\n",
		    other, mono ? "kept" : "cleared", took / 1000);
}

/*
 * A thread that keeps a CPU busy at real-time priority, so that the per-CPU
 * workqueues there (whose kworkers are SCHED_OTHER) do not run until
 * hog_stop().
 */
struct hog {
	pthread_t thread;
	bool running;
	bool stop;
};

static void *hog_thread(void *arg)
{
	struct hog *h = arg;

	WRITE_ONCE(h->running, true);
	while (!READ_ONCE(h->stop))
		cpu_relax();
	return NULL;
}

static bool hog_start(struct hog *h, int cpu)
{
	struct sched_param sp = { .sched_priority = 1 };
	pthread_attr_t attr;
	cpu_set_t cpus;
	int r;

	h->running = false;
	h->stop = false;
	CPU_ZERO(&cpus);
	CPU_SET(cpu, &cpus);
	pthread_attr_init(&attr);
	pthread_attr_setaffinity_np(&attr, sizeof(cpus), &cpus);
	pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
	pthread_attr_setschedparam(&attr, &sp);
	r = pthread_create(&h->thread, &attr, hog_thread, h);
	pthread_attr_destroy(&attr);
	if (r)
		return false;
	while (!READ_ONCE(h->running))
		sched_yield();
	return true;
}

static void hog_stop(struct hog *h)
{
	WRITE_ONCE(h->stop, true);
	pthread_join(h->thread, NULL);
}

/*
 * 7. No guest entry with a stale line: right after the host clocksource
 * left the TSC, the very first guest entry must see UNRELIABLE.  The line
 * changes in the switch itself; its notifier reaches the VMs only through
 * irq_work and a workqueue, so it is the check at guest entry
 * (kvm_vcpu_exit_request()) that keeps the vCPU from entering with the old
 * line.  The switch runs in stop_machine() on the first online CPU, where
 * the irq_work and so the per-CPU works (KVM's and the vmclock's) are
 * queued; with that CPU busy at real-time priority (the second half of the
 * rounds), they cannot run before the vCPU, on the other CPU, enters the
 * guest.  The master clock shows it: KVM_GET_CLOCK still has it after the
 * entry if the workqueue's request had not reached the vCPU.  Without the
 * entry check, those rounds would read the old SYNCHRONIZED or FREERUNNING
 * status.
 */
static void test_stale_entry(void)
{
	int i, early = 0, hogged = 0, early_hogged = 0;
	struct kvm_clock_data kc;
	struct guest_reading r;
	cpu_set_t saved_cpus;
	bool use_hog, hog_on;
	const char *other;
	struct test_vm t;
	struct hog h;

	if (!destructive_ok("stale entry"))
		return;
	other = other_clocksource();
	if (!other) {
		ksft_test_result_skip("stale entry: the host has no clocksource besides the TSC\n");
		return;
	}
	host_baseline();
	/* UTC: valid again as soon as the host is back on the TSC. */
	create_test_vm(&t, KVM_VMCLOCK_F_UTC);

	TEST_ASSERT(!sched_getaffinity(0, sizeof(saved_cpus), &saved_cpus),
		    "sched_getaffinity() failed, errno %d", errno);
	use_hog = sysconf(_SC_NPROCESSORS_ONLN) >= 2 &&
		  CPU_ISSET(0, &saved_cpus) && CPU_ISSET(1, &saved_cpus);
	if (use_hog)
		pin_self_to_cpu(1);

	for (i = 0; i < STALE_ROUNDS; i++) {
		wait_master_clock(&t);
		guest_read_clock(&t, &r);
		TEST_ASSERT(r.rc == VMCLOCK_READ_OK,
			    "Round %d: the guest read %s on tsc, before the switch",
			    i, vmclock_read_status_name(r.rc));

		hog_on = use_hog && i >= STALE_ROUNDS / 2 && hog_start(&h, 0);
		hogged += hog_on;
		write_sysfs(CLOCKSOURCE_DIR "current_clocksource", other);
		guest_read_clock(&t, &r);
		memset(&kc, 0, sizeof(kc));
		vm_ioctl(t.vm, KVM_GET_CLOCK, &kc);
		if (hog_on)
			hog_stop(&h);
		early += !!(kc.flags & KVM_CLOCK_TSC_STABLE);
		early_hogged += hog_on && (kc.flags & KVM_CLOCK_TSC_STABLE);
		TEST_ASSERT(r.rc == VMCLOCK_READ_UNRELIABLE,
			    "Round %d: the first guest entry after switching to %s read %s, clock_status %u: the line from before the switch (master clock %s at that entry)",
			    i, other, vmclock_read_status_name(r.rc), r.status,
			    kc.flags & KVM_CLOCK_TSC_STABLE ? "still on" : "off");

		write_sysfs(CLOCKSOURCE_DIR "current_clocksource", "tsc");
		guest_read_clock(&t, &r);
		TEST_ASSERT(r.rc == VMCLOCK_READ_OK,
			    "Round %d: the first guest entry back on tsc read %s",
			    i, vmclock_read_status_name(r.rc));
	}
	if (use_hog)
		TEST_ASSERT(!sched_setaffinity(0, sizeof(saved_cpus), &saved_cpus),
			    "sched_setaffinity() failed, errno %d", errno);
	destroy_test_vm(&t);

	TEST_ASSERT(early,
		    "In none of %d rounds did the vCPU enter the guest before the timekeeping workqueue's requests (%d with CPU 0 busy): this host cannot show the entry check",
		    STALE_ROUNDS, hogged);
	test_passed("stale entry",
		    "%d rounds: UNRELIABLE at the first entry after each switch to %s, valid at the first back on tsc; entries before the workqueue's requests (master clock still on): %d of %d with CPU 0 free, %d of %d with it busy at real-time priority\n",
		    STALE_ROUNDS, other, early - early_hogged,
		    STALE_ROUNDS - hogged, early_hogged, hogged);
}

/*
 * 8. A guest never reads its clock going back across a rate decrease.
 *
 * Host side first: the guest may read the old line until KVM makes
 * seq_count odd, at guest TSC value c_w; the new line must not be behind
 * the old one there (kvm_vmclock_catch_up() starts it at the old line's
 * time at c_w), and so behind nothing the guest read before.  The rate
 * decrease is made while no vCPU runs and written CATCH_UP_DELAY_US later,
 * so the new NTP line is behind the old line by far more than the
 * microsecond the published line may stray from the NTP line: without the
 * catch-up the check fails by microseconds.  c_w lies between the TSC read
 * before and after KVM_RUN; where KVM moved the anchor, counter_value is
 * c_w itself, otherwise the line must not be behind at the later TSC value,
 * a stronger condition for a slower line.
 */
struct catch_up {
	u64 behind_ns;		/* How far behind the NTP line started */
	bool moved;		/* KVM anchored the new line at its write */
};

static void catch_up_round(struct test_vm *t, long from_ppm, long to_ppm,
			   struct catch_up *cu)
{
	struct vmclock_abi old, new, ntp;
	unsigned __int128 t_old, t_new;
	u64 lo, hi, c, updates;

	set_freq_ppm(PPM(from_ppm));
	run_and_read(t, &old);
	assert_status("before the rate decrease", &old, VMCLOCK_STATUS_SYNCHRONIZED);
	updates = vmclock_updates(t);

	set_freq_ppm(PPM(to_ppm));
	usleep(CATCH_UP_DELAY_US);
	lo = rdtsc() + t->tsc_offset;
	run_sync(t);
	hi = rdtsc() + t->tsc_offset;
	read_published(t, &new);
	TEST_ASSERT(vmclock_updates(t) == updates + 1 &&
		    clk_change_ppm(&old, &new) < 0,
		    "%+ld -> %+ld ppm: %lu updates, period changed by %+.3f ppm",
		    from_ppm, to_ppm, vmclock_updates(t) - updates,
		    clk_change_ppm(&old, &new));
	assert_flags("after the rate decrease", &new, VMCLOCK_FLAG_TIME_MONOTONIC, 0);

	cu->moved = new.counter_value >= lo && new.counter_value <= hi;
	c = cu->moved ? new.counter_value : hi;
	t_old = clk_time_at(&old, c);
	t_new = clk_time_at(&new, c);
	TEST_ASSERT(t_new >= t_old,
		    "%+ld -> %+ld ppm: at guest TSC %lu (%s), the new line is %lu ns behind the old one, which the guest may have read until then: no catch-up",
		    from_ppm, to_ppm, c,
		    cu->moved ? "the new counter_value" : "after KVM_RUN",
		    frac_to_ns(t_old - t_new));

	/* The slew ends with the NTP line: how far behind it was. */
	wait_for_update(t, updates + 1);
	read_published(t, &ntp);
	t_new = clk_time_at(&ntp, c);
	cu->behind_ns = t_old > t_new ? frac_to_ns(t_old - t_new) : 0;
	TEST_ASSERT(cu->behind_ns >= CATCH_UP_MIN_BEHIND_NS,
		    "%+ld -> %+ld ppm written %d ms late: the NTP line was only %lu ns behind the old line, too little to tell a catch-up from the hysteresis",
		    from_ppm, to_ppm, CATCH_UP_DELAY_US / 1000, cu->behind_ns);
}

static void test_monotonic(void)
{
	static const long steps[] = { FREQ_STEP_PPM, -FREQ_STEP_PPM, 0,
				      -FREQ_STEP_PPM / 2 };
	u64 end, changes = 0, updates, reads, seen;
	struct catch_up cu[2];
	struct reader r[2];
	struct test_vm t;
	int i;

	if (!destructive_ok("monotonic"))
		return;
	host_baseline();
	create_test_vm_vcpus(&t, 0, 2);

	catch_up_round(&t, FREQ_STEP_PPM, -FREQ_STEP_PPM, &cu[0]);
	catch_up_round(&t, 2 * FREQ_STEP_PPM, 0, &cu[1]);

	/* Both vCPUs read, so each update is written while the other reads. */
	updates = vmclock_updates(&t);
	start_reader(&r[0], &t, t.vcpu);
	start_reader(&r[1], &t, t.vcpu2);
	end = now_ns(CLOCK_MONOTONIC) + MONOTONIC_NS;
	while (now_ns(CLOCK_MONOTONIC) < end) {
		set_freq_ppm(PPM(steps[changes % ARRAY_SIZE(steps)]));
		changes++;
		usleep(MONOTONIC_STEP_US);
	}
	stop_readers(r, 2);
	set_freq_ppm(0);
	updates = vmclock_updates(&t) - updates;

	reads = 0;
	seen = 0;
	for (i = 0; i < 2; i++) {
		TEST_ASSERT(R_READS(&r[i]) && !R_UNRELIABLE(&r[i]),
			    "vCPU %d got %lu good and %lu UNRELIABLE reads", i,
			    R_READS(&r[i]), R_UNRELIABLE(&r[i]));
		TEST_ASSERT(!R_BACKWARDS(&r[i]),
			    "vCPU %d: time went backwards %lu times in %lu reads, by up to %lu ns, across %lu rate changes",
			    i, R_BACKWARDS(&r[i]), R_READS(&r[i]),
			    R_WORST_BACK(&r[i]), changes);
		reads += R_READS(&r[i]);
		seen = max(seen, R_SEQS(&r[i]));
	}
	/* Kicks take a while under emulation; most changes must show. */
	TEST_ASSERT(seen >= changes / 4,
		    "The reading guest saw only %lu updates for %lu rate changes",
		    seen, changes);

	destroy_test_vm(&t);
	test_passed("monotonic",
		    "rate decreases written 50 ms late: new line not behind the old at the write (NTP line %lu / %lu ns behind, anchor moved %d/%d); %lu reads on 2 vCPUs across %lu rate changes (%lu updates written, %lu seen by a vCPU), never backwards\n",
		    cu[0].behind_ns, cu[1].behind_ns, cu[0].moved, cu[1].moved,
		    reads, changes, updates, seen);
}

/*
 * 9. Steps: a UTC and a TAI vmclock.  Setting the clock clears the NTP
 * state, so TAI is unknown until the daemon sets ADJ_TAI again: the TAI
 * vmclock is UNRELIABLE meanwhile, the UTC one has no TAI offset.  A step
 * forward keeps TIME_MONOTONIC; one back clears it for one update of each
 * clock: the UTC one at once, the TAI one when it is valid again.  A TAI
 * offset corrected downwards is a step back in TAI, not in UTC.
 */
static void test_steps(void)
{
	struct vmclock_abi c, u0, u1;
	struct test_vm tai, utc;
	s64 jump;
	u64 c0;

	if (!destructive_ok("steps"))
		return;
	host_baseline();
	create_test_vm(&tai, 0);
	create_test_vm(&utc, KVM_VMCLOCK_F_UTC);
	read_published(&utc, &u0);

	/* Forward by 10 s. */
	settime_ns(now_ns(CLOCK_REALTIME) + 10 * NSEC_PER_SEC);
	run_and_read(&tai, &c);
	assert_status("TAI, step forward, before ADJ_TAI", &c, VMCLOCK_STATUS_UNRELIABLE);
	run_and_read(&utc, &u1);
	assert_status("UTC, step forward", &u1, VMCLOCK_STATUS_FREERUNNING);
	assert_flags("UTC, step forward", &u1, VMCLOCK_FLAG_TIME_MONOTONIC, 0);
	assert_no_tai_offset("UTC, step forward", &u1);
	c0 = rdtsc() + utc.tsc_offset;
	jump = clk_ns(&u1, c0) - clk_ns(&u0, c0);
	TEST_ASSERT(jump > 9900 * NSEC_PER_MSEC && jump < 10100 * NSEC_PER_MSEC,
		    "Step forward by 10 s: the UTC line moved by %ld ns", jump);

	ntp_synced(NTP_MAXERROR_US, 0, TAI_OFFSET);
	wait_status("TAI, step forward, ADJ_TAI", &tai, VMCLOCK_STATUS_SYNCHRONIZED, &c);
	assert_flags("TAI, step forward, ADJ_TAI", &c, VMCLOCK_FLAG_TIME_MONOTONIC |
		     VMCLOCK_FLAG_TAI_OFFSET_VALID, 0);
	wait_status("UTC, step forward, ADJ_TAI", &utc, VMCLOCK_STATUS_SYNCHRONIZED, &u1);
	assert_flags("UTC, step forward, ADJ_TAI", &u1, VMCLOCK_FLAG_TIME_MONOTONIC |
		     VMCLOCK_FLAG_TAI_OFFSET_VALID, 0);
	assert_on_host_time("TAI, after the step forward", &tai);
	assert_on_host_time("UTC, after the step forward", &utc);

	/* Back by 10 s. */
	settime_ns(now_ns(CLOCK_REALTIME) - 10 * NSEC_PER_SEC);
	run_and_read(&tai, &c);
	assert_status("TAI, step back, before ADJ_TAI", &c, VMCLOCK_STATUS_UNRELIABLE);
	run_and_read(&utc, &u1);
	assert_status("UTC, step back", &u1, VMCLOCK_STATUS_FREERUNNING);
	assert_flags("UTC, step back", &u1, 0, VMCLOCK_FLAG_TIME_MONOTONIC);
	assert_no_tai_offset("UTC, step back", &u1);

	ntp_synced(NTP_MAXERROR_US, 0, TAI_OFFSET);
	wait_status("TAI, step back, ADJ_TAI", &tai, VMCLOCK_STATUS_SYNCHRONIZED, &c);
	assert_flags("TAI, first valid line after the step back", &c,
		     VMCLOCK_FLAG_TAI_OFFSET_VALID, VMCLOCK_FLAG_TIME_MONOTONIC);
	wait_status("UTC, step back, ADJ_TAI", &utc, VMCLOCK_STATUS_SYNCHRONIZED, &u1);
	assert_flags("UTC, the update after the step back", &u1,
		     VMCLOCK_FLAG_TIME_MONOTONIC | VMCLOCK_FLAG_TAI_OFFSET_VALID, 0);
	assert_on_host_time("TAI, after the step back", &tai);
	assert_on_host_time("UTC, after the step back", &utc);

	/* The next TAI line continues that one: monotonic again. */
	set_freq_ppm(PPM(FREQ_STEP_PPM));
	run_and_read(&tai, &c);
	assert_flags("TAI, the update after the step back", &c,
		     VMCLOCK_FLAG_TIME_MONOTONIC, 0);
	set_freq_ppm(0);
	run_sync(&tai);
	run_sync(&utc);

	/* The TAI offset corrected downwards: TAI goes back, UTC does not. */
	set_tai_offset(TAI_OFFSET - 1);
	run_and_read(&tai, &c);
	assert_status("TAI, offset - 1", &c, VMCLOCK_STATUS_SYNCHRONIZED);
	assert_flags("TAI, offset - 1", &c, VMCLOCK_FLAG_TAI_OFFSET_VALID,
		     VMCLOCK_FLAG_TIME_MONOTONIC);
	TEST_ASSERT((s16)c.tai_offset_sec == -(TAI_OFFSET - 1),
		    "TAI, offset - 1: tai_offset_sec %d", (s16)c.tai_offset_sec);
	run_and_read(&utc, &u1);
	assert_flags("UTC, offset - 1", &u1, VMCLOCK_FLAG_TIME_MONOTONIC |
		     VMCLOCK_FLAG_TAI_OFFSET_VALID, 0);
	TEST_ASSERT((s16)u1.tai_offset_sec == -(TAI_OFFSET - 1),
		    "UTC, offset - 1: tai_offset_sec %d", (s16)u1.tai_offset_sec);
	assert_on_host_time("TAI, offset - 1", &tai);
	assert_on_host_time("UTC, offset - 1", &utc);

	set_tai_offset(TAI_OFFSET);
	run_and_read(&tai, &c);
	assert_flags("TAI, offset back up", &c, VMCLOCK_FLAG_TIME_MONOTONIC, 0);

	destroy_test_vm(&tai);
	destroy_test_vm(&utc);
	test_passed("steps",
		    "+10 s: TAI UNRELIABLE until ADJ_TAI, UTC keeps TIME_MONOTONIC without TAI offset; -10 s: UTC and then TAI lose TIME_MONOTONIC for one update; TAI offset -1 s: a step in TAI only\n");
}

/*
 * Start a catch-up slew: a rate decrease from +100 to -100 ppm, written
 * CATCH_UP_DELAY_US late.  Returns in @up the line before it.
 */
static void start_slew(struct test_vm *a, struct test_vm *b,
		       struct vmclock_abi *up, struct vmclock_abi *slewed)
{
	set_freq_ppm(PPM(FREQ_STEP_PPM));
	run_and_read(a, up);
	run_sync(b);
	set_freq_ppm(PPM(-FREQ_STEP_PPM));
	usleep(CATCH_UP_DELAY_US);
	run_and_read(a, slewed);
	run_sync(b);
	TEST_ASSERT(clk_change_ppm(up, slewed) < NTP_DOWN_PPM - 0.5,
		    "A rate decrease written %d ms late: period %+.3f ppm, not slower than the NTP line (%+.3f)",
		    CATCH_UP_DELAY_US / 1000, clk_change_ppm(up, slewed),
		    NTP_DOWN_PPM);
}

/* The NTP line for -100 ppm, not a slewed one. */
static void assert_ntp_period(const char *what, const struct vmclock_abi *up,
			      const struct vmclock_abi *clk)
{
	double ppm = clk_change_ppm(up, clk);

	TEST_ASSERT(fabs(ppm - NTP_DOWN_PPM) < 0.001,
		    "%s: period %+.4f ppm from +100 ppm, expected the NTP line's %+.4f (no slew)",
		    what, ppm, NTP_DOWN_PPM);
}

/*
 * 10. A step while KVM slews a line: the step wins.  Forward, the new line
 * is the NTP line (no slew, TIME_MONOTONIC kept) and the end of the old
 * slew publishes nothing; back, no catch-up either, no TIME_MONOTONIC.
 */
static void test_step_in_slew(void)
{
	struct vmclock_abi up, slewed, c, u;
	struct test_vm tai, utc;
	bool new_slew;
	u64 updates;

	if (!destructive_ok("step during a slew"))
		return;
	host_baseline();
	create_test_vm(&utc, KVM_VMCLOCK_F_UTC);
	create_test_vm(&tai, 0);

	/* Forward by 1 s with ADJ_SETOFFSET, which clears the NTP state too. */
	start_slew(&utc, &tai, &up, &slewed);
	step_clock_ns(NSEC_PER_SEC);
	run_and_read(&utc, &u);
	assert_status("UTC, step forward in a slew", &u, VMCLOCK_STATUS_FREERUNNING);
	assert_flags("UTC, step forward in a slew", &u, VMCLOCK_FLAG_TIME_MONOTONIC, 0);
	assert_no_tai_offset("UTC, step forward in a slew", &u);
	assert_ntp_period("UTC, step forward in a slew", &up, &u);
	run_and_read(&tai, &c);
	assert_status("TAI, step forward in a slew", &c, VMCLOCK_STATUS_UNRELIABLE);

	ntp_synced(NTP_MAXERROR_US, 0, TAI_OFFSET);
	wait_status("TAI, step forward in a slew, ADJ_TAI", &tai,
		    VMCLOCK_STATUS_SYNCHRONIZED, &c);
	assert_flags("TAI, step forward in a slew, ADJ_TAI", &c,
		     VMCLOCK_FLAG_TIME_MONOTONIC, 0);
	assert_ntp_period("TAI, step forward in a slew, ADJ_TAI", &up, &c);
	wait_status("UTC, step forward in a slew, ADJ_TAI", &utc,
		    VMCLOCK_STATUS_SYNCHRONIZED, &u);
	assert_on_host_time("TAI, step forward in a slew", &tai);
	assert_on_host_time("UTC, step forward in a slew", &utc);

	/*
	 * The old slew's end comes and goes: nothing to replace.  Unless the
	 * UTC line published for the status change started a slew of its own:
	 * both are valid, so KVM catches up if the new line starts behind the
	 * old one at all, which the line's re-anchoring decides (by a few ns);
	 * that slew ends in one update, unless it is gentle (it is replaced
	 * a minute later).  The TAI line (unreliable before, so never slewed)
	 * is the same line unslewed.
	 */
	new_slew = u.counter_period_frac_sec != c.counter_period_frac_sec &&
		   !SLEW_GENTLE(clk_change_ppm(&c, &u));
	updates = vmclock_updates(&utc);
	usleep(3 * USEC_PER_SEC);
	run_and_read(&utc, &u);
	TEST_ASSERT(vmclock_updates(&utc) == updates + new_slew,
		    "%lu updates when the cancelled slew would have ended (%s)",
		    vmclock_updates(&utc) - updates,
		    new_slew ? "one expected: the end of the status change's own catch-up slew" :
			       "none expected");
	if (u.counter_period_frac_sec != c.counter_period_frac_sec)
		TEST_ASSERT(SLEW_GENTLE(clk_change_ppm(&c, &u)) &&
			    clk_change_ppm(&c, &u) > -GENTLE_SLEW_PPM - 0.001,
			    "UTC, after the cancelled slew: %+.4f ppm from the TAI line, expected it or a gentle slew",
			    clk_change_ppm(&c, &u));
	else
		assert_ntp_period("UTC, after the cancelled slew", &up, &u);

	/* Back by 1 s. */
	start_slew(&utc, &tai, &up, &slewed);
	step_clock_ns(-NSEC_PER_SEC);
	run_and_read(&utc, &u);
	assert_status("UTC, step back in a slew", &u, VMCLOCK_STATUS_FREERUNNING);
	assert_flags("UTC, step back in a slew", &u, 0, VMCLOCK_FLAG_TIME_MONOTONIC);
	assert_ntp_period("UTC, step back in a slew", &up, &u);
	run_and_read(&tai, &c);
	assert_status("TAI, step back in a slew", &c, VMCLOCK_STATUS_UNRELIABLE);

	ntp_synced(NTP_MAXERROR_US, 0, TAI_OFFSET);
	wait_status("TAI, step back in a slew, ADJ_TAI", &tai,
		    VMCLOCK_STATUS_SYNCHRONIZED, &c);
	assert_flags("TAI, step back in a slew, ADJ_TAI", &c, 0,
		     VMCLOCK_FLAG_TIME_MONOTONIC);
	assert_ntp_period("TAI, step back in a slew, ADJ_TAI", &up, &c);
	wait_status("UTC, step back in a slew, ADJ_TAI", &utc,
		    VMCLOCK_STATUS_SYNCHRONIZED, &u);
	assert_on_host_time("TAI, step back in a slew", &tai);
	assert_on_host_time("UTC, step back in a slew", &utc);

	set_freq_ppm(0);
	destroy_test_vm(&tai);
	destroy_test_vm(&utc);
	test_passed("step during a slew",
		    "+1 s and -1 s (ADJ_SETOFFSET) while a -200 ppm catch-up slews (%+.3f ppm): the NTP line at once, TIME_MONOTONIC kept / cleared, no update at the cancelled slew's end\n",
		    clk_change_ppm(&up, &slewed));
}

/* 11-13. Leap seconds, as guests reading TAI and UTC see them. */
struct leap_case {
	const char *name;
	bool insert;
	bool tai_known;		/* The NTP daemon set ADJ_TAI */
};

static const struct leap_case leap_cases[] = {
	{ "leap insert, TAI set", true, true },
	{ "leap insert, TAI unset", true, false },
	{ "leap delete, TAI set", false, true },
};

/* What the host saw of one vmclock's pages across the leap second. */
struct leap_watch {
	const char *what;
	bool reliable;		/* Expected not UNRELIABLE */
	bool utc;
	u8 leap;		/* Last leap_indicator */
	bool seen_pos;		/* LEAP_POS, the inserted second */
	u32 seq;
	u64 pages;
	s16 tai_offset;		/* Last tai_offset_sec */
};

/*
 * The leap indicator only moves forward, through PRE_POS, POS and POST_POS
 * or PRE_NEG and POST_NEG (in numerical order), and TIME_MONOTONIC stays:
 * the ABI exempts leap seconds in UTC, and TAI does not jump.
 */
static void leap_page(struct leap_watch *w, const struct leap_case *lc,
		      const struct vmclock_abi *c)
{
	u8 pre = lc->insert ? VMCLOCK_LEAP_PRE_POS : VMCLOCK_LEAP_PRE_NEG;
	u8 post = lc->insert ? VMCLOCK_LEAP_POST_POS : VMCLOCK_LEAP_POST_NEG;

	if (c->seq_count != w->seq) {
		w->seq = c->seq_count;
		w->pages++;
	}
	if (!w->reliable) {
		assert_status(w->what, c, VMCLOCK_STATUS_UNRELIABLE);
		return;
	}
	assert_status(w->what, c, VMCLOCK_STATUS_SYNCHRONIZED);
	TEST_ASSERT((c->leap_indicator == pre || c->leap_indicator == post ||
		     (lc->insert && c->leap_indicator == VMCLOCK_LEAP_POS)) &&
		    c->leap_indicator >= w->leap,
		    "%s, %s vmclock: leap_indicator %u after %u", lc->name,
		    w->what, c->leap_indicator, w->leap);
	TEST_ASSERT(c->flags & VMCLOCK_FLAG_TIME_MONOTONIC,
		    "%s, %s vmclock: TIME_MONOTONIC dropped at leap_indicator %u (flags 0x%llx)",
		    lc->name, w->what, c->leap_indicator, c->flags);
	if (w->utc && !lc->tai_known)
		assert_no_tai_offset(w->what, c);
	w->leap = c->leap_indicator;
	w->seen_pos |= c->leap_indicator == VMCLOCK_LEAP_POS;
	w->tai_offset = (s16)c->tai_offset_sec;
}

/* Run @t until its vmclock shows @leap, SYNCHRONIZED, for at most WAIT_NS. */
static void wait_leap(const char *what, struct test_vm *t, u8 leap,
		      struct vmclock_abi *clk)
{
	u64 end = now_ns(CLOCK_MONOTONIC) + WAIT_NS;

	for (;;) {
		run_and_read(t, clk);
		if (clk->clock_status == VMCLOCK_STATUS_SYNCHRONIZED &&
		    clk->leap_indicator == leap)
			return;
		TEST_ASSERT(now_ns(CLOCK_MONOTONIC) < end,
			    "%s: clock_status %u leap_indicator %u after %lu ms, expected SYNCHRONIZED and %u",
			    what, clk->clock_status, clk->leap_indicator,
			    WAIT_NS / NSEC_PER_MSEC, leap);
		usleep(2000);
	}
}

/* NTP's leap second state machine back in TIME_OK. */
static void wait_time_ok(void)
{
	u64 end = now_ns(CLOCK_MONOTONIC) + WAIT_NS;

	while (host_time_state() != TIME_OK) {
		TEST_ASSERT(now_ns(CLOCK_MONOTONIC) < end,
			    "adjtimex() still returns %d, not TIME_OK",
			    host_time_state());
		usleep(50000);
	}
}

static void test_leap(const struct leap_case *lc)
{
	u8 pre = lc->insert ? VMCLOCK_LEAP_PRE_POS : VMCLOCK_LEAP_PRE_NEG;
	u8 post = lc->insert ? VMCLOCK_LEAP_POST_POS : VMCLOCK_LEAP_POST_NEG;
	int tai0 = lc->tai_known ? TAI_OFFSET : 0;
	int tai1 = tai0 + (lc->insert ? 1 : -1);
	struct leap_watch wt = { .what = "TAI", .reliable = lc->tai_known };
	struct leap_watch wu = { .what = "UTC", .reliable = true, .utc = true };
	u64 now, midnight, armed, end;
	struct test_vm tai, utc;
	struct vmclock_abi c, u;
	struct reader r[2];
	struct timex tx;

	if (!destructive_ok(lc->name))
		return;
	host_baseline();
	/* A daemon that never set ADJ_TAI: offset 0, unknown once the clock is set. */
	if (!lc->tai_known)
		set_tai_offset(0);
	wait_time_ok();
	create_test_vm(&tai, 0);
	create_test_vm(&utc, KVM_VMCLOCK_F_UTC);

	/* The next midnight UTC, so that setting the clock is a step forward. */
	now = now_ns(CLOCK_REALTIME);
	midnight = (now / NSEC_PER_SEC / 86400 + 1) * 86400 * NSEC_PER_SEC;
	if (midnight - now < 10 * NSEC_PER_SEC)
		midnight += 86400 * NSEC_PER_SEC;
	settime_ns(midnight - LEAP_LEAD_NS);
	tx = host_timex();
	tx.modes = ADJ_STATUS | ADJ_MAXERROR | ADJ_ESTERROR;
	tx.status &= ~(STA_UNSYNC | STA_INS | STA_DEL);
	tx.status |= lc->insert ? STA_INS : STA_DEL;
	tx.maxerror = NTP_MAXERROR_US;
	tx.esterror = 0;
	host_adjtimex(&tx);
	host_esterror_us = 0;
	if (lc->tai_known)
		set_tai_offset(TAI_OFFSET);
	armed = now_ns(CLOCK_REALTIME);
	TEST_ASSERT(armed < midnight - LEAP_ARM_BY_NS,
		    "%s: the leap second was armed %lu ms before midnight, too late (this host is too slow)",
		    lc->name, (midnight - armed) / NSEC_PER_MSEC);

	wait_leap("UTC vmclock, leap second pending", &utc, pre, &u);
	leap_page(&wu, lc, &u);
	if (lc->tai_known)
		wait_leap("TAI vmclock, leap second pending", &tai, pre, &c);
	else
		run_and_read(&tai, &c);
	leap_page(&wt, lc, &c);
	TEST_ASSERT(host_tai() == tai0, "%s: TAI offset %d before the leap second",
		    lc->name, host_tai());

	start_reader(&r[0], &tai, tai.vcpu);
	start_reader(&r[1], &utc, utc.vcpu);
	end = now_ns(CLOCK_MONOTONIC) + LEAP_LEAD_NS + 3 * NSEC_PER_SEC;
	do {
		usleep(10000);
		read_published(&tai, &c);
		leap_page(&wt, lc, &c);
		read_published(&utc, &u);
		leap_page(&wu, lc, &u);
	} while ((wu.leap != post || (wt.reliable && wt.leap != post)) &&
		 now_ns(CLOCK_MONOTONIC) < end);
	/* Let the guests read the line after the leap second for a while. */
	usleep(200000);
	stop_readers(r, 2);

	TEST_ASSERT(wu.leap == post && (!wt.reliable || wt.leap == post) &&
		    (!lc->insert || (wu.seen_pos && (!wt.reliable || wt.seen_pos))),
		    "%s: leap_indicator %u (TAI) / %u (UTC) after the leap second, POS seen %d / %d, expected %u",
		    lc->name, wt.leap, wu.leap, wt.seen_pos, wu.seen_pos, post);
	TEST_ASSERT(host_tai() == tai1,
		    "%s: the host's TAI offset is %d after the leap second, expected %d",
		    lc->name, host_tai(), tai1);
	if (lc->tai_known)
		TEST_ASSERT(wt.tai_offset == -tai1 && wu.tai_offset == -tai1,
			    "%s: tai_offset_sec %d (TAI) / %d (UTC) after the leap second, expected %d",
			    lc->name, wt.tai_offset, wu.tai_offset, -tai1);

	/* The guests: TAI never jumps; UTC goes back or forward by a second, once. */
	if (lc->tai_known)
		TEST_ASSERT(R_READS(&r[0]) && !R_UNRELIABLE(&r[0]) &&
			    !R_BACKWARDS(&r[0]) && !R_JUMPS(&r[0]),
			    "%s: the TAI guest made %lu reads (%lu UNRELIABLE), went back %lu times (by up to %lu ns), jumped %lu times",
			    lc->name, R_READS(&r[0]), R_UNRELIABLE(&r[0]),
			    R_BACKWARDS(&r[0]), R_WORST_BACK(&r[0]), R_JUMPS(&r[0]));
	else
		TEST_ASSERT(!R_READS(&r[0]) && R_UNRELIABLE(&r[0]),
			    "%s: TAI unknown, yet the TAI guest made %lu good reads (%lu UNRELIABLE)",
			    lc->name, R_READS(&r[0]), R_UNRELIABLE(&r[0]));
	TEST_ASSERT(R_READS(&r[1]) && !R_UNRELIABLE(&r[1]),
		    "%s: the UTC guest made %lu reads, %lu UNRELIABLE",
		    lc->name, R_READS(&r[1]), R_UNRELIABLE(&r[1]));
	if (lc->insert)
		TEST_ASSERT(R_BACKWARDS(&r[1]) == 1 && !R_JUMPS(&r[1]) &&
			    R_WORST_BACK(&r[1]) >= JUMP_NS &&
			    R_WORST_BACK(&r[1]) <= NSEC_PER_SEC + NSEC_PER_MSEC,
			    "%s: the UTC guest went back %lu times, by up to %lu ns, and jumped forward %lu times: expected once by up to a second",
			    lc->name, R_BACKWARDS(&r[1]), R_WORST_BACK(&r[1]),
			    R_JUMPS(&r[1]));
	else
		TEST_ASSERT(!R_BACKWARDS(&r[1]) && R_JUMPS(&r[1]) == 1,
			    "%s: the UTC guest went back %lu times (by up to %lu ns) and jumped forward %lu times: expected one jump",
			    lc->name, R_BACKWARDS(&r[1]), R_WORST_BACK(&r[1]),
			    R_JUMPS(&r[1]));

	if (lc->tai_known)
		assert_on_host_time("TAI vmclock after the leap second", &tai);
	assert_on_host_time("UTC vmclock after the leap second", &utc);

	/* The NTP daemon clears STA_INS/STA_DEL some time after the leap. */
	set_status(0, STA_INS | STA_DEL);
	wait_leap("STA_INS/STA_DEL cleared", &utc, VMCLOCK_LEAP_NONE, &u);

	destroy_test_vm(&tai);
	destroy_test_vm(&utc);
	test_passed(lc->name,
		    "%s; host TAI offset %d -> %d; TAI guest: %lu reads, %lu UNRELIABLE, 0 back; UTC guest: %lu reads, %lu back (by %lu ns), %lu forward jumps; %lu / %lu TAI / UTC pages seen, TIME_MONOTONIC in all valid ones\n",
		    lc->insert ? "PRE_POS -> POS -> POST_POS -> NONE" :
				 "PRE_NEG -> POST_NEG -> NONE",
		    tai0, tai1, R_READS(&r[0]), R_UNRELIABLE(&r[0]),
		    R_READS(&r[1]), R_BACKWARDS(&r[1]), R_WORST_BACK(&r[1]),
		    R_JUMPS(&r[1]), wt.pages, wu.pages);
}

/*
 * The vmclock against host time while the host's rate changes: see
 * follow_host().
 */
struct follow {
	u64 samples;
	u64 unbounded;		/* Not SYNCHRONIZED: no bounds published */
	u64 updates;
	u64 backwards;		/* Guest reads behind the one before */
	u64 line_violations;
	u64 max_violations;
	s64 worst_err;		/* vmclock - host, largest in magnitude */
	double line_ratio;	/* Worst |error| / line error bound */
	double max_ratio;	/* Worst |error| / maximum error bound */
	bool have_ppm;
	double min_ppm;		/* Period against the reference line */
	double max_ppm;
	u64 last_ns;
};

/*
 * For @ns, every @step_us: call @poke with the sample number (if any), run
 * the guest to read its clock (which also brings the vmclock up to date,
 * as any guest entry does), and compare the vmclock with host time at one
 * TSC value: within the line's error bound, and within the maximum error
 * and its growth since counter_value.
 */
static void follow_host(struct test_vm *t, u64 ns, u64 step_us,
			const struct vmclock_abi *ref, void (*poke)(int),
			struct follow *f)
{
	u64 end = now_ns(CLOCK_MONOTONIC) + ns, u0 = vmclock_updates(t);
	struct guest_reading r;
	struct vmclock_abi clk;
	struct deviation d;
	double ratio, ppm;
	int i;

	for (i = 0; !i || now_ns(CLOCK_MONOTONIC) < end; i++) {
		if (poke)
			poke(i);
		guest_read_clock(t, &r);
		if (r.rc == VMCLOCK_READ_OK) {
			f->backwards += r.ns < f->last_ns;
			f->last_ns = r.ns;
		}
		measure(t, &clk, &d);
		f->samples++;
		if (d.status != VMCLOCK_STATUS_SYNCHRONIZED) {
			f->unbounded++;
			usleep(step_us);
			continue;
		}
		if (llabs(d.err_ns) > llabs(f->worst_err))
			f->worst_err = d.err_ns;
		ratio = (double)llabs(d.err_ns) / d.line_bound_ns;
		f->line_ratio = max(f->line_ratio, ratio);
		f->line_violations += ratio > 1;
		ratio = (double)llabs(d.err_ns) / d.max_bound_ns;
		f->max_ratio = max(f->max_ratio, ratio);
		f->max_violations += ratio > 1;
		ppm = clk_change_ppm(ref, &clk);
		if (!f->have_ppm) {
			f->min_ppm = ppm;
			f->max_ppm = ppm;
			f->have_ppm = true;
		}
		f->min_ppm = min(f->min_ppm, ppm);
		f->max_ppm = max(f->max_ppm, ppm);
		usleep(step_us);
	}
	f->updates += vmclock_updates(t) - u0;
}

static void assert_followed(const char *what, const struct follow *f)
{
	TEST_ASSERT(!f->line_violations && !f->max_violations && !f->backwards,
		    "%s: %lu of %lu samples beyond the line's error bound (worst %.3f of it), %lu beyond the maximum error (%.4f), %lu guest reads went back",
		    what, f->line_violations, f->samples, f->line_ratio,
		    f->max_violations, f->max_ratio, f->backwards);
}

/*
 * 14. The kernel PLL, as ntpd drives it: ADJ_OFFSET with STA_PLL.  The
 * tick length changes every second; the vmclock follows within its
 * bounds, with an update for each change that moves the NTP line away.
 */
static void test_pll(void)
{
	struct follow f = {};
	struct vmclock_abi c0;
	struct test_vm t;
	struct timex tx;
	long left;

	if (!destructive_ok("pll"))
		return;
	host_baseline();
	create_test_vm(&t, 0);
	run_and_read(&t, &c0);

	/*
	 * Time constant 0 in nanosecond mode (in microsecond mode the kernel
	 * adds 4), the fastest: a quarter of the offset a second, 250 ppm
	 * first, each second a quarter less, plus the frequency the PLL
	 * derives from the offset.
	 */
	tx = host_timex();
	tx.modes = ADJ_STATUS | ADJ_TIMECONST | ADJ_OFFSET | ADJ_NANO;
	tx.status = (tx.status | STA_PLL) & ~STA_UNSYNC;
	tx.constant = 0;
	tx.offset = NSEC_PER_MSEC;
	host_adjtimex(&tx);
	follow_host(&t, 5 * NSEC_PER_SEC, FOLLOW_STEP_US, &c0, NULL, &f);
	left = host_timex().offset;
	stop_slewing();
	set_status(0, STA_PLL);
	set_freq_ppm(0);
	destroy_test_vm(&t);

	assert_followed("pll", &f);
	TEST_ASSERT(f.updates >= 4 && f.updates <= 12 && f.max_ppm > 200 &&
		    f.max_ppm < 320,
		    "pll: %lu updates in 5 s, period %+.1f..%+.1f ppm: expected about one a second, following the PLL from about +280 ppm down",
		    f.updates, f.min_ppm, f.max_ppm);
	test_passed("pll",
		    "1 ms slewed at time constant 0 (%ld ns left after 5 s): %lu updates, period %+.1f..%+.1f ppm, worst vmclock - host %+ld ns (%.3f of the line error bound, %.5f of maxerror) in %lu samples\n",
		    left, f.updates, f.min_ppm, f.max_ppm, f.worst_err,
		    f.line_ratio, f.max_ratio, f.samples);
}

/*
 * 15. adjtimex(ADJ_TICK): a tick of one more microsecond is 100 ppm more,
 * at once; back to the nominal tick is a rate decrease, slewed.
 */
static void test_tick(void)
{
	struct vmclock_abi c0, c1, c2;
	struct follow f = {};
	u64 updates, total;
	struct test_vm t;
	double up, want, final;
	bool gentle;

	if (!destructive_ok("tick"))
		return;
	host_baseline();
	create_test_vm(&t, 0);
	run_and_read(&t, &c0);
	want = 1e6 / nominal_tick;

	updates = vmclock_updates(&t);
	set_tick(nominal_tick + 1);
	run_and_read(&t, &c1);
	up = clk_change_ppm(&c0, &c1);
	TEST_ASSERT(vmclock_updates(&t) == updates + 1 && fabs(up - want) < 0.01,
		    "ADJ_TICK %ld: %lu updates at the next entry, period %+.4f ppm, expected 1 and %+.4f",
		    nominal_tick + 1, vmclock_updates(&t) - updates, up, want);
	follow_host(&t, NSEC_PER_SEC, FOLLOW_STEP_US, &c0, NULL, &f);
	TEST_ASSERT(!f.updates, "ADJ_TICK %ld: %lu updates while steady",
		    nominal_tick + 1, f.updates);

	updates = vmclock_updates(&t);
	set_tick(nominal_tick);
	run_and_read(&t, &c1);
	TEST_ASSERT(vmclock_updates(&t) == updates + 1 &&
		    clk_change_ppm(&c0, &c1) < 0,
		    "ADJ_TICK back to %ld: %lu updates, period %+.4f ppm, expected 1 and a slew below 0",
		    nominal_tick, vmclock_updates(&t) - updates,
		    clk_change_ppm(&c0, &c1));
	follow_host(&t, 3 * NSEC_PER_SEC, FOLLOW_STEP_US, &c0, NULL, &f);
	read_published(&t, &c2);
	total = vmclock_updates(&t) - updates;
	set_tick(nominal_tick);
	destroy_test_vm(&t);

	/*
	 * Back: a slew, then the NTP line two seconds later, or a gentle
	 * slew (a microsecond behind or less) that is still on.
	 */
	gentle = SLEW_GENTLE(clk_change_ppm(&c0, &c1));
	final = clk_change_ppm(&c0, &c2);
	assert_followed("tick", &f);
	TEST_ASSERT(gentle ? total == 1 && final < 0 &&
		    final > -GENTLE_SLEW_PPM - 0.001 :
		    total == 2 && fabs(final) < 0.001,
		    "ADJ_TICK back to %ld: %lu updates, final period %+.4f ppm, expected %s",
		    nominal_tick, total, clk_change_ppm(&c0, &c2),
		    gentle ? "1 and a gentle slew still on" :
			     "2 (the decrease, the end of its slew) and the nominal one");
	test_passed("tick",
		    "ADJ_TICK +1 us: %+.4f ppm at the next entry, 0 updates in 1 s; back: slewed%s (%+.4f ppm), %s; worst vmclock - host %+ld ns (%.3f of the line error bound) in %lu samples\n",
		    up, gentle ? " gently" : "", clk_change_ppm(&c0, &c1),
		    gentle ? "1 update" : "then the NTP line, 2 updates",
		    f.worst_err, f.line_ratio, f.samples);
}

/*
 * 16. adjtime(), which slews the host clock at 500 ppm until the offset is
 * worked off: 1 ms is two seconds at +500 ppm from the next second on.
 */
static void test_adjtime(void)
{
	struct timeval delta = { .tv_usec = 1000 }, left;
	struct vmclock_abi c0, c1;
	struct follow f = {};
	struct test_vm t;

	if (!destructive_ok("adjtime"))
		return;
	host_baseline();
	create_test_vm(&t, 0);
	run_and_read(&t, &c0);

	TEST_ASSERT(!adjtime(&delta, NULL), "adjtime() failed, errno %d", errno);
	follow_host(&t, 6 * NSEC_PER_SEC, FOLLOW_STEP_US, &c0, NULL, &f);
	TEST_ASSERT(!adjtime(NULL, &left), "adjtime() failed, errno %d", errno);
	read_published(&t, &c1);
	destroy_test_vm(&t);

	assert_followed("adjtime", &f);
	TEST_ASSERT(!left.tv_sec && !left.tv_usec && fabs(f.max_ppm - 500) < 0.01 &&
		    fabs(clk_change_ppm(&c0, &c1)) < 0.001 && f.updates == 3,
		    "adjtime(1 ms): %ld.%06ld s left, period up to %+.4f ppm, finally %+.4f ppm, %lu updates: expected +500 ppm, then the nominal rate, 3 updates (start, end, end of the slew)",
		    left.tv_sec, left.tv_usec, f.max_ppm,
		    clk_change_ppm(&c0, &c1), f.updates);
	test_passed("adjtime",
		    "1 ms: period %+.4f ppm, then slewed (%+.3f) and nominal, %lu updates; worst vmclock - host %+ld ns (%.3f of the line error bound) in %lu samples\n",
		    f.max_ppm, f.min_ppm, f.updates, f.worst_err, f.line_ratio,
		    f.samples);
}

/* A chrony-like sequence of frequency corrections, in ppm, one per sample. */
static const double chrony_ppm[] = {
	0.31, -0.12, 0.57, 0.22, -0.43, 12.0, 11.7, -3.1, -2.8, 0.05,
	0.02, -0.9, 25.0, -25.0, 0.4, -0.1, 0.0, 0.3, -7.5, 0.2,
};

static void chrony_poke(int i)
{
	set_freq_ppm(PPM(chrony_ppm[i % ARRAY_SIZE(chrony_ppm)]));
}

/* A line of the bounds test's figures, for phase @phase. */
static void __printf(2, 3) bounds_msg(const char *phase, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ksft_print_msg("bounds: %-8s %s", phase, buf);
}

static void bounds_phase(struct test_vm *t, const char *name, u64 ns,
			 void (*poke)(int), const struct vmclock_abi *ref,
			 struct follow *total)
{
	struct follow f = {};

	follow_host(t, ns, FOLLOW_STEP_US / 2, ref, poke, &f);
	bounds_msg(name,
		   "%3lu samples (%lu without bounds), %2lu updates, worst |vmclock - host| %6lld ns: %.5f of the maximum error, %.3f of the line error\n",
		   f.samples, f.unbounded, f.updates, llabs(f.worst_err),
		   f.max_ratio, f.line_ratio);
	total->samples += f.samples;
	total->unbounded += f.unbounded;
	total->updates += f.updates;
	total->backwards += f.backwards;
	total->line_violations += f.line_violations;
	total->max_violations += f.max_violations;
	if (llabs(f.worst_err) > llabs(total->worst_err))
		total->worst_err = f.worst_err;
	total->line_ratio = max(total->line_ratio, f.line_ratio);
	total->max_ratio = max(total->max_ratio, f.max_ratio);
}

/*
 * 17. The published bounds hold at every sample: |vmclock - host CLOCK_TAI|
 * at one TSC value <= time_maxerror_nanosec + the period's maximum error
 * rate times the counter's distance from counter_value, with NTP's maximum
 * and estimated errors at 0, so that the bound is as tight as it gets,
 * through the ways an NTP daemon moves the host clock.
 */
static void test_bounds(void)
{
	struct timeval delta = { .tv_usec = 500 };
	struct vmclock_abi c0, up, slewed;
	struct follow f = {};
	struct test_vm t;
	struct timex tx;

	if (!destructive_ok("bounds"))
		return;
	host_baseline();
	set_errors(0, 0);
	usleep(TICKS_US);
	create_test_vm(&t, 0);
	run_and_read(&t, &c0);
	assert_status("bounds", &c0, VMCLOCK_STATUS_SYNCHRONIZED);

	bounds_phase(&t, "steady", NSEC_PER_SEC, NULL, &c0, &f);
	set_freq_ppm(PPM(FREQ_STEP_PPM));
	bounds_phase(&t, "+100 ppm", NSEC_PER_SEC, NULL, &c0, &f);
	set_freq_ppm(PPM(-FREQ_STEP_PPM));
	bounds_phase(&t, "-100 ppm", NSEC_PER_SEC, NULL, &c0, &f);
	bounds_phase(&t, "chrony", 2 * NSEC_PER_SEC, chrony_poke, &c0, &f);

	set_freq_ppm(0);
	TEST_ASSERT(!adjtime(&delta, NULL), "adjtime() failed, errno %d", errno);
	bounds_phase(&t, "adjtime", 2500 * NSEC_PER_MSEC, NULL, &c0, &f);

	/* A step (ADJ_SETOFFSET) while KVM slews: then synchronized again. */
	start_slew(&t, &t, &up, &slewed);
	step_clock_ns(100 * NSEC_PER_MSEC);
	bounds_phase(&t, "step", 200 * NSEC_PER_MSEC, NULL, &c0, &f);
	ntp_synced(0, 0, TAI_OFFSET);
	bounds_phase(&t, "resync", NSEC_PER_SEC, NULL, &c0, &f);

	/*
	 * The kernel PLL at time constant 0 (nanosecond mode): large tick
	 * length changes every second.  Then at ntpd's usual 4 (microsecond
	 * mode adds 4 to 0): changes below a ppm, which kernel/time need not
	 * publish at once.
	 */
	set_freq_ppm(0);
	tx = host_timex();
	tx.modes = ADJ_STATUS | ADJ_TIMECONST | ADJ_OFFSET | ADJ_NANO;
	tx.status |= STA_PLL;
	tx.constant = 0;
	tx.offset = 500 * NSEC_PER_USEC;
	host_adjtimex(&tx);
	bounds_phase(&t, "pll", 3 * NSEC_PER_SEC, NULL, &c0, &f);
	tx.modes = ADJ_TIMECONST | ADJ_OFFSET | ADJ_MICRO;
	tx.constant = 0;
	tx.offset = 2000;
	host_adjtimex(&tx);
	bounds_phase(&t, "pll tc 4", 2 * NSEC_PER_SEC, NULL, &c0, &f);
	stop_slewing();
	set_status(0, STA_PLL);
	set_freq_ppm(0);
	destroy_test_vm(&t);

	bounds_msg("all",
		   "worst error/bound ratio %.5f (maximum error), %.3f (line error); %lu samples, %lu without bounds, %lu updates\n",
		   f.max_ratio, f.line_ratio, f.samples, f.unbounded, f.updates);
	TEST_ASSERT(!f.max_violations && f.max_ratio <= 1,
		    "bounds: %lu of %lu samples beyond the published maximum error, worst ratio %.4f",
		    f.max_violations, f.samples, f.max_ratio);
	assert_followed("bounds", &f);
	test_passed("bounds",
		    "%lu samples through steady, +-100 ppm, chrony, adjtime, step in a slew, PLL: 0 beyond the maximum error (worst ratio %.5f) or the line error (%.3f), %lu updates\n",
		    f.samples, f.max_ratio, f.line_ratio, f.updates);
}

/* KVM_GET_VMCLOCK's status bits (KVM_VMCLOCK_STATUS_STALLED). */
static u32 vmclock_status_bits(struct test_vm *t)
{
	struct kvm_vmclock cfg;

	vm_ioctl(t->vm, KVM_GET_VMCLOCK, &cfg);
	return cfg.status;
}

/* Make the vmclock page read-only (or writable again) for the VMM, so for KVM. */
static void protect_vmclock_page(struct test_vm *t, bool read_only)
{
	int prot = read_only ? PROT_READ : PROT_READ | PROT_WRITE;

	TEST_ASSERT(!mprotect(vmclock_page(t), getpagesize(), prot),
		    "mprotect(the vmclock page, %s) failed, errno %d",
		    read_only ? "PROT_READ" : "PROT_READ | PROT_WRITE", errno);
}

/*
 * Change the host's rate with the vmclock page read-only, and run the vCPU
 * until KVM's write has failed: the vmclock stalls, guest memory keeps
 * @last, byte for byte.
 */
static void fail_a_write(const char *what, struct test_vm *t, long ppm,
			 const struct vmclock_abi *last)
{
	u64 failures = vm_get_stat(t->vm, vmclock_write_failures);
	u64 end = now_ns(CLOCK_MONOTONIC) + WAIT_NS;

	protect_vmclock_page(t, true);
	set_freq_ppm(PPM(ppm));
	do {
		usleep(2000);
		run_sync(t);
	} while (vm_get_stat(t->vm, vmclock_write_failures) == failures &&
		 now_ns(CLOCK_MONOTONIC) < end);
	TEST_ASSERT(vm_get_stat(t->vm, vmclock_write_failures) == failures + 1,
		    "%s: %lu write failures with the vmclock page read-only, expected 1",
		    what, vm_get_stat(t->vm, vmclock_write_failures) - failures);
	TEST_ASSERT(vmclock_status_bits(t) & KVM_VMCLOCK_STATUS_STALLED,
		    "%s: KVM_GET_VMCLOCK status 0x%x after a failed write, expected STALLED",
		    what, vmclock_status_bits(t));
	TEST_ASSERT(!memcmp(vmclock_page(t), last, sizeof(*last)),
		    "%s: the failed write changed guest memory (seq_count 0x%x, was 0x%x)",
		    what, vmclock_page(t)->seq_count, last->seq_count);
	protect_vmclock_page(t, false);
}

/*
 * The first line written after a failed write: synchronized, but without
 * TIME_MONOTONIC, as KVM cannot compare it with what guest memory held.
 */
static void assert_after_failure(const char *what, struct test_vm *t,
				 u64 updates, struct vmclock_abi *clk)
{
	run_and_read(t, clk);
	TEST_ASSERT(vmclock_updates(t) == updates + 1,
		    "%s: %lu updates once the page is writable, expected 1",
		    what, vmclock_updates(t) - updates);
	TEST_ASSERT(!(vmclock_status_bits(t) & KVM_VMCLOCK_STATUS_STALLED),
		    "%s: still STALLED after a successful write", what);
	assert_status(what, clk, VMCLOCK_STATUS_SYNCHRONIZED);
	assert_flags(what, clk, 0, VMCLOCK_FLAG_TIME_MONOTONIC);
	assert_on_host_time(what, t);
}

/*
 * 18. A write that fails (the VMM's mapping of the page is read-only): the
 * vmclock stalls with guest memory as it was, and the next line written,
 * whether a memslot change or a new registration at the same place brings
 * it, does not claim TIME_MONOTONIC: it cannot have been checked against
 * what the guest read.  The line after that claims it again.
 */
static void test_failed_write(void)
{
	struct vmclock_abi c0, c1, c2;
	struct test_vm t;
	u64 updates;

	if (!destructive_ok("failed write"))
		return;
	host_baseline();
	create_test_vm(&t, 0);
	run_and_read(&t, &c0);
	assert_status("before the failed write", &c0, VMCLOCK_STATUS_SYNCHRONIZED);
	assert_flags("before the failed write", &c0, VMCLOCK_FLAG_TIME_MONOTONIC, 0);

	/* A memslot change lifts the stall. */
	fail_a_write("memslot change", &t, FREQ_STEP_PPM, &c0);
	updates = vmclock_updates(&t);
	vm_mem_region_set_flags(t.vm, VMCLOCK_SLOT, KVM_MEM_LOG_DIRTY_PAGES);
	assert_after_failure("memslot change", &t, updates, &c1);

	/* The next line is checked against that one again. */
	updates = vmclock_updates(&t);
	set_freq_ppm(0);
	wait_for_update(&t, updates);
	read_published(&t, &c2);
	assert_flags("the line after", &c2, VMCLOCK_FLAG_TIME_MONOTONIC, 0);

	/* So does a new registration at the same place. */
	vm_mem_region_set_flags(t.vm, VMCLOCK_SLOT, 0);
	run_and_read(&t, &c1);
	fail_a_write("registration", &t, FREQ_STEP_PPM, &c1);
	updates = vmclock_updates(&t);
	set_vmclock(t.vm, 0);
	assert_after_failure("registration", &t, updates, &c2);

	set_freq_ppm(0);
	destroy_test_vm(&t);
	test_passed("failed write",
		    "page read-only: STALLED, guest memory unchanged; the next line (after a memslot change, after a new registration) without TIME_MONOTONIC, the one after with it\n");
}

/* The kernel's taint flags: a WARN taints it with TAINT_WARN (9), an Oops with TAINT_DIE (7). */
static unsigned long kernel_taint(void)
{
	unsigned long taint;
	FILE *f = fopen("/proc/sys/kernel/tainted", "r");

	TEST_ASSERT(f, "Cannot open /proc/sys/kernel/tainted, errno %d", errno);
	TEST_ASSERT(fscanf(f, "%lu", &taint) == 1, "Cannot read /proc/sys/kernel/tainted");
	fclose(f);
	return taint;
}

#define TAINT_REPORTS		(BIT(5) | BIT(7) | BIT(9))

/*
 * 19. A VM destroyed while KVM slews its line: the work that ends the slew
 * goes with it (with the kernel's object debugging, freeing a VM with the
 * work's timer pending is a WARN), nothing runs on the freed VM when the
 * slew would have ended, and a new VM's vmclock is on host time.
 */
static void test_destroy_in_slew(void)
{
	unsigned long taint = kernel_taint();
	struct vmclock_abi up, slewed, c;
	struct test_vm t;

	if (!destructive_ok("destroyed in a slew"))
		return;
	host_baseline();
	create_test_vm(&t, 0);
	start_slew(&t, &t, &up, &slewed);
	destroy_test_vm(&t);
	set_freq_ppm(0);
	usleep(SLEW_WAIT_NS / NSEC_PER_USEC);

	create_test_vm(&t, 0);
	run_and_read(&t, &c);
	assert_status("a new VM after", &c, VMCLOCK_STATUS_SYNCHRONIZED);
	assert_on_host_time("a new VM after", &t);
	destroy_test_vm(&t);
	TEST_ASSERT(!((kernel_taint() & ~taint) & TAINT_REPORTS),
		    "The kernel reported a problem (taint 0x%lx, was 0x%lx) when a VM was destroyed while slewing its vmclock, or when the slew would have ended: see the kernel log",
		    kernel_taint(), taint);
	test_passed("destroyed in a slew",
		    "VM destroyed as its catch-up slew started: no kernel report (taint 0x%lx) in the %lu s after; a new VM is on host time\n",
		    kernel_taint(), SLEW_WAIT_NS / NSEC_PER_SEC);
}

/*
 * 20. Many VMs and one host frequency change.  Each VM's vCPU sees the new
 * line at its first entry after the change, published by that entry (one
 * update per VM), whether the work that the notifier queued has reached its
 * VM yet or not.  Then a second change with no vCPU running: how long the
 * work takes to reach all of them (fan-out, emulated time).  The notifier
 * itself does one compare whatever the number of VMs (see
 * kvm_vmclock_gtod_notify()); each VM counts the line changes the work
 * brought it, which must be one per host change, not one per VM or tick.
 */
#define MANY_VMS		100
#define FANOUT_WAIT_NS		(5 * NSEC_PER_SEC)

/* How many of @t[0..@nr) have seen a line change since @changes. */
static int vms_with_new_line(struct test_vm *t, const u64 *changes, int nr)
{
	int i, n = 0;

	for (i = 0; i < nr; i++)
		n += vm_get_stat(t[i].vm, vmclock_line_changes) != changes[i];
	return n;
}

static void test_many_vms(void)
{
	u64 updates[MANY_VMS], changes[MANY_VMS], periods[MANY_VMS];
	u64 start, fanout_ns, most = 0, c;
	struct guest_reading r;
	struct test_vm *t;
	int i, seen;

	if (!destructive_ok("many VMs"))
		return;
	host_baseline();
	t = calloc(MANY_VMS, sizeof(*t));
	TEST_ASSERT(t, "calloc() of %d VMs failed", MANY_VMS);
	for (i = 0; i < MANY_VMS; i++)
		create_test_vm(&t[i], 0);
	/* After host_baseline()'s own line changes have reached every VM. */
	for (i = 0; i < MANY_VMS; i++) {
		guest_read_clock(&t[i], &r);
		periods[i] = r.period;
	}
	for (i = 0; i < MANY_VMS; i++) {
		updates[i] = vmclock_updates(&t[i]);
		changes[i] = vmclock_line_changes(&t[i]);
	}

	set_freq_ppm(PPM(FREQ_STEP_PPM));
	for (i = 0; i < MANY_VMS; i++) {
		guest_read_clock(&t[i], &r);
		TEST_ASSERT(r.period != periods[i] &&
			    one_update_per_line(&t[i], updates[i], changes[i]),
			    "VM %d of %d: the first entry after a +%d ppm host change saw period %lu (was %lu), vmclock_updates +%lu for %lu line changes, want a new period and one update per line",
			    i, MANY_VMS, FREQ_STEP_PPM, r.period, periods[i],
			    vmclock_updates(&t[i]) - updates[i],
			    vmclock_line_changes(&t[i]) - changes[i]);
	}
	/*
	 * Each line change reaches every VM once, however many there are:
	 * all VMs count the same, once the work has reached the last.
	 */
	start = now_ns(CLOCK_MONOTONIC);
	for (;;) {
		c = vmclock_line_changes(&t[0]) - changes[0];
		for (i = 1; i < MANY_VMS; i++)
			if (vmclock_line_changes(&t[i]) - changes[i] != c)
				break;
		if (i == MANY_VMS || now_ns(CLOCK_MONOTONIC) - start > FANOUT_WAIT_NS)
			break;
		usleep(1000);
	}
	TEST_ASSERT(c >= 1 && i == MANY_VMS,
		    "VM 0 learned of %lu line changes after one host change, VM %d of %d of %lu",
		    c, i, MANY_VMS, vmclock_line_changes(&t[i % MANY_VMS]) - changes[i % MANY_VMS]);
	most = c;
	for (i = 0; i < MANY_VMS; i++)
		changes[i] += c;

	/* Back to 0 ppm, nobody running: the work alone reaches every VM. */
	start = now_ns(CLOCK_MONOTONIC);
	set_freq_ppm(0);
	while ((seen = vms_with_new_line(t, changes, MANY_VMS)) < MANY_VMS &&
	       now_ns(CLOCK_MONOTONIC) - start < FANOUT_WAIT_NS)
		usleep(100);
	fanout_ns = now_ns(CLOCK_MONOTONIC) - start;
	TEST_ASSERT(seen == MANY_VMS,
		    "%d of %d VMs learned of a host frequency change within %lu ms",
		    seen, MANY_VMS, FANOUT_WAIT_NS / NSEC_PER_MSEC);

	for (i = 0; i < MANY_VMS; i++)
		destroy_test_vm(&t[i]);
	free(t);
	test_passed("many VMs",
		    "%d VMs: each saw a +%d ppm host change at its first entry, with one update per line; %lu line change(s) per VM for that host change, the same for all; a change reached all %d in %lu us (emulated)\n",
		    MANY_VMS, FREQ_STEP_PPM, most, MANY_VMS,
		    fanout_ns / NSEC_PER_USEC);
}

/*
 * 21. Races with the host clock, a fixed number of rounds, so that the
 * kernel's checkers see the notifier, its work, the slew work, the entry
 * check and registrations run against each other.  A TAI and a UTC VM read
 * their vmclock all along while the host clock is slewed (+-50 ppm: rate
 * decreases start catch-up slews), stepped (+-1 ms) and its clocksource
 * switched away and back, and a third VM is registered (TAI or UTC, with a
 * notification eventfd or without), run, unregistered, and destroyed and
 * created again with whatever work is pending.  The readers must never
 * find seq_count odd for good (their guest asserts it), may go back only
 * where the host clock did (a step back, a clocksource switch), and once
 * the host clock is steady again both VMs are synchronized on host time.
 */
#define RACE_CLOCK_ROUNDS	48
#define RACE_CLOCK_GAP_US	20000
#define RACE_REG_ROUNDS		200

struct clock_race {
	struct test_vm vm;
	bool done;
	u64 registrations, destroyed;
};

static void *clock_race_register_fn(void *arg)
{
	struct clock_race *cr = arg;
	struct kvm_vmclock cfg;
	struct ucall uc;
	int i, r, fd;
	u16 flags;

	for (i = 0; i < RACE_REG_ROUNDS; i++) {
		if (i % 10 == 9) {
			/* With whatever the notifier or a slew left pending. */
			destroy_test_vm(&cr->vm);
			create_test_vm(&cr->vm, i & 1 ? KVM_VMCLOCK_F_UTC : 0);
			cr->destroyed++;
			continue;
		}
		flags = i & 2 ? KVM_VMCLOCK_F_UTC : 0;
		fd = -1;
		if (i & 1) {
			fd = eventfd(0, EFD_NONBLOCK);
			TEST_ASSERT(fd >= 0, "races: eventfd() failed");
			flags |= KVM_VMCLOCK_F_NOTIFY;
		}
		cfg = (struct kvm_vmclock){
			.gpa = VMCLOCK_GPA,
			.size = PAGE_SIZE,
			.mode = KVM_VMCLOCK_MODE_AUTO,
			.flags = flags,
			.notify_fd = fd,
		};
		r = __vm_ioctl(cr->vm.vm, KVM_SET_VMCLOCK, &cfg);
		if (fd >= 0)
			close(fd);
		TEST_ASSERT(!r, "races: KVM_SET_VMCLOCK(auto mode, flags 0x%x) failed, errno %d",
			    flags, errno);
		cr->registrations++;
		run_vcpu_op(&cr->vm, cr->vm.vcpu, OP_READ, &uc);
		if (i % 3 == 2) {
			r = __set_vmclock(cr->vm.vm, KVM_VMCLOCK_GPA_DISABLED,
					  0, 0, 0);
			TEST_ASSERT(!r, "races: unregistering failed, errno %d",
				    errno);
			run_vcpu_op(&cr->vm, cr->vm.vcpu, OP_SYNC, &uc);
		}
	}
	WRITE_ONCE(cr->done, true);
	return NULL;
}

static void test_clock_races(void)
{
	const char *other = other_clocksource();
	u64 backs = 0, slews = 0, steps = 0, switches = 0;
	struct clock_race cr = {};
	struct test_vm tai, utc;
	struct vmclock_abi c;
	struct reader r[2];
	pthread_t reg;
	int i;

	if (!destructive_ok("races"))
		return;
	host_baseline();
	create_test_vm(&tai, 0);
	create_test_vm(&utc, KVM_VMCLOCK_F_UTC);
	create_test_vm(&cr.vm, 0);
	start_reader(&r[0], &tai, tai.vcpu);
	start_reader(&r[1], &utc, utc.vcpu);
	TEST_ASSERT(!pthread_create(&reg, NULL, clock_race_register_fn, &cr),
		    "pthread_create() failed");

	for (i = 0; i < RACE_CLOCK_ROUNDS || !READ_ONCE(cr.done); i++) {
		switch (i % 4) {
		case 0:
		case 1:
			set_freq_ppm(PPM(i & 1 ? -50 : 50));
			slews++;
			break;
		case 2:
			step_clock_ns(i & 4 ? NSEC_PER_MSEC : -NSEC_PER_MSEC);
			backs += !(i & 4);
			steps++;
			ntp_synced(0, 0, TAI_OFFSET);
			break;
		case 3:
			if (!other || i % 8 != 3)
				break;
			write_sysfs(CLOCKSOURCE_DIR "current_clocksource", other);
			usleep(RACE_CLOCK_GAP_US);
			write_sysfs(CLOCKSOURCE_DIR "current_clocksource", "tsc");
			/* The new line need not be continuous with the old. */
			backs++;
			switches++;
			ntp_synced(0, 0, TAI_OFFSET);
			break;
		}
		usleep(RACE_CLOCK_GAP_US);
	}
	pthread_join(reg, NULL);
	stop_readers(r, 2);
	destroy_test_vm(&cr.vm);

	host_baseline();
	for (i = 0; i < 2; i++) {
		TEST_ASSERT(R_READS(&r[i]) > 0,
			    "races: the %s reader made no progress", i ? "UTC" : "TAI");
		TEST_ASSERT(R_BACKWARDS(&r[i]) <= backs,
			    "races: the %s reader went back %lu times (by up to %lu ns), the host clock only %lu times",
			    i ? "UTC" : "TAI", R_BACKWARDS(&r[i]),
			    R_WORST_BACK(&r[i]), backs);
	}
	wait_status("races: TAI afterwards", &tai, VMCLOCK_STATUS_SYNCHRONIZED, &c);
	wait_status("races: UTC afterwards", &utc, VMCLOCK_STATUS_SYNCHRONIZED, &c);
	assert_on_host_time("races: TAI afterwards", &tai);
	assert_on_host_time("races: UTC afterwards", &utc);
	destroy_test_vm(&tai);
	destroy_test_vm(&utc);
	test_passed("races",
		    "%lu rate changes, %lu steps and %lu clocksource switches against %lu auto registrations and %lu VMs destroyed with work pending; readers: %lu / %lu reads, %lu / %lu back (host clock back %lu times), none stuck; both synchronized on host time afterwards\n",
		    slews, steps, switches, cr.registrations, cr.destroyed,
		    R_READS(&r[0]), R_READS(&r[1]), R_BACKWARDS(&r[0]),
		    R_BACKWARDS(&r[1]), backs);
}

/*
 * Benchmark: how often automatic mode publishes, and how close to host time,
 * while the host clock is steered as NTP daemons steer it, and how much of
 * that work is per host and how much per VM.  Counts carry over to
 * hardware; under TCG, times do not.
 */
struct bench_result {
	u64 ns;
	u64 ticks;		/* Timekeeping updates = pvclock_gtod notifier calls */
	u64 adjustments;	/* adjtimex() calls that change the host's rate */
	u64 updates;		/* vmclock_updates */
	u64 requests;		/* vmclock_update_requests: each kicks the vCPUs */
	u64 line_changes;	/* vmclock_line_changes: notifier calls that did work */
	struct follow f;
	s64 worst_line_bound;	/* Largest bounds seen at a sample */
	s64 worst_max_bound;
	u64 guest_reads;
	u64 guest_backwards;
};

/* One steering profile: what the daemon does at @ns into the run. */
struct profile {
	const char *name;
	const char *daemon;
	void (*start)(void);
	/* Returns the number of rate-changing adjtimex() calls made. */
	int (*step)(u64 ns, u64 *next_ns);
};

/* chrony: a correction every CHRONY_POLL_NS, slewed for CHRONY_SLEW_NS. */
#define CHRONY_POLL_NS		(8 * NSEC_PER_SEC)
#define CHRONY_SLEW_NS		(2 * NSEC_PER_SEC)
/* ntpd / systemd-timesyncd: the kernel PLL, an offset every PLL_POLL_NS. */
#define PLL_POLL_NS		(16 * NSEC_PER_SEC)
/* How often the published clock is compared with host time. */
#define BENCH_SAMPLE_US		100000
/* The notifier's work with many VMs: this many, for this long each. */
#define BENCH_MANY_VMS		100
#define BENCH_NOTIFIER_NS	(60 * NSEC_PER_SEC)

static int chrony_corrections;

/*
 * chrony never uses the kernel PLL: it sets the frequency and the tick in
 * one adjtimex() call (ADJ_FREQUENCY | ADJ_TICK), slews an offset away with
 * a temporary frequency, and tells the kernel its status and error bounds
 * (ADJ_STATUS | ADJ_MAXERROR | ADJ_ESTERROR) after each correction; here
 * at 0 error, so that the bounds are as tight as they get.
 */
static void chrony_set_freq(double ppm)
{
	struct timex tx = {
		.modes = ADJ_FREQUENCY | ADJ_TICK,
		.freq = PPM(ppm),
		.tick = nominal_tick,
	};

	host_adjtimex(&tx);
}

static void chrony_start(void)
{
	chrony_corrections = 0;
	ntp_synced(0, 0, -1);
}

static int chrony_step(u64 ns, u64 *next_ns)
{
	int k = chrony_corrections;
	double base = chrony_ppm[k % ARRAY_SIZE(chrony_ppm)];
	/* A slew of 10..50 ppm for 2 s: an offset of 20..100 us. */
	double slew = (k & 1 ? -1 : 1) * (10 + (k * 7) % 41);

	if (ns < *next_ns)
		return 0;
	if (*next_ns % CHRONY_POLL_NS == 0) {
		chrony_set_freq(base + slew);
		ntp_synced(0, 0, -1);
		*next_ns += CHRONY_SLEW_NS;
	} else {
		chrony_set_freq(base);
		chrony_corrections++;
		*next_ns += CHRONY_POLL_NS - CHRONY_SLEW_NS;
	}
	return 1;
}

/* Offsets an ntpd or systemd-timesyncd measures, in us, one per poll. */
static const long pll_offsets_us[] = {
	2000, -1200, 800, 350, -400, 150, -90, 60, 120, -30, 45, -20,
};

static int pll_polls;

static void pll_start(void)
{
	pll_polls = 0;
}

/*
 * The kernel PLL as ntpd and systemd-timesyncd drive it: one adjtimex()
 * with the measured offset, the time constant, the status and the error
 * bounds every poll; the kernel then changes the tick length every second.
 */
static int pll_step(u64 ns, u64 *next_ns)
{
	struct timex tx = {
		.modes = ADJ_OFFSET | ADJ_TIMECONST | ADJ_STATUS |
			 ADJ_MAXERROR | ADJ_ESTERROR | ADJ_MICRO,
		.constant = 2,
		.maxerror = 0,
		.esterror = 0,
	};

	if (ns < *next_ns)
		return 0;
	tx.offset = pll_offsets_us[pll_polls++ % ARRAY_SIZE(pll_offsets_us)];
	tx.status = (host_timex().status | STA_PLL) & ~STA_UNSYNC;
	host_adjtimex(&tx);
	host_esterror_us = 0;
	*next_ns += PLL_POLL_NS;
	return 1;
}

/* A synchronized host whose rate nobody changes. */
static void steady_start(void)
{
	ntp_synced(0, 0, -1);
}

static int steady_step(u64 ns, u64 *next_ns)
{
	return 0;
}

static const struct profile profiles[] = {
	{ "chrony", "ADJ_FREQUENCY|ADJ_TICK, slewed", chrony_start, chrony_step },
	{ "pll", "kernel PLL, ADJ_OFFSET", pll_start, pll_step },
	{ "steady", "synchronized, no rate change", steady_start, steady_step },
};

static u64 vm_stat_named(struct kvm_vm *vm, const char *stat)
{
	u64 data;

	kvm_get_stat(&vm->stats, stat, &data, 1);
	return data;
}

static u64 vm_stat_sum(struct test_vm *t, int nr, const char *stat)
{
	u64 sum = 0;
	int i;

	for (i = 0; i < nr; i++)
		sum += vm_stat_named(t[i].vm, stat);
	return sum;
}

/*
 * Run @p for @ns on @nr VMs, the first with a guest reading its clock all
 * along and compared with host time every BENCH_SAMPLE_US.
 */
static void bench_profile(const struct profile *p, struct test_vm *t, int nr,
			  u64 ns, struct bench_result *b)
{
	u64 start = now_ns(CLOCK_MONOTONIC), next = 0, now;
	u64 j0 = host_jiffies();
	u64 u0 = vm_stat_sum(t, nr, "vmclock_updates");
	u64 r0 = vm_stat_sum(t, nr, "vmclock_update_requests");
	u64 l0 = vm_stat_sum(t, nr, "vmclock_line_changes");
	u64 lmin0 = vm_stat_named(t[nr - 1].vm, "vmclock_line_changes");
	struct vmclock_abi clk;
	struct deviation d;
	struct reader r;
	double ratio;

	memset(b, 0, sizeof(*b));
	p->start();
	start_reader(&r, t, t->vcpu);
	while ((now = now_ns(CLOCK_MONOTONIC) - start) < ns) {
		b->adjustments += p->step(now, &next);
		usleep(BENCH_SAMPLE_US);
		measure(t, &clk, &d);
		b->f.samples++;
		if (d.status != VMCLOCK_STATUS_SYNCHRONIZED) {
			b->f.unbounded++;
			continue;
		}
		if (llabs(d.err_ns) > llabs(b->f.worst_err))
			b->f.worst_err = d.err_ns;
		ratio = (double)llabs(d.err_ns) / d.line_bound_ns;
		b->f.line_ratio = max(b->f.line_ratio, ratio);
		b->f.line_violations += ratio > 1;
		ratio = (double)llabs(d.err_ns) / d.max_bound_ns;
		b->f.max_ratio = max(b->f.max_ratio, ratio);
		b->f.max_violations += ratio > 1;
		b->worst_line_bound = max(b->worst_line_bound, d.line_bound_ns);
		b->worst_max_bound = max(b->worst_max_bound, d.max_bound_ns);
	}
	stop_readers(&r, 1);
	b->ns = now_ns(CLOCK_MONOTONIC) - start;
	b->ticks = host_jiffies() - j0;
	b->updates = vm_stat_sum(t, nr, "vmclock_updates") - u0;
	b->requests = vm_stat_sum(t, nr, "vmclock_update_requests") - r0;
	b->line_changes = vm_stat_sum(t, nr, "vmclock_line_changes") - l0;
	/* Each VM is told of each change once: the last VM saw as many as all. */
	TEST_ASSERT(b->line_changes ==
		    nr * (vm_stat_named(t[nr - 1].vm, "vmclock_line_changes") - lmin0),
		    "%s: %lu line changes over %d VMs, not the same number for each",
		    p->name, b->line_changes, nr);
	b->line_changes /= nr;
	b->guest_reads = R_READS(&r);
	b->guest_backwards = R_BACKWARDS(&r);
	stop_slewing();
	set_status(0, STA_PLL);
}

static double per_minute(u64 n, u64 ns)
{
	return n * 60.0 * NSEC_PER_SEC / ns;
}

static void bench_print(const char *what, const struct bench_result *b)
{
	bench_say(what,
		  "%.0f s: %lu daemon rate adjustments, %lu vmclock updates (%.2f/min, %.2f per adjustment), %lu update requests = vCPU kicks (%.2f/min), %lu ticks = notifier calls (%.0f/min), %lu that did work (%.2f/min)\n",
		  b->ns / 1e9, b->adjustments, b->updates,
		  per_minute(b->updates, b->ns),
		  b->adjustments ? (double)b->updates / b->adjustments : 0.0,
		  b->requests, per_minute(b->requests, b->ns), b->ticks,
		  per_minute(b->ticks, b->ns), b->line_changes,
		  per_minute(b->line_changes, b->ns));
	bench_say(what,
		  "%lu samples (%lu unsynchronized): worst vmclock - host CLOCK_TAI %+ld ns; worst bounds %ld ns (line error), %ld ns (maximum error); %lu line-bound and %lu maximum-error violations, worst ratios %.3f and %.5f; %lu guest reads, %lu backwards\n",
		  b->f.samples, b->f.unbounded, b->f.worst_err,
		  b->worst_line_bound, b->worst_max_bound,
		  b->f.line_violations, b->f.max_violations, b->f.line_ratio,
		  b->f.max_ratio, b->guest_reads, b->guest_backwards);
}

/* The notifier's work with @nr VMs in automatic mode, under chrony's profile. */
static void bench_notifier(int nr)
{
	struct test_vm *t = calloc(nr, sizeof(*t));
	struct bench_result b;
	char what[32];
	int i;

	TEST_ASSERT(t, "calloc() failed");
	for (i = 0; i < nr; i++)
		create_test_vm(&t[i], 0);
	bench_profile(&profiles[0], t, nr, BENCH_NOTIFIER_NS, &b);
	snprintf(what, sizeof(what), "%d VM%s", nr, nr > 1 ? "s" : "");
	bench_say(what,
		  "chrony profile %.0f s: %lu ticks = notifier calls, %lu that did work (%.2f/min), each delivered to all %d VMs; %lu updates, %lu requests in all\n",
		  b.ns / 1e9, b.ticks, b.line_changes,
		  per_minute(b.line_changes, b.ns), nr, b.updates, b.requests);
	for (i = 0; i < nr; i++)
		destroy_test_vm(&t[i]);
	free(t);
}

/*
 * Fan-out: from one host frequency change until all of @nr VMs, none of
 * whose vCPUs runs, have been told of it (the notifier, its irq_work, the
 * work and each VM's update request), in emulated time.
 */
static void bench_fanout(int nr)
{
	struct test_vm *t = calloc(nr, sizeof(*t));
	u64 *changes = calloc(nr, sizeof(*changes));
	u64 start, ns, worst = 0, sum = 0;
	int i, round, seen;
	char what[32];

	TEST_ASSERT(t && changes, "calloc() failed");
	for (i = 0; i < nr; i++)
		create_test_vm(&t[i], 0);
	for (round = 0; round < 10; round++) {
		for (i = 0; i < nr; i++)
			changes[i] = vmclock_line_changes(&t[i]);
		start = now_ns(CLOCK_MONOTONIC);
		set_freq_ppm(PPM(round & 1 ? 0 : FREQ_STEP_PPM));
		while ((seen = vms_with_new_line(t, changes, nr)) < nr &&
		       now_ns(CLOCK_MONOTONIC) - start < FANOUT_WAIT_NS)
			usleep(50);
		ns = now_ns(CLOCK_MONOTONIC) - start;
		TEST_ASSERT(seen == nr, "fan-out: %d of %d VMs told within %lu ms",
			    seen, nr, FANOUT_WAIT_NS / NSEC_PER_MSEC);
		worst = max(worst, ns);
		sum += ns;
		usleep(100000);
	}
	snprintf(what, sizeof(what), "fan-out %d", nr);
	bench_say(what,
		  "one host frequency change reached all %d VM%s (no vCPU running) in %lu us on average, %lu us at worst, over 10 changes (emulated)\n",
		  nr, nr > 1 ? "s" : "", sum / 10 / NSEC_PER_USEC,
		  worst / NSEC_PER_USEC);
	for (i = 0; i < nr; i++)
		destroy_test_vm(&t[i]);
	free(changes);
	free(t);
	set_freq_ppm(0);
}

/*
 * Tick cost: what the series adds to the host's timer tick, with no
 * automatic VM (the notifier is not registered: nothing), with 1 and with
 * 100.  A thread on each CPU reads the TSC in a tight loop for
 * TICK_COST_NS; a gap longer than TICK_GAP_NS is the loop being
 * interrupted: on hardware mostly by the tick, whose timekeeping update
 * runs the pvclock_gtod notifier, so that the median gap is what a tick
 * costs that CPU.  Under an emulator that runs its CPUs in turn (QEMU TCG
 * with thread=single) the gaps are mostly the emulator's own switches,
 * and the count says so: far more than the ticks.
 */
#define TICK_COST_NS		(2 * NSEC_PER_SEC)
#define TICK_GAP_NS		2000
#define TICK_MAX_GAPS		4096

struct tick_spinner {
	int cpu;
	u64 khz;
	u64 gaps[TICK_MAX_GAPS];
	int nr;
	pthread_t thread;
};

static void *tick_spin_fn(void *arg)
{
	struct tick_spinner *s = arg;
	u64 min_gap = s->khz * TICK_GAP_NS / 1000000, end, now, last;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(s->cpu, &set);
	TEST_ASSERT(!sched_setaffinity(0, sizeof(set), &set),
		    "sched_setaffinity() to CPU %d failed", s->cpu);
	last = rdtsc();
	end = last + s->khz * (TICK_COST_NS / 1000000);
	while ((now = rdtsc()) < end) {
		if (now - last > min_gap && s->nr < TICK_MAX_GAPS)
			s->gaps[s->nr++] = now - last;
		last = now;
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/* The host TSC rate in kHz, measured against CLOCK_MONOTONIC. */
static u64 host_tsc_khz(void)
{
	u64 ns = now_ns(CLOCK_MONOTONIC), c = rdtsc();

	usleep(100000);
	return (rdtsc() - c) * 1000000 / (now_ns(CLOCK_MONOTONIC) - ns);
}

static void bench_tick_cost(int nr)
{
	struct tick_spinner s[2] = { { .cpu = 0 }, { .cpu = 1 } };
	struct test_vm *t = calloc(nr ? nr : 1, sizeof(*t));
	u64 khz = host_tsc_khz(), median[2];
	char what[32];
	int i;

	TEST_ASSERT(t, "calloc() failed");
	for (i = 0; i < nr; i++)
		create_test_vm(&t[i], 0);
	usleep(100000);
	for (i = 0; i < 2; i++) {
		s[i].khz = khz;
		TEST_ASSERT(!pthread_create(&s[i].thread, NULL, tick_spin_fn, &s[i]),
			    "pthread_create() failed");
	}
	for (i = 0; i < 2; i++) {
		pthread_join(s[i].thread, NULL);
		qsort(s[i].gaps, s[i].nr, sizeof(u64), cmp_u64);
		median[i] = s[i].nr ? s[i].gaps[s[i].nr / 2] * 1000000 / khz : 0;
	}
	snprintf(what, sizeof(what), "tick %d VM%s", nr, nr == 1 ? "" : "s");
	bench_say(what,
		  "a CPU spinning on the TSC for %lu s was interrupted %d / %d times (CPU 0 / 1), for a median of %lu / %lu ns (emulated)\n",
		  TICK_COST_NS / NSEC_PER_SEC, s[0].nr, s[1].nr, median[0],
		  median[1]);
	for (i = 0; i < nr; i++)
		destroy_test_vm(&t[i]);
	free(t);
}

static void benchmark(u64 seconds)
{
	struct bench_result b;
	struct test_vm t;
	int i;

	bench_say("setup",
		  "%lu s per profile, samples every %d ms; counts carry over to hardware, times under TCG do not\n",
		  seconds, BENCH_SAMPLE_US / 1000);
	for (i = 0; i < ARRAY_SIZE(profiles); i++) {
		host_baseline();
		create_test_vm(&t, 0);
		bench_say(profiles[i].name, "%s\n", profiles[i].daemon);
		bench_profile(&profiles[i], &t, 1, seconds * NSEC_PER_SEC, &b);
		destroy_test_vm(&t);
		bench_print(profiles[i].name, &b);
	}

	bench_say("0 VMs",
		  "no automatic VM: the notifier is not registered and the clock line is stopped (their static branches are NOPs: make test's static-key-nop checks)\n");
	host_baseline();
	bench_notifier(1);
	host_baseline();
	bench_notifier(BENCH_MANY_VMS);
	host_baseline();
	bench_fanout(1);
	bench_fanout(10);
	bench_fanout(BENCH_MANY_VMS);
	host_baseline();
	bench_tick_cost(0);
	bench_tick_cost(1);
	bench_tick_cost(BENCH_MANY_VMS);
}

int main(int argc, char *argv[])
{
	u64 bench_seconds = 0;
	bool races_only = false;
	int opt, i;

	while ((opt = getopt(argc, argv, "b:r")) != -1) {
		switch (opt) {
		case 'b':
			bench_seconds = strtoull(optarg, NULL, 0);
			break;
		case 'r':
			races_only = true;
			break;
		default:
			printf("usage: %s [-b SECONDS | -r (the races test only)]\n",
			       argv[0]);
			exit(KSFT_FAIL);
		}
	}

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VMCLOCK) & KVM_VMCLOCK_CAP_AUTO);
	TEST_REQUIRE(sys_clocksource_is_based_on_tsc());
	nominal_tick = 1000000 / sysconf(_SC_CLK_TCK);

	/* -b is itself a request to steer the host clock. */
	if (!getenv(DESTRUCTIVE_ENV) && !bench_seconds)
		no_destructive = "changes the host clock, set " DESTRUCTIVE_ENV
				 "=1 to run it (on a machine whose clock may be steered)";
	else if (!have_cap_sys_time())
		no_destructive = "steering the host clock needs CAP_SYS_TIME";

	if (!no_destructive)
		save_host_clock();

	if (bench_seconds) {
		__TEST_REQUIRE(!no_destructive, "%s", no_destructive);
		benchmark(bench_seconds);
		return 0;
	}

	ksft_print_header();
	if (races_only) {
		ksft_set_plan(1);
		test_clock_races();
		ksft_finished();
	}
	ksft_set_plan(NR_TESTS);

	test_errors();
	test_fields();
	test_accuracy();
	test_frequency();
	test_steady();
	test_clocksource();
	test_stale_entry();
	test_monotonic();
	test_steps();
	test_step_in_slew();
	for (i = 0; i < ARRAY_SIZE(leap_cases); i++)
		test_leap(&leap_cases[i]);
	test_pll();
	test_tick();
	test_adjtime();
	test_bounds();
	test_failed_write();
	test_destroy_in_slew();
	test_many_vms();
	test_clock_races();

	ksft_finished();
}
