// SPDX-License-Identifier: GPL-2.0-only
/*
 * Random and boundary inputs to KVM_SET_VMCLOCK, KVM_GET_VMCLOCK,
 * KVM_SET_VMCLOCK_HOST and KVM_VMCLOCK_DISRUPTION, each checked against a
 * model of what Documentation/virt/kvm/api.rst promises:
 *
 *  - every call returns 0 or the error the model predicts for that input
 *    (api.rst lists the errors; where several apply, the model takes the
 *    order of the checks in arch/x86/kvm/vmclock.c);
 *  - a failed call changes nothing: KVM_GET_VMCLOCK reads back the same,
 *    and after the vCPU entered the guest again, guest memory and the
 *    vmclock_updates statistic are unchanged (in userspace mode; in
 *    automatic mode KVM republishes on its own whenever the host clock
 *    changes or a catch-up slew ends, so only KVM_GET_VMCLOCK is checked);
 *  - a successful KVM_SET_VMCLOCK shows in KVM_GET_VMCLOCK, and once the
 *    vCPU entered, the structure is in guest memory at the new place.
 *
 * Inputs: every reserved field and flag bit, modes and enums out of range,
 * shifts 0..255, zero and huge periods and error rates, counter values in
 * the future, GPAs at memslot edges, crossing a page, unaligned, above the
 * maximum GPA, in a read-only memslot and in private memory (a
 * KVM_X86_SW_PROTECTED_VM, when KVM has that type), notification fds that
 * are eventfds, other files, closed, or closed and reused by another file,
 * and argument pointers KVM cannot read or write.  Any kernel report
 * (WARN, KASAN, lockdep...) during the run fails make test.
 *
 *   vmclock_fuzz_test [-s SEED] [-n N]
 *
 * It runs until each of the four ioctls had at least N inputs (default
 * 10000).  The seed is fixed (DEFAULT_SEED) and printed first, so that a
 * failure in CI replays exactly; "-s SEED" tries others.
 */
#include <endian.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/vmclock-abi.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "vmclock.h"

#define DEFAULT_CALLS		10000
#define DEFAULT_SEED		0x766d636c6f636bULL	/* "vmclock" */

/* The memslots registrations aim at, besides the selftest's slot 0. */
#define FUZZ_SLOT		10
#define FUZZ_GPA		0xc0000000ULL
#define FUZZ_NPAGES		2
#define RO_SLOT			11
#define RO_GPA			0xc0400000ULL
#define PRIVATE_SLOT		12
#define PRIVATE_GPA		0xc0600000ULL

/* A GPA above anything a VM can have (52 bits is the x86 maximum). */
#define HUGE_GPA		BIT_ULL(52)

#define MIN_SIZE		((u32)sizeof(struct vmclock_abi))

#define NR_FDS			4

/*
 * What the model says when either -EINVAL or the result of the checks
 * after it (host_mode_result()) is right.
 */
#define MAYBE_EINVAL		1

/* What the fuzzer counts: one entry per ioctl and result. */
enum fuzz_call { CALL_SET, CALL_GET, CALL_HOST, CALL_DISRUPTION, NR_CALLS };
static const char * const call_name[NR_CALLS] = {
	"KVM_SET_VMCLOCK", "KVM_GET_VMCLOCK", "KVM_SET_VMCLOCK_HOST",
	"KVM_VMCLOCK_DISRUPTION",
};

static const int errnos[] = { 0, EINVAL, EFAULT, EBADF, ENOENT };
#define NR_ERRNOS		ARRAY_SIZE(errnos)

static u64 counts[NR_CALLS][NR_ERRNOS];
static u64 ambiguous, runs, memory_checks, auto_failures;

/* One VM under test, and the model of its vmclock registration. */
struct fuzz_vm {
	const char *name;
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;		/* NULL: never entered */
	bool has_private;		/* PRIVATE_GPA is a guest_memfd slot */
	bool private_now;		/* ... whose page is private now */
	struct kvm_vmclock model;	/* What KVM_GET_VMCLOCK must return */
	u32 guest_tsc_khz;
};

static u64 rng_state;

/* splitmix64: small, good enough, and replayable from the printed seed. */
static u64 rnd(void)
{
	u64 z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static u64 below(u64 n)
{
	return rnd() % n;
}

static bool one_in(u64 n)
{
	return !below(n);
}

/* Values at the edges of a field's range, and some in between. */
static u64 boundary_u64(void)
{
	static const u64 v[] = {
		0, 1, 2, 0x7fffffffffffffffULL, 0x8000000000000000ULL,
		~0ULL, ~0ULL - 1, 0xffffffffULL, 0x100000000ULL,
	};

	switch (below(4)) {
	case 0:
		return v[below(ARRAY_SIZE(v))];
	case 1:
		return 1ULL << below(64);
	case 2:
		return (1ULL << below(64)) - 1;
	default:
		return rnd();
	}
}

static u64 boundary_u8(u64 max_valid)
{
	switch (below(4)) {
	case 0:
		return max_valid;
	case 1:
		return max_valid + 1;
	case 2:
		return 255;
	default:
		return below(256);
	}
}

/* Notification fds: each slot open as an eventfd, as a pipe, or closed. */
enum fd_kind { FD_NONE, FD_EVENTFD, FD_OTHER };
static int fds[NR_FDS];
static int pipe_other_end[NR_FDS];

static void close_fd(int i)
{
	if (fds[i] >= 0)
		close(fds[i]);
	if (pipe_other_end[i] >= 0)
		close(pipe_other_end[i]);
	pipe_other_end[i] = -1;
	/* The number stays, to be passed as a closed (or later reused) fd. */
}

/* Close slot @i and reopen it as something else: the number is reused. */
static void reopen_fd(int i)
{
	int p[2];

	close_fd(i);
	switch (below(3)) {
	case 0:
		fds[i] = eventfd(0, EFD_NONBLOCK);
		TEST_ASSERT(fds[i] >= 0, "eventfd() failed, errno %d", errno);
		break;
	case 1:
		TEST_ASSERT(!pipe(p), "pipe() failed, errno %d", errno);
		fds[i] = p[0];
		pipe_other_end[i] = p[1];
		break;
	default:
		break;	/* Left closed. */
	}
}

/* What @fd is now, as the kernel will see it. */
static enum fd_kind fd_kind(int fd)
{
	char path[64], target[64];
	ssize_t n;

	if (fd < 0)
		return FD_NONE;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return FD_NONE;
	target[n] = 0;
	return strcmp(target, "anon_inode:[eventfd]") ? FD_OTHER : FD_EVENTFD;
}

static int random_fd(struct fuzz_vm *f)
{
	switch (below(8)) {
	case 0:
		return -1;
	case 1:
		return INT_MAX;
	case 2:
		return f->vm->fd;
	case 3:
		return (int)rnd();
	default:
		return fds[below(NR_FDS)];
	}
}

/* The memslot of @f holding [@gpa, @gpa + @size), if any. */
static struct userspace_mem_region *slot_of(struct fuzz_vm *f, u64 gpa,
					    u32 size)
{
	struct userspace_mem_region *region;
	int bkt;

	hash_for_each(f->vm->regions.slot_hash, bkt, region, slot_node) {
		u64 start = region->region.guest_phys_addr;
		u64 end = start + region->region.memory_size;

		if (gpa >= start && gpa < end && size <= end - gpa)
			return region;
	}
	return NULL;
}

/*
 * The error KVM_SET_VMCLOCK must return for @cfg (0 or a negative errno),
 * in the order the checks are documented: the argument itself, then the
 * memory, then the eventfd.
 */
static int expected_set_error(struct fuzz_vm *f, const struct kvm_vmclock *cfg)
{
	struct userspace_mem_region *region;
	enum fd_kind kind;
	int i;

	if (cfg->pad)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(cfg->reserved); i++)
		if (cfg->reserved[i])
			return -EINVAL;
	if (cfg->gpa == KVM_VMCLOCK_GPA_DISABLED)
		return cfg->size || cfg->mode || cfg->flags ? -EINVAL : 0;
	if (cfg->flags & ~(KVM_VMCLOCK_F_UTC | KVM_VMCLOCK_F_NOTIFY))
		return -EINVAL;
	if (cfg->mode != KVM_VMCLOCK_MODE_AUTO &&
	    (cfg->mode != KVM_VMCLOCK_MODE_USERSPACE ||
	     cfg->flags & KVM_VMCLOCK_F_UTC))
		return -EINVAL;
	if (cfg->gpa & 7 || cfg->size < MIN_SIZE || cfg->size > PAGE_SIZE ||
	    (cfg->gpa & (PAGE_SIZE - 1)) + cfg->size > PAGE_SIZE)
		return -EINVAL;
	if (f->has_private && f->private_now &&
	    cfg->gpa >= PRIVATE_GPA && cfg->gpa < PRIVATE_GPA + PAGE_SIZE)
		return -EINVAL;
	region = slot_of(f, cfg->gpa, cfg->size);
	if (!region || region->region.flags & KVM_MEM_READONLY)
		return -EFAULT;
	if (cfg->flags & KVM_VMCLOCK_F_NOTIFY) {
		kind = fd_kind(cfg->notify_fd);
		if (kind == FD_NONE)
			return -EBADF;
		if (kind == FD_OTHER)
			return -EINVAL;
	}
	return 0;
}

/* KVM_SET_VMCLOCK_HOST's result for a valid host clock: the mode decides. */
static int host_mode_result(struct fuzz_vm *f)
{
	if (!f->model.mode)
		return -ENOENT;
	if (f->model.mode != KVM_VMCLOCK_MODE_USERSPACE)
		return -EINVAL;
	return 0;
}

/*
 * How far KVM moves a future reference point back (kvm_vmclock_anchor()),
 * for a host TSC of @now: in units of 2^-64 s, like the time.
 */
static unsigned __int128 anchor_back(const struct kvm_vmclock_host *h, u64 now)
{
	if (h->counter_value <= now)
		return 0;
	return ((unsigned __int128)(h->counter_value - now) *
		h->period_frac_sec) >> h->period_shift;
}

/*
 * The error KVM_SET_VMCLOCK_HOST must return for @h, called between host
 * TSC values @t0 and @t1; MAYBE_EINVAL when it depends on exactly when KVM
 * read the TSC (a future counter_value whose move back to the present takes
 * about all the time there is).
 */
static int expected_host_error(struct fuzz_vm *f,
			       const struct kvm_vmclock_host *h, u64 t0, u64 t1)
{
	unsigned __int128 time;
	int i;

	if (h->pad)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(h->reserved); i++)
		if (h->reserved[i])
			return -EINVAL;
	if (h->flags & ~(u64)VMCLOCK_KVM_HOST_FLAGS)
		return -EINVAL;
	if (h->period_shift > 63 || !h->period_frac_sec)
		return -EINVAL;
	if (h->clock_status > VMCLOCK_STATUS_UNRELIABLE ||
	    h->time_type > VMCLOCK_TIME_INVALID_MAYBE_SMEARED ||
	    h->leap_indicator > VMCLOCK_LEAP_POST_NEG ||
	    h->leap_second_smearing_hint > VMCLOCK_SMEARING_UTC_SLS)
		return -EINVAL;
	time = (unsigned __int128)h->time_sec << 64 | h->time_frac_sec;
	/* The later KVM read the TSC, the less it moves back. */
	if (anchor_back(h, t1) > time)
		return -EINVAL;
	if (anchor_back(h, t0) > time)
		return MAYBE_EINVAL;
	return host_mode_result(f);
}

static int expected_disruption_error(struct fuzz_vm *f,
				     const struct kvm_vmclock_disruption *d)
{
	int i;

	if (d->flags & ~(KVM_VMCLOCK_DISRUPTED | KVM_VMCLOCK_NEW_GENERATION |
			 KVM_VMCLOCK_SET_NOTICE) ||
	    d->notice & ~(KVM_VMCLOCK_NOTICE_SOON |
			  KVM_VMCLOCK_NOTICE_IMMINENT) ||
	    (d->notice && !(d->flags & KVM_VMCLOCK_SET_NOTICE)))
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(d->reserved); i++)
		if (d->reserved[i])
			return -EINVAL;
	return f->model.mode ? 0 : -ENOENT;
}

/* A GPA for a registration of @size bytes: mostly edges of something. */
static u64 random_gpa(struct fuzz_vm *f, u32 size)
{
	u64 in_page = size <= PAGE_SIZE ? PAGE_SIZE - size : 0;
	u64 gpa;

	switch (below(12)) {
	case 0:
		return FUZZ_GPA;
	case 1:		/* The last place in the first page... */
		return FUZZ_GPA + (in_page & ~7ULL);
	case 2:		/* ... and past it: crossing into the second page. */
		return FUZZ_GPA + (in_page & ~7ULL) + 8;
	case 3:		/* The end of the memslot, and past it. */
		return FUZZ_GPA + FUZZ_NPAGES * PAGE_SIZE - size +
		       8 * below(2);
	case 4:
		return FUZZ_GPA - 8 * (1 + below(2));
	case 5:
		return one_in(2) ? RO_GPA : PRIVATE_GPA;
	case 6:		/* Above the maximum GPA, or near the top. */
		return one_in(2) ? HUGE_GPA + PAGE_SIZE * below(4) :
				   ~0ULL - 7 - 8 * below(PAGE_SIZE / 8);
	case 7:		/* Unaligned. */
		return FUZZ_GPA + 8 * below(FUZZ_NPAGES * PAGE_SIZE / 8) +
		       1 + below(7);
	case 8:
		return rnd();
	case 9:		/* Slot 0: valid, but see run_allowed(). */
		return one_in(2) ? 0 : PAGE_SIZE * below(16);
	default:	/* Anywhere in the slot, aligned. */
		gpa = FUZZ_GPA + PAGE_SIZE * below(FUZZ_NPAGES);
		return gpa + 8 * below(in_page / 8 + 1);
	}
}

static u32 random_size(void)
{
	static const u32 v[] = {
		0, 1, MIN_SIZE - 1, MIN_SIZE, MIN_SIZE + 8, PAGE_SIZE - 8,
		PAGE_SIZE, PAGE_SIZE + 1, 2 * PAGE_SIZE, 0xffffffffU,
	};

	if (one_in(3))
		return MIN_SIZE + 8 * below((PAGE_SIZE - MIN_SIZE) / 8 + 1);
	return one_in(8) ? (u32)rnd() : v[below(ARRAY_SIZE(v))];
}

/* A registration: valid as a start, then 0 to 3 fields made hostile. */
static void random_config(struct fuzz_vm *f, struct kvm_vmclock *cfg)
{
	int n = below(4);

	memset(cfg, 0, sizeof(*cfg));
	if (one_in(8)) {
		cfg->gpa = KVM_VMCLOCK_GPA_DISABLED;
	} else {
		cfg->size = one_in(2) ? PAGE_SIZE : random_size();
		cfg->gpa = random_gpa(f, cfg->size);
		cfg->mode = one_in(2) ? KVM_VMCLOCK_MODE_USERSPACE :
					KVM_VMCLOCK_MODE_AUTO;
		if (cfg->mode == KVM_VMCLOCK_MODE_AUTO && one_in(2))
			cfg->flags |= KVM_VMCLOCK_F_UTC;
		if (one_in(3)) {
			cfg->flags |= KVM_VMCLOCK_F_NOTIFY;
			cfg->notify_fd = random_fd(f);
		}
	}
	while (n--) {
		switch (below(8)) {
		case 0:
			cfg->mode = one_in(2) ? below(4) : (u16)rnd();
			break;
		case 1:
			cfg->flags ^= 1U << below(16);
			break;
		case 2:
			cfg->pad = one_in(2) ? 1U << below(32) : (u32)rnd();
			break;
		case 3:
			cfg->reserved[below(4)] = boundary_u64();
			break;
		case 4:
			cfg->size = random_size();
			break;
		case 5:
			cfg->gpa = random_gpa(f, cfg->size);
			break;
		case 6:
			cfg->notify_fd = random_fd(f);
			break;
		default:	/* Output fields: ignored on input. */
			cfg->status = rnd();
			cfg->guest_tsc_khz = rnd();
			break;
		}
	}
}

/* A plausible host clock (the host's TSC -> TAI line), then fields broken. */
static void random_host(struct kvm_vmclock_host *h,
			const struct vmclock_abi *line)
{
	int n = below(4);

	vmclock_host_from_abi(h, line);
	if (one_in(16)) {
		/* Everything random, the kind of input a broken VMM sends. */
		u8 *p = (u8 *)h;
		size_t i;

		for (i = 0; i < sizeof(*h); i++)
			p[i] = rnd();
		return;
	}
	while (n--) {
		switch (below(14)) {
		case 0:
			h->period_shift = below(256);
			break;
		case 1:
			h->period_frac_sec = boundary_u64();
			break;
		case 2:
			h->period_esterror_rate_frac_sec = boundary_u64();
			break;
		case 3:
			h->period_maxerror_rate_frac_sec = boundary_u64();
			break;
		case 4:		/* Mostly in the future, by up to 2^63. */
			h->counter_value = one_in(4) ? boundary_u64() :
					   rdtsc() + (1ULL << below(64));
			break;
		case 5:
			h->time_sec = boundary_u64();
			break;
		case 6:
			h->time_frac_sec = boundary_u64();
			break;
		case 7:
			h->time_esterror_nanosec = boundary_u64();
			h->time_maxerror_nanosec = boundary_u64();
			break;
		case 8:
			h->flags ^= 1ULL << below(64);
			break;
		case 9:
			h->clock_status = boundary_u8(VMCLOCK_STATUS_UNRELIABLE);
			h->time_type =
				boundary_u8(VMCLOCK_TIME_INVALID_MAYBE_SMEARED);
			break;
		case 10:
			h->leap_indicator = boundary_u8(VMCLOCK_LEAP_POST_NEG);
			h->leap_second_smearing_hint =
				boundary_u8(VMCLOCK_SMEARING_UTC_SLS);
			break;
		case 11:
			h->pad = 1 + below(255);
			break;
		case 12:
			h->reserved[below(ARRAY_SIZE(h->reserved))] =
				boundary_u64();
			break;
		default:
			h->tai_offset_sec = rnd();
			break;
		}
	}
}

static void random_disruption(struct kvm_vmclock_disruption *d)
{
	memset(d, 0, sizeof(*d));
	d->flags = below(8);
	if (d->flags & KVM_VMCLOCK_SET_NOTICE)
		d->notice = below(4);
	switch (below(6)) {
	case 0:
		d->flags |= 1U << below(32);
		break;
	case 1:
		d->notice |= 1U << below(32);
		break;
	case 2:
		d->reserved[below(3)] = boundary_u64();
		break;
	default:
		break;
	}
}

static int errno_index(int err)
{
	int i;

	for (i = 0; i < NR_ERRNOS; i++)
		if (errnos[i] == err)
			return i;
	TEST_FAIL("errno %d (%s) is no documented result of a vmclock ioctl",
		  err, strerror(err));
	return 0;
}

static void get_config(struct fuzz_vm *f, struct kvm_vmclock *cfg)
{
	memset(cfg, 0xa5, sizeof(*cfg));
	vm_ioctl(f->vm, KVM_GET_VMCLOCK, cfg);
}

/* KVM_GET_VMCLOCK returns exactly what the model holds. */
static void check_get(struct fuzz_vm *f, u64 call)
{
	struct kvm_vmclock got;
	const struct kvm_vmclock *m = &f->model;
	int i;

	get_config(f, &got);
	counts[CALL_GET][0]++;
	TEST_ASSERT(got.gpa == m->gpa && got.size == m->size &&
		    got.mode == m->mode && got.flags == m->flags,
		    "%s call %lu: KVM_GET_VMCLOCK says gpa %#llx size %u mode %u flags %#x, the calls so far say gpa %#llx size %u mode %u flags %#x",
		    f->name, call, got.gpa, got.size, got.mode, got.flags,
		    m->gpa, m->size, m->mode, m->flags);
	TEST_ASSERT(!got.status,
		    "%s call %lu: KVM_GET_VMCLOCK status %#x: nothing here can stall",
		    f->name, call, got.status);
	TEST_ASSERT(got.notify_fd == -1 && !got.pad,
		    "%s call %lu: KVM_GET_VMCLOCK notify_fd %d pad %u, want -1 and 0",
		    f->name, call, got.notify_fd, got.pad);
	for (i = 0; i < ARRAY_SIZE(got.reserved); i++)
		TEST_ASSERT(!got.reserved[i],
			    "%s call %lu: KVM_GET_VMCLOCK reserved[%d] = %#llx",
			    f->name, call, i, got.reserved[i]);
	TEST_ASSERT(got.guest_tsc_khz == f->guest_tsc_khz,
		    "%s call %lu: KVM_GET_VMCLOCK guest_tsc_khz %u, was %u",
		    f->name, call, got.guest_tsc_khz, f->guest_tsc_khz);
}

/*
 * The vCPU may enter only while the vmclock is off or in the fuzz slot:
 * slot 0 holds the guest's code and page tables, which a registration
 * there (valid, and accepted) would overwrite.
 */
static bool run_allowed(struct fuzz_vm *f)
{
	return f->vcpu && (!f->model.mode ||
			   (f->model.gpa >= FUZZ_GPA &&
			    f->model.gpa < FUZZ_GPA + FUZZ_NPAGES * PAGE_SIZE));
}

static void run_vcpu(struct fuzz_vm *f, u64 call)
{
	struct ucall uc;

	vcpu_run(f->vcpu);
	TEST_ASSERT(get_ucall(f->vcpu, &uc) == UCALL_SYNC,
		    "%s call %lu: the guest stopped with exit reason %s, ucall %lu",
		    f->name, call, exit_reason_str(f->vcpu->run->exit_reason),
		    uc.cmd);
	runs++;
}

static void *fuzz_hva(struct fuzz_vm *f)
{
	return addr_gpa2hva(f->vm, FUZZ_GPA);
}

/* After a successful registration and an entry: the structure is there. */
static void check_published(struct fuzz_vm *f, u64 call)
{
	const struct vmclock_abi *clk;

	if (!f->model.mode)
		return;
	clk = addr_gpa2hva(f->vm, f->model.gpa);
	TEST_ASSERT(le32toh(clk->magic) == VMCLOCK_MAGIC &&
		    le32toh(clk->size) == f->model.size &&
		    le16toh(clk->version) == 1 &&
		    clk->counter_id == VMCLOCK_COUNTER_X86_TSC &&
		    !(le32toh(clk->seq_count) & 1),
		    "%s call %lu: after registering gpa %#llx size %u and an entry, guest memory holds magic %#x size %u version %u counter_id %u seq_count %u",
		    f->name, call, f->model.gpa, f->model.size,
		    le32toh(clk->magic), le32toh(clk->size),
		    le16toh(clk->version), clk->counter_id,
		    le32toh(clk->seq_count));
	memory_checks++;
}

struct snapshot {
	struct kvm_vmclock cfg;
	u8 mem[FUZZ_NPAGES * PAGE_SIZE];
	u64 updates;
	bool mem_valid;
};

static void take_snapshot(struct fuzz_vm *f, struct snapshot *s)
{
	get_config(f, &s->cfg);
	s->mem_valid = run_allowed(f) && f->model.mode != KVM_VMCLOCK_MODE_AUTO;
	if (s->mem_valid) {
		memcpy(s->mem, fuzz_hva(f), sizeof(s->mem));
		s->updates = vm_get_stat(f->vm, vmclock_updates);
	}
}

/* A failed call: the configuration, and after an entry, guest memory. */
static void check_unchanged(struct fuzz_vm *f, const struct snapshot *s,
			    int call_kind, int err, u64 call)
{
	struct kvm_vmclock now;
	u64 updates;

	get_config(f, &now);
	TEST_ASSERT(!memcmp(&now, &s->cfg, sizeof(now)),
		    "%s call %lu: %s failed (%s), yet KVM_GET_VMCLOCK changed from gpa %#llx size %u mode %u flags %#x to gpa %#llx size %u mode %u flags %#x",
		    f->name, call, call_name[call_kind], strerror(err),
		    s->cfg.gpa, s->cfg.size, s->cfg.mode, s->cfg.flags,
		    now.gpa, now.size, now.mode, now.flags);
	if (!s->mem_valid) {
		auto_failures += f->model.mode == KVM_VMCLOCK_MODE_AUTO;
		return;
	}
	run_vcpu(f, call);
	updates = vm_get_stat(f->vm, vmclock_updates);
	TEST_ASSERT(updates == s->updates,
		    "%s call %lu: %s failed (%s), yet KVM published %lu update(s) at the next entry",
		    f->name, call, call_name[call_kind], strerror(err),
		    updates - s->updates);
	TEST_ASSERT(!memcmp(fuzz_hva(f), s->mem, sizeof(s->mem)),
		    "%s call %lu: %s failed (%s), yet guest memory in the vmclock's memslot changed at the next entry",
		    f->name, call, call_name[call_kind], strerror(err));
	memory_checks++;
}

/*
 * Compare a call's result with the model's (0 or a negative errno, or
 * MAYBE_EINVAL); return the errno (positive) or 0.
 */
static int check_result(struct fuzz_vm *f, int call_kind, int r, int want,
			u64 call, const char *what)
{
	int got = r ? errno : 0;

	TEST_ASSERT(r == 0 || r == -1, "%s call %lu: %s returned %d",
		    f->name, call, call_name[call_kind], r);
	if (want == MAYBE_EINVAL) {
		int other = -host_mode_result(f);

		ambiguous++;
		TEST_ASSERT(got == EINVAL || got == other,
			    "%s call %lu: %s (%s) returned %s, want EINVAL or %s",
			    f->name, call, call_name[call_kind], what,
			    got ? strerror(got) : "success",
			    other ? strerror(other) : "success");
	} else {
		TEST_ASSERT(got == -want,
			    "%s call %lu: %s (%s) returned %s, the documentation says %s",
			    f->name, call, call_name[call_kind], what,
			    got ? strerror(got) : "success",
			    want ? strerror(-want) : "success");
	}
	counts[call_kind][errno_index(got)]++;
	return got;
}

static void fuzz_set(struct fuzz_vm *f, u64 call)
{
	struct kvm_vmclock cfg, arg;
	struct snapshot s;
	char what[160];
	int want, got;

	random_config(f, &cfg);
	want = expected_set_error(f, &cfg);
	snprintf(what, sizeof(what),
		 "gpa %#llx size %u mode %u flags %#x notify_fd %d pad %#x reserved %#llx/%#llx/%#llx/%#llx",
		 cfg.gpa, cfg.size, cfg.mode, cfg.flags, cfg.notify_fd, cfg.pad,
		 cfg.reserved[0], cfg.reserved[1], cfg.reserved[2],
		 cfg.reserved[3]);
	take_snapshot(f, &s);
	arg = cfg;
	got = check_result(f, CALL_SET, __vm_ioctl(f->vm, KVM_SET_VMCLOCK, &arg),
			   want, call, what);
	if (got) {
		check_unchanged(f, &s, CALL_SET, got, call);
		return;
	}
	if (cfg.gpa == KVM_VMCLOCK_GPA_DISABLED) {
		memset(&f->model, 0, sizeof(f->model));
		f->model.gpa = KVM_VMCLOCK_GPA_DISABLED;
	} else {
		f->model.gpa = cfg.gpa;
		f->model.size = cfg.size;
		f->model.mode = cfg.mode;
		f->model.flags = cfg.flags & ~KVM_VMCLOCK_F_NOTIFY;
	}
	if (run_allowed(f)) {
		run_vcpu(f, call);
		check_published(f, call);
	}
}

static void fuzz_host(struct fuzz_vm *f, const struct vmclock_abi *line,
		      u64 call)
{
	struct kvm_vmclock_host h, arg;
	struct snapshot s;
	char what[200];
	u64 t0, t1;
	int r, got;

	random_host(&h, line);
	snprintf(what, sizeof(what),
		 "counter %#llx period %#llx >> %u time %#llx.%016llx flags %#llx status %u type %u leap %u smear %u pad %u",
		 h.counter_value, h.period_frac_sec, h.period_shift, h.time_sec,
		 h.time_frac_sec, h.flags, h.clock_status, h.time_type,
		 h.leap_indicator, h.leap_second_smearing_hint, h.pad);
	take_snapshot(f, &s);
	arg = h;
	t0 = rdtsc();
	r = __vm_ioctl(f->vm, KVM_SET_VMCLOCK_HOST, &arg);
	t1 = rdtsc();
	got = check_result(f, CALL_HOST, r, expected_host_error(f, &h, t0, t1),
			   call, what);
	if (got)
		check_unchanged(f, &s, CALL_HOST, got, call);
	else if (run_allowed(f))
		run_vcpu(f, call);
}

static void fuzz_disruption(struct fuzz_vm *f, u64 call)
{
	struct kvm_vmclock_disruption d, arg;
	struct snapshot s;
	char what[120];
	int got;

	random_disruption(&d);
	snprintf(what, sizeof(what),
		 "flags %#x notice %#x reserved %#llx/%#llx/%#llx", d.flags,
		 d.notice, d.reserved[0], d.reserved[1], d.reserved[2]);
	take_snapshot(f, &s);
	arg = d;
	got = check_result(f, CALL_DISRUPTION,
			   __vm_ioctl(f->vm, KVM_VMCLOCK_DISRUPTION, &arg),
			   expected_disruption_error(f, &d), call, what);
	if (got)
		check_unchanged(f, &s, CALL_DISRUPTION, got, call);
	else if (run_allowed(f))
		run_vcpu(f, call);
}

/*
 * Argument pointers KVM cannot use: NULL, a low address, an inaccessible
 * page, a structure whose end runs into one, and, for the GET
 * ioctl, a read-only page.  All EFAULT, and nothing changes.
 */
static u8 *bad_area;		/* Page 0 readable, page 1 inaccessible */
static u8 *ro_page;		/* Read-only */

static void fuzz_bad_pointer(struct fuzz_vm *f, u64 call)
{
	static const unsigned long cmds[] = {
		KVM_SET_VMCLOCK, KVM_GET_VMCLOCK, KVM_SET_VMCLOCK_HOST,
		KVM_VMCLOCK_DISRUPTION,
	};
	int kind = below(ARRAY_SIZE(cmds));
	unsigned long cmd = cmds[kind];
	struct snapshot s;
	void *p;
	int got;

	switch (below(5)) {
	case 0:
		p = NULL;
		break;
	case 1:
		p = (void *)8;
		break;
	case 2:
		p = bad_area + PAGE_SIZE;
		break;
	case 3:		/* The last 8 bytes readable, the rest not. */
		p = bad_area + PAGE_SIZE - 8;
		break;
	default:
		p = kind == CALL_GET ? (void *)ro_page : bad_area + PAGE_SIZE;
		break;
	}
	take_snapshot(f, &s);
	got = check_result(f, kind, ioctl(f->vm->fd, cmd, p), -EFAULT, call,
			   "an argument pointer KVM cannot use");
	check_unchanged(f, &s, kind, got, call);
}

/* A file descriptor slot changes under a possibly registered eventfd. */
static void fuzz_fds(void)
{
	reopen_fd(below(NR_FDS));
}

/* Private memory comes and goes under registrations. */
static void fuzz_private(struct fuzz_vm *f)
{
	if (!f->has_private)
		return;
	if (f->private_now)
		vm_mem_set_shared(f->vm, PRIVATE_GPA, PAGE_SIZE);
	else
		vm_mem_set_private(f->vm, PRIVATE_GPA, PAGE_SIZE);
	f->private_now = !f->private_now;
}

static void fuzz_one(struct fuzz_vm *f, const struct vmclock_abi *line,
		     u64 call)
{
	u64 op = below(100);

	if (op < 33)
		fuzz_set(f, call);
	else if (op < 63)
		fuzz_host(f, line, call);
	else if (op < 90)
		fuzz_disruption(f, call);
	else if (op < 96)
		fuzz_bad_pointer(f, call);
	else if (op < 99)
		fuzz_fds();
	else
		fuzz_private(f);
	check_get(f, call);
}

static void guest_code(void)
{
	for (;;)
		GUEST_SYNC(0);
}

static void init_model(struct fuzz_vm *f)
{
	struct kvm_vmclock cfg;

	memset(&f->model, 0, sizeof(f->model));
	f->model.gpa = KVM_VMCLOCK_GPA_DISABLED;
	get_config(f, &cfg);
	f->guest_tsc_khz = cfg.guest_tsc_khz;
	TEST_ASSERT(!f->vcpu || f->guest_tsc_khz,
		    "%s: a vCPU at the default TSC rate, yet guest_tsc_khz 0",
		    f->name);
}

static void create_plain_vm(struct fuzz_vm *f)
{
	f->name = "plain VM";
	f->vm = vm_create_with_one_vcpu(&f->vcpu, guest_code);
	vm_userspace_mem_region_add(f->vm, VM_MEM_SRC_ANONYMOUS, FUZZ_GPA,
				    FUZZ_SLOT, FUZZ_NPAGES, 0);
	vm_userspace_mem_region_add(f->vm, VM_MEM_SRC_ANONYMOUS, RO_GPA,
				    RO_SLOT, 1, KVM_MEM_READONLY);
	init_model(f);
	/* The requests of the vCPU's creation, out of the way. */
	run_vcpu(f, 0);
}

/* A KVM_X86_SW_PROTECTED_VM, with no vCPU: its page goes private and back. */
static bool create_private_vm(struct fuzz_vm *f)
{
	if (!(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM)))
		return false;
	f->name = "SW_PROTECTED VM";
	f->vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	vm_userspace_mem_region_add(f->vm, VM_MEM_SRC_ANONYMOUS, FUZZ_GPA,
				    FUZZ_SLOT, FUZZ_NPAGES, 0);
	vm_mem_add(f->vm, VM_MEM_SRC_ANONYMOUS, PRIVATE_GPA, PRIVATE_SLOT, 1,
		   KVM_MEM_GUEST_MEMFD, -1, 0);
	f->has_private = true;
	vm_mem_set_private(f->vm, PRIVATE_GPA, PAGE_SIZE);
	f->private_now = true;
	init_model(f);
	return true;
}

static void setup_pointers_and_fds(void)
{
	int i;

	bad_area = mmap(NULL, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(bad_area != MAP_FAILED, "mmap() failed, errno %d", errno);
	/* Not unmapped: a later mmap() could fill the hole. */
	TEST_ASSERT(!mprotect(bad_area + PAGE_SIZE, PAGE_SIZE, PROT_NONE),
		    "mprotect() failed, errno %d", errno);
	ro_page = mmap(NULL, PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	TEST_ASSERT(ro_page != MAP_FAILED, "mmap() failed, errno %d", errno);

	for (i = 0; i < NR_FDS; i++) {
		fds[i] = -1;
		pipe_other_end[i] = -1;
		reopen_fd(i);
	}
}

static u64 calls_of(int call)
{
	u64 n = 0;
	int i;

	for (i = 0; i < NR_ERRNOS; i++)
		n += counts[call][i];
	return n;
}

static bool enough_calls(u64 n)
{
	int c;

	for (c = 0; c < NR_CALLS; c++)
		if (calls_of(c) < n)
			return false;
	return true;
}

/* The fuzzer saw every documented error code of every ioctl, and success. */
static void check_coverage(void)
{
	static const struct {
		int call;
		int err;
	} must[] = {
		{ CALL_SET, 0 }, { CALL_SET, EINVAL }, { CALL_SET, EFAULT },
		{ CALL_SET, EBADF }, { CALL_GET, 0 }, { CALL_GET, EFAULT },
		{ CALL_HOST, 0 }, { CALL_HOST, EINVAL }, { CALL_HOST, ENOENT },
		{ CALL_HOST, EFAULT }, { CALL_DISRUPTION, 0 },
		{ CALL_DISRUPTION, EINVAL }, { CALL_DISRUPTION, ENOENT },
		{ CALL_DISRUPTION, EFAULT },
	};
	int c, i;

	for (c = 0; c < NR_CALLS; c++) {
		printf("%-23s", call_name[c]);
		for (i = 0; i < NR_ERRNOS; i++)
			printf(" %s %lu", errnos[i] ? strerrorname_np(errnos[i]) : "ok",
			       counts[c][i]);
		printf("\n");
	}
	pr_info("%lu results that depended on when KVM read the TSC, %lu vCPU entries, %lu checks of guest memory, %lu failures in automatic mode (KVM_GET_VMCLOCK checked only)\n",
		ambiguous, runs, memory_checks, auto_failures);
	for (i = 0; i < ARRAY_SIZE(must); i++)
		TEST_ASSERT(counts[must[i].call][errno_index(must[i].err)],
			    "The fuzzer never saw %s return %s: the inputs miss a documented error code",
			    call_name[must[i].call],
			    must[i].err ? strerror(must[i].err) : "success");
}

int main(int argc, char *argv[])
{
	struct vmclock_sample a, b;
	struct vmclock_abi line;
	struct fuzz_vm vms[2] = {};
	u64 seed = DEFAULT_SEED, calls = DEFAULT_CALLS, rounds;
	int nr_vms = 1, opt, i;

	while ((opt = getopt(argc, argv, "s:n:")) != -1) {
		switch (opt) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			calls = strtoull(optarg, NULL, 0);
			break;
		default:
			exit(KSFT_FAIL);
		}
	}

	TEST_REQUIRE((kvm_check_cap(KVM_CAP_VMCLOCK) &
		      (KVM_VMCLOCK_CAP_USERSPACE | KVM_VMCLOCK_CAP_AUTO |
		       KVM_VMCLOCK_CAP_NOTIFY)) ==
		     (KVM_VMCLOCK_CAP_USERSPACE | KVM_VMCLOCK_CAP_AUTO |
		      KVM_VMCLOCK_CAP_NOTIFY));

	printf("seed %#lx, at least %lu inputs per ioctl (replay: -s %#lx -n %lu)\n",
	       seed, calls, seed, calls);
	rng_state = seed;

	/* The host's TSC -> TAI line: a plausible clock to break. */
	vmclock_host_sample(&a);
	usleep(100000);
	vmclock_host_sample(&b);
	vmclock_fill_tai_line(&line, &a, &b);

	setup_pointers_and_fds();
	create_plain_vm(&vms[0]);
	if (create_private_vm(&vms[1]))
		nr_vms = 2;
	else
		printf("no KVM_X86_SW_PROTECTED_VM: private memory not fuzzed\n");

	/* Three calls in four on the VM that runs. */
	for (rounds = 1; !enough_calls(calls); rounds++)
		fuzz_one(&vms[nr_vms == 2 && one_in(4) ? 1 : 0], &line, rounds);

	check_coverage();
	for (i = 0; i < nr_vms; i++)
		kvm_vm_free(vms[i].vm);
	printf("%lu rounds, every result as documented (seed %#lx)\n",
	       rounds - 1, seed);
	return 0;
}
