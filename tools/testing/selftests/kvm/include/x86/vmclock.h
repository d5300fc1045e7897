/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers for testing the vmclock ABI (include/uapi/linux/vmclock-abi.h)
 * on x86, where the counter is the TSC.
 *
 * The guest-side reader follows drivers/ptp/ptp_vmclock.c, so that a test
 * exercises the same arithmetic a real guest uses. The host-side helpers
 * build a vmclock_abi from the host's own TSC and CLOCK_TAI, giving tests
 * a reference they can check the guest's result against.
 */
#ifndef SELFTEST_KVM_VMCLOCK_H
#define SELFTEST_KVM_VMCLOCK_H

#include <linux/types.h>
#include <linux/vmclock-abi.h>

/*
 * Bound on the guest reader's seq_count retries. The driver gives up after
 * 100 ms; a guest has no timebase of its own to measure that with, so use
 * a retry count that is far longer than a real update can take, but short
 * enough that a stuck odd seq_count fails a test quickly instead of hanging.
 */
#define VMCLOCK_READ_MAX_TRIES	100000

enum vmclock_read_status {
	VMCLOCK_READ_OK = 0,
	VMCLOCK_READ_UNRELIABLE,	/* clock_status is UNRELIABLE */
	VMCLOCK_READ_NO_TAI,		/* time_type gives no unambiguous TAI */
	VMCLOCK_READ_TIMED_OUT,		/* seq_count never settled */
};

/* A CLOCK_TAI time computed from the vmclock, and the TSC it is for. */
struct vmclock_time {
	u64 tsc;
	u64 sec;
	u64 nsec;
};

/* One host (TSC, CLOCK_TAI) pair; see vmclock_host_sample(). */
struct vmclock_sample {
	u64 tsc;
	u64 tai_ns;	/* Midpoint of the CLOCK_TAI reads around the RDTSC */
	u64 width_ns;	/* Distance between those reads: the sample's error */
};

/* Guest side. @t is only written when VMCLOCK_READ_OK is returned. */
void vmclock_time_at(const struct vmclock_abi *clk, u64 tsc, u64 *sec,
		     u64 *nsec);
enum vmclock_read_status vmclock_read_tai(struct vmclock_abi *clk,
					  struct vmclock_time *t);
const char *vmclock_read_status_name(enum vmclock_read_status status);

/* Host side. */
u64 vmclock_host_tai_ns(void);
void vmclock_host_sample(struct vmclock_sample *s);
void vmclock_fill_tai_line(struct vmclock_abi *clk,
			   const struct vmclock_sample *a,
			   const struct vmclock_sample *b);

/*
 * The vmclock_abi flags a VMM may pass in struct kvm_vmclock_host; the others
 * are either the VMM's own (DISRUPTION_SOON, DISRUPTION_IMMINENT,
 * VM_GEN_COUNTER_PRESENT: KVM_VMCLOCK_DISRUPTION) or KVM's
 * (NOTIFICATION_PRESENT: KVM_VMCLOCK_F_NOTIFY).
 */
#define VMCLOCK_KVM_HOST_FLAGS	(VMCLOCK_FLAG_TAI_OFFSET_VALID |	\
				 VMCLOCK_FLAG_PERIOD_ESTERROR_VALID |	\
				 VMCLOCK_FLAG_PERIOD_MAXERROR_VALID |	\
				 VMCLOCK_FLAG_TIME_ESTERROR_VALID |	\
				 VMCLOCK_FLAG_TIME_MAXERROR_VALID |	\
				 VMCLOCK_FLAG_TIME_MONOTONIC)

struct kvm_vm;
struct kvm_vmclock_host;

/*
 * KVM_SET_VMCLOCK_HOST from a host-domain vmclock such as
 * vmclock_fill_tai_line() builds: the clock fields are copied, the header,
 * seq_count, disruption_marker, vm_generation_counter and the flags outside
 * VMCLOCK_KVM_HOST_FLAGS are not (KVM does not take them from the VMM).
 */
void vmclock_host_from_abi(struct kvm_vmclock_host *host,
			   const struct vmclock_abi *clk);
int __vmclock_set_host(struct kvm_vm *vm, const struct vmclock_abi *clk);
void vmclock_set_host(struct kvm_vm *vm, const struct vmclock_abi *clk);

/*
 * What a VMM that writes the page itself (QEMU 10's vmclock device, on
 * incoming migration) does to signal a disruption: plain stores while the
 * vCPUs are paused, bracketed by an odd seq_count.
 */
void vmclock_vmm_mark_disruption(struct vmclock_abi *clk);

#endif /* SELFTEST_KVM_VMCLOCK_H */
