// SPDX-License-Identifier: GPL-2.0-only
/*
 * The master clock of an existing VM follows the host clocksource both ways.
 *
 * KVM gives a VM a master clock (KVM_GET_CLOCK reports KVM_CLOCK_TSC_STABLE,
 * kvmclock is stable for the guest) only while the host clocksource is TSC
 * based.  When the host switches away from the TSC, pvclock_gtod_notify()
 * asks every vCPU to re-evaluate the master clock, which turns it off.  The
 * switch back to the TSC must give it back to the VMs that exist: before
 * this was handled, they stayed without a master clock until a vCPU's TSC
 * happened to be written, which for a running guest may be never.
 *
 * The test switches the host clocksource from "tsc" to another one (hpet or
 * acpi_pm) and back, twice, and checks KVM_GET_CLOCK after each switch.
 * The vCPU is run after each switch, as the master clock is re-evaluated
 * when a vCPU enters the guest with a request to do so; nothing else in the
 * test (no TSC write, no KVM_SET_CLOCK) would re-evaluate it.  The host's
 * original clocksource is restored on exit, also when an assertion fails.
 *
 * Switching the clocksource also clears the host's NTP state, so the test
 * only runs when KVM_VMCLOCK_DESTRUCTIVE is set in the environment, like
 * the timers selftests' DESTRUCTIVE_TESTS.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"

#define CLOCKSOURCE_DIR	"/sys/devices/system/clocksource/clocksource0/"
#define POLL_MS		10
#define WAIT_MS		2000	/* irq_work, then a workqueue, then KVM_RUN */

static void guest_code(void)
{
	for (;;)
		GUEST_SYNC(0);
}

/* Put the host's clocksource (tsc, see main()) back, from atexit() or a signal. */
static void restore_clocksource(void)
{
	int fd = open(CLOCKSOURCE_DIR "current_clocksource", O_WRONLY);

	if (fd < 0 || write(fd, "tsc", 3) < 0)
		perror("Restoring the host clocksource");
	if (fd >= 0)
		close(fd);
}

static void restore_and_exit(int sig)
{
	restore_clocksource();
	_exit(KSFT_FAIL);
}

static bool current_clocksource_is(const char *name)
{
	char *cs = sys_get_cur_clocksource();
	bool ret = !strncmp(cs, name, strlen(name)) && cs[strlen(name)] == '\n';

	free(cs);
	return ret;
}

static void set_clocksource(const char *name)
{
	int fd = open(CLOCKSOURCE_DIR "current_clocksource", O_WRONLY);

	TEST_ASSERT(fd >= 0, "Cannot open current_clocksource, errno %d", errno);
	TEST_ASSERT(write(fd, name, strlen(name)) == (ssize_t)strlen(name),
		    "Writing '%s' to current_clocksource failed, errno %d", name, errno);
	close(fd);
	TEST_ASSERT(current_clocksource_is(name),
		    "The host did not switch its clocksource to %s", name);
}

/* A clocksource that is not TSC based, to switch the host to. */
static const char *other_clocksource(void)
{
	static const char * const names[] = { "hpet", "acpi_pm" };
	char buf[512] = "";
	unsigned int i;
	FILE *f;

	f = fopen(CLOCKSOURCE_DIR "available_clocksource", "r");
	TEST_ASSERT(f, "Cannot open available_clocksource, errno %d", errno);
	TEST_ASSERT(fgets(buf, sizeof(buf), f), "Cannot read available_clocksource");
	fclose(f);

	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (strstr(buf, names[i]))
			return names[i];
	return NULL;
}

/* Run the vCPU to its next GUEST_SYNC and return the KVM_GET_CLOCK flags. */
static u32 run_and_get_clock_flags(struct kvm_vcpu *vcpu)
{
	struct kvm_clock_data data = {};
	struct ucall uc;

	vcpu_run(vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
	switch (get_ucall(vcpu, &uc)) {
	case UCALL_SYNC:
		break;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
		break;
	default:
		TEST_FAIL("Unexpected ucall %lu", uc.cmd);
	}

	vm_ioctl(vcpu->vm, KVM_GET_CLOCK, &data);
	return data.flags;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Switch the host to @cs, then run the vCPU until KVM_GET_CLOCK reports
 * KVM_CLOCK_TSC_STABLE as @stable says, for at most WAIT_MS.  Returns the
 * last flags and in @waited_ms how long it took.
 */
static u32 switch_and_wait(struct kvm_vcpu *vcpu, const char *cs, bool stable,
			   long *waited_ms)
{
	long start;
	u32 flags;

	set_clocksource(cs);
	start = now_ms();
	do {
		usleep(POLL_MS * 1000);
		flags = run_and_get_clock_flags(vcpu);
		*waited_ms = now_ms() - start;
	} while (!!(flags & KVM_CLOCK_TSC_STABLE) != stable && *waited_ms < WAIT_MS);

	return flags;
}

static void round_trip(struct kvm_vcpu *vcpu, const char *other, int round)
{
	long ms;
	u32 flags;

	flags = switch_and_wait(vcpu, other, false, &ms);
	TEST_ASSERT(!(flags & KVM_CLOCK_TSC_STABLE),
		    "Round %d: %ld ms after the host clocksource went to %s the VM still had its master clock (KVM_GET_CLOCK flags 0x%x)",
		    round, ms, other, flags);
	ksft_test_result_pass("round %d: tsc -> %s takes the master clock away (%ld ms)\n",
			      round, other, ms);

	flags = switch_and_wait(vcpu, "tsc", true, &ms);
	TEST_ASSERT(flags & KVM_CLOCK_TSC_STABLE,
		    "Round %d: after the host clocksource went back to the TSC the VM did not get its master clock back in %ld ms (KVM_GET_CLOCK flags 0x%x)",
		    round, ms, flags);
	ksft_test_result_pass("round %d: %s -> tsc gives the master clock back (%ld ms)\n",
			      round, other, ms);
}

int main(void)
{
	const char *other;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u32 flags;

	__TEST_REQUIRE(getenv("KVM_VMCLOCK_DESTRUCTIVE"),
		       "Switches the host clocksource: set KVM_VMCLOCK_DESTRUCTIVE=1 to run it");
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_ADJUST_CLOCK) & KVM_CLOCK_TSC_STABLE);
	__TEST_REQUIRE(!access(CLOCKSOURCE_DIR "current_clocksource", W_OK),
		       "Switching the host clocksource needs root");
	__TEST_REQUIRE(current_clocksource_is("tsc"),
		       "The host clocksource must be tsc");
	other = other_clocksource();
	__TEST_REQUIRE(other, "The host has no hpet or acpi_pm clocksource to switch to");

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	flags = run_and_get_clock_flags(vcpu);
	__TEST_REQUIRE(flags & KVM_CLOCK_TSC_STABLE,
		       "The host gives no master clock even on tsc (KVM_GET_CLOCK flags 0x%x)",
		       flags);

	atexit(restore_clocksource);
	signal(SIGTERM, restore_and_exit);
	signal(SIGINT, restore_and_exit);

	ksft_print_header();
	ksft_set_plan(4);
	round_trip(vcpu, other, 1);
	round_trip(vcpu, other, 2);

	kvm_vm_free(vm);
	ksft_finished();
}
