// SPDX-License-Identifier: GPL-2.0
/*
 * vmclock-preload.so: make a stock QEMU 10 hand its vmclock page to KVM.
 *
 * THIS STANDS IN FOR A QEMU PATCH until the KVM_SET_VMCLOCK UAPI is settled.
 * It is test scaffolding for the kvm-vmclock series, not something to run
 * in production.
 *
 * QEMU 10's "-device vmclock" puts a 4 KiB RAM page at guest physical
 * address 0xfeffb000 and describes it in ACPI, but never fills in the time.
 * This library interposes ioctl() in the QEMU process and registers that
 * page with KVM in automatic mode (KVM follows host timekeeping), so that the
 * guest's ptp_vmclock driver finds a TSC/TAI clock when it probes:
 *
 *   LD_PRELOAD=/path/vmclock-preload.so qemu-system-x86_64 -accel kvm \
 *       -device vmclock ...
 *
 * When: on the first KVM_RUN of any vCPU in this process, before that
 * KVM_RUN is passed on.  Not earlier: QEMU maps the page (makes it a memslot)
 * in its reset handler, so at device creation there is nothing to register
 * yet (KVM_SET_VMCLOCK would fail with EFAULT).  The first KVM_RUN comes
 * after the first system reset, or, on the destination of a live migration
 * (a new QEMU process), after the incoming state was loaded, including
 * QEMU's post_load bump of disruption_marker, which KVM then keeps.  Later
 * resets need nothing: QEMU leaves the page mapped, and KVM keeps writing it.
 *
 * Once per VM: QEMU creates one VM per process; the VM fd is the return
 * value of KVM_CREATE_VM.  vCPU threads call KVM_RUN concurrently, so the
 * registration runs under pthread_once(): exactly one thread does it and the
 * others wait until it is done before they enter the guest.
 *
 * No notification eventfd is passed: QEMU 10's ACPI description of the
 * device has no Notify method, so the guest could never be told.
 *
 * VMCLOCK_PRELOAD_CHECK=N in the environment adds a host-side check, for the
 * end-to-end test: N times, 250 ms apart, a thread reads the page through
 * QEMU's own mapping of it and compares its time at the host TSC (plus the
 * vCPU's TSC offset, read before its first entry; TSC scaling is not
 * handled) with host CLOCK_TAI read around that TSC.  One line per sample,
 * on stderr, or appended to the file VMCLOCK_PRELOAD_CHECK_LOG names: QEMU's
 * serial output on the same stream could otherwise be cut by a sample line.
 *
 * VMCLOCK_PRELOAD_DISRUPT=1 (for the destination of a live migration) also
 * signals the disruption the KVM API way, KVM_VMCLOCK_DISRUPTION, right
 * after the registration: on top of QEMU's own post_load bump in guest
 * memory, which KVM adopts, so the guest sees QEMU's marker plus one.  The
 * line it prints carries the marker guest memory held before (QEMU's).
 *
 * The UAPI is defined here (copied from the series' include/uapi/linux/kvm.h)
 * so that this builds against any installed kernel headers:
 *   gcc -O2 -Wall -shared -fPIC -o vmclock-preload.so vmclock-preload.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <time.h>
#include <linux/types.h>

#include "vmclock-page.h"

/* From <linux/kvm.h> of any version. */
#define KVMIO			0xAE
#define KVM_CREATE_VM		_IO(KVMIO, 0x01)
#define KVM_CHECK_EXTENSION	_IO(KVMIO, 0x03)
#define KVM_RUN			_IO(KVMIO, 0x80)
#define KVM_GET_DEVICE_ATTR	_IOW(KVMIO, 0xe2, struct kvm_device_attr)
#define KVM_VCPU_TSC_CTRL	0	/* vCPU attribute group */
#define KVM_VCPU_TSC_OFFSET	0	/* attribute: the vCPU's TSC offset */

struct kvm_device_attr {
	__u32 flags;
	__u32 group;
	__u64 attr;
	__u64 addr;
};

/* The head of kvm_userspace_memory_region and ..._region2 alike. */
struct kvm_region_head {
	__u32 slot;
	__u32 flags;
	__u64 guest_phys_addr;
	__u64 memory_size;
	__u64 userspace_addr;
};

#define KVM_SET_USER_MEMORY_REGION_NR	0x46
#define KVM_SET_USER_MEMORY_REGION2_NR	0x49

/* From the kvm-vmclock series' <linux/kvm.h> (patches 0006 and 0012). */
#define KVM_CAP_VMCLOCK 250

#define KVM_VMCLOCK_CAP_AUTO		(1 << 1)
#define KVM_VMCLOCK_MODE_AUTO		2

struct kvm_vmclock {
	__u64 gpa;
	__u32 size;
	__u16 mode;
	__u16 flags;
	__s32 notify_fd;
	__u32 status;
	__u32 guest_tsc_khz;
	__u32 pad;
	__u64 reserved[4];
};

#define KVM_VMCLOCK_DISRUPTED		(1 << 0)

struct kvm_vmclock_disruption {
	__u32 flags;
	__u32 notice;
	__u64 reserved[3];
};

#define KVM_SET_VMCLOCK		_IOW(KVMIO, 0xd8, struct kvm_vmclock)
#define KVM_GET_VMCLOCK		_IOR(KVMIO, 0xd9, struct kvm_vmclock)
#define KVM_VMCLOCK_DISRUPTION	_IOW(KVMIO, 0xdb, struct kvm_vmclock_disruption)

/* QEMU 10's hw/acpi/vmclock.h: VMCLOCK_ADDR, VMCLOCK_SIZE */
#define VMCLOCK_GPA	0xfeffb000ULL
#define VMCLOCK_SIZE	4096

static int (*next_ioctl)(int, unsigned long, ...);
static int vm_fd = -1;		/* written by KVM_CREATE_VM, read by KVM_RUN */
static pthread_once_t registered = PTHREAD_ONCE_INIT;
static long real_ioctl(int fd, unsigned long req, void *arg);
static __thread int run_fd = -1;	/* the vCPU fd of this thread's KVM_RUN */
static void *page_hva;			/* QEMU's mapping of the vmclock page */

/* The host-side check (VMCLOCK_PRELOAD_CHECK=N), see the header comment. */
struct check {
	const volatile struct vmclock_abi *clk;
	int64_t tsc_offset;
	long samples;
	FILE *out;
};

static __int128 tai_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_TAI, &ts);
	return (__int128)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *check_thread(void *arg)
{
	struct check *c = arg;

	for (long i = 0; i < c->samples; i++) {
		__int128 t0, t1, page;
		uint64_t tsc, marker;
		uint32_t seq;
		uint8_t st;

		usleep(250000);
		t0 = tai_ns();
		tsc = rdtsc_ordered();
		t1 = tai_ns();
		page = vmclock_page_time_ns(c->clk, tsc + c->tsc_offset, &marker, &seq, &st);
		if (page < 0) {
			fprintf(c->out, "vmclock-preload: check %ld: page has no time (status %s)\n",
				i, st < 5 ? status_name[st] : "?");
			continue;
		}
		fprintf(c->out, "vmclock-preload: check %ld: page - host CLOCK_TAI %+lld ns, bracket %lld ns, status %s, disruption_marker %llu\n",
			i, (long long)(page - (t0 + t1) / 2), (long long)(t1 - t0),
			st < 5 ? status_name[st] : "?", (unsigned long long)marker);
	}
	if (c->out != stderr)
		fclose(c->out);
	free(c);
	return NULL;
}

/* Where the check's lines go: VMCLOCK_PRELOAD_CHECK_LOG, else stderr. */
static FILE *check_output(void)
{
	const char *path = getenv("VMCLOCK_PRELOAD_CHECK_LOG");
	FILE *f;

	if (!path || !*path)
		return stderr;
	f = fopen(path, "ae");	/* not inherited by QEMU's children */
	if (!f) {
		fprintf(stderr, "vmclock-preload: check: %s: %s, using stderr\n",
			path, strerror(errno));
		return stderr;
	}
	setvbuf(f, NULL, _IOLBF, 0);
	return f;
}

static void start_check(int vcpu_fd)
{
	const char *env = getenv("VMCLOCK_PRELOAD_CHECK");
	struct kvm_device_attr attr = {
		.group = KVM_VCPU_TSC_CTRL,
		.attr = KVM_VCPU_TSC_OFFSET,
	};
	struct check *c;
	pthread_t t;

	if (!env || atol(env) <= 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	attr.addr = (__u64)(unsigned long)&c->tsc_offset;
	if (!page_hva || vcpu_fd < 0 || real_ioctl(vcpu_fd, KVM_GET_DEVICE_ATTR, &attr)) {
		fprintf(stderr, "vmclock-preload: check: no page mapping or no TSC offset (%s)\n",
			strerror(errno));
		free(c);
		return;
	}
	c->clk = page_hva;
	c->samples = atol(env);
	fprintf(stderr, "vmclock-preload: check: TSC offset %lld, %ld samples\n",
		(long long)c->tsc_offset, c->samples);
	c->out = check_output();
	if (pthread_create(&t, NULL, check_thread, c) == 0) {
		pthread_detach(t);
		return;
	}
	if (c->out != stderr)
		fclose(c->out);
	free(c);
}

/* Where QEMU maps the vmclock page, from its memslot ioctls. */
static void note_region(unsigned long req, const struct kvm_region_head *r)
{
	if (_IOC_TYPE(req) != KVMIO || (_IOC_NR(req) != KVM_SET_USER_MEMORY_REGION_NR &&
					_IOC_NR(req) != KVM_SET_USER_MEMORY_REGION2_NR))
		return;
	if (r->guest_phys_addr <= VMCLOCK_GPA &&
	    VMCLOCK_GPA + VMCLOCK_SIZE <= r->guest_phys_addr + r->memory_size)
		page_hva = (void *)(unsigned long)(r->userspace_addr + VMCLOCK_GPA - r->guest_phys_addr);
}

/* The ioctl() this one hides (glibc's, or another preload's). */
static long real_ioctl(int fd, unsigned long req, void *arg)
{
	int (*fn)(int, unsigned long, ...) =
		__atomic_load_n(&next_ioctl, __ATOMIC_ACQUIRE);

	if (!fn) {
		fn = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
		if (!fn)	/* cannot happen with glibc; stay usable anyway */
			return syscall(SYS_ioctl, fd, req, arg);
		__atomic_store_n(&next_ioctl, fn, __ATOMIC_RELEASE);
	}
	return fn(fd, req, arg);
}

/* VMCLOCK_PRELOAD_DISRUPT=1: KVM_VMCLOCK_DISRUPTION, see the header. */
static void signal_disruption(int fd)
{
	struct kvm_vmclock_disruption d = { .flags = KVM_VMCLOCK_DISRUPTED };
	const char *env = getenv("VMCLOCK_PRELOAD_DISRUPT");
	unsigned long long before;

	if (!env || strcmp(env, "1"))
		return;
	before = page_hva ? ((volatile struct vmclock_abi *)page_hva)->disruption_marker : 0;
	if (real_ioctl(fd, KVM_VMCLOCK_DISRUPTION, &d)) {
		fprintf(stderr, "vmclock-preload: KVM_VMCLOCK_DISRUPTION: FAILED: %s\n",
			strerror(errno));
		return;
	}
	fprintf(stderr, "vmclock-preload: KVM_VMCLOCK_DISRUPTION: ok (disruption_marker in guest memory before: %llu)\n",
		before);
}

static void register_vmclock(void)
{
	int fd = __atomic_load_n(&vm_fd, __ATOMIC_ACQUIRE);
	struct kvm_vmclock reg = {
		.gpa = VMCLOCK_GPA,
		.size = VMCLOCK_SIZE,
		.mode = KVM_VMCLOCK_MODE_AUTO,
		.notify_fd = -1,	/* ignored without KVM_VMCLOCK_F_NOTIFY */
	};
	struct kvm_vmclock cur;
	int saved_errno = errno;	/* keep the caller's errno intact */
	long caps;

	if (fd < 0) {
		fprintf(stderr, "vmclock-preload: KVM_RUN before KVM_CREATE_VM: nothing registered\n");
		goto out;
	}
	caps = real_ioctl(fd, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_VMCLOCK);
	if (caps < 0 || !(caps & KVM_VMCLOCK_CAP_AUTO)) {
		fprintf(stderr, "vmclock-preload: KVM has no automatic vmclock mode (KVM_CAP_VMCLOCK = %ld): nothing registered\n",
			caps);
		goto out;
	}
	if (real_ioctl(fd, KVM_SET_VMCLOCK, &reg)) {
		fprintf(stderr, "vmclock-preload: KVM_SET_VMCLOCK gpa %#llx size %u automatic mode: FAILED: %s\n",
			VMCLOCK_GPA, VMCLOCK_SIZE, strerror(errno));
		goto out;
	}
	memset(&cur, 0, sizeof(cur));
	real_ioctl(fd, KVM_GET_VMCLOCK, &cur);
	fprintf(stderr, "vmclock-preload: KVM_SET_VMCLOCK gpa %#llx size %u automatic mode: ok (pid %d, vm fd %d, guest TSC %u kHz, status %#x)\n",
		(unsigned long long)cur.gpa, cur.size, (int)getpid(), fd,
		cur.guest_tsc_khz, cur.status);
	signal_disruption(fd);
	start_check(run_fd);
out:
	errno = saved_errno;
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;
	long ret;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);

	/* Before the vCPU's first entry: the page is a memslot by now. */
	if (req == KVM_RUN) {
		run_fd = fd;
		pthread_once(&registered, register_vmclock);
	}

	ret = real_ioctl(fd, req, arg);

	if (ret == 0)
		note_region(req, arg);

	if (req == KVM_CREATE_VM && ret >= 0)
		__atomic_store_n(&vm_fd, (int)ret, __ATOMIC_RELEASE);
	return ret;
}
