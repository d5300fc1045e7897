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
#include <linux/types.h>

/* From <linux/kvm.h> of any version. */
#define KVMIO			0xAE
#define KVM_CREATE_VM		_IO(KVMIO, 0x01)
#define KVM_CHECK_EXTENSION	_IO(KVMIO, 0x03)
#define KVM_RUN			_IO(KVMIO, 0x80)

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

#define KVM_SET_VMCLOCK		_IOW(KVMIO, 0xd8, struct kvm_vmclock)
#define KVM_GET_VMCLOCK		_IOR(KVMIO, 0xd9, struct kvm_vmclock)

/* QEMU 10's hw/acpi/vmclock.h: VMCLOCK_ADDR, VMCLOCK_SIZE */
#define VMCLOCK_GPA	0xfeffb000ULL
#define VMCLOCK_SIZE	4096

static int (*next_ioctl)(int, unsigned long, ...);
static int vm_fd = -1;		/* written by KVM_CREATE_VM, read by KVM_RUN */
static pthread_once_t registered = PTHREAD_ONCE_INIT;

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
	if (req == KVM_RUN)
		pthread_once(&registered, register_vmclock);

	ret = real_ioctl(fd, req, arg);

	if (req == KVM_CREATE_VM && ret >= 0)
		__atomic_store_n(&vm_fd, (int)ret, __ATOMIC_RELEASE);
	return ret;
}
