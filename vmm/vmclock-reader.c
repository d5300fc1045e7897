// SPDX-License-Identifier: GPL-2.0
/*
 * vmclock-reader: a guest program that checks what the guest's stock
 * ptp_vmclock driver says against the vmclock page itself (issue 10).
 *
 *   vmclock-reader [-n SAMPLES] [-i INTERVAL_MS] [-p /dev/ptpN] [-d /dev/vmclockN]
 *
 * It prints the page's fields, then whether poll() on /dev/vmclockN returns
 * POLLHUP at once (it must without VMCLOCK_FLAG_NOTIFICATION_PRESENT), then
 * SAMPLES lines (default 1), INTERVAL_MS apart (default 1000), each with:
 *   - the driver's time: PTP_SYS_OFFSET_EXTENDED on /dev/ptpN (the TAI time
 *     of the page at a TSC read inside the ioctl), bracketed by rdtsc;
 *   - the page's time at both rdtsc readings, computed here from the
 *     mmapped /dev/vmclockN as the driver does (time in 2^-64 s units:
 *     time_sec + time_frac_sec + ((tsc - counter_value) *
 *     counter_period_frac_sec >> counter_period_shift), under seq_count);
 *   - where the driver's time falls in that bracket (it must be inside),
 *     the bracket's width, the guest's CLOCK_REALTIME (kvmclock) minus the
 *     driver's TAI, and the marker, status and seq_count.
 * A new disruption_marker, and time going backwards between samples, are
 * flagged on the line.  Exit status 1 if a sample was outside its bracket
 * or time went back, 2 on a usage or open error.
 *
 * Static build (the guest initramfs has no C library):
 *   gcc -O2 -static -o vmclock-reader vmclock-reader.c
 * The vmclock ABI is defined here: Debian 12's kernel headers predate it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/ptp_clock.h>

#include "vmclock-page.h"

static const volatile struct vmclock_abi *clk;

static __int128 page_time_ns(uint64_t tsc, uint64_t *marker, uint32_t *seq_out,
			     uint8_t *status)
{
	return vmclock_page_time_ns(clk, tsc, marker, seq_out, status);
}

static void dump_page(void)
{
	uint8_t st = clk->clock_status;

	printf("vmclock: magic %#x%s size %u version %u counter_id %u (%s) time_type %u (%s)\n",
	       clk->magic, clk->magic == VMCLOCK_MAGIC ? " (VCLK)" : " (BAD)",
	       clk->size, clk->version, clk->counter_id,
	       clk->counter_id == 1 ? "X86_TSC" : clk->counter_id == 0xff ? "INVALID" : "?",
	       clk->time_type,
	       clk->time_type == 1 ? "TAI" : clk->time_type == 0 ? "UTC" : "?");
	printf("vmclock: seq_count %u disruption_marker %llu flags %#llx clock_status %u (%s) tai_offset_sec %d leap %u\n",
	       clk->seq_count, (unsigned long long)clk->disruption_marker,
	       (unsigned long long)clk->flags, st, st < 5 ? status_name[st] : "?",
	       clk->tai_offset_sec, clk->leap_indicator);
	printf("vmclock: counter_value %llu period_frac_sec %#llx shift %u (%.6f MHz) time %llu + %#llx/2^64 s\n",
	       (unsigned long long)clk->counter_value,
	       (unsigned long long)clk->counter_period_frac_sec, clk->counter_period_shift,
	       clk->counter_period_frac_sec ?
		       1e-6 / ((double)clk->counter_period_frac_sec / 18446744073709551616.0 /
			       (double)(1ULL << clk->counter_period_shift)) : 0.0,
	       (unsigned long long)clk->time_sec, (unsigned long long)clk->time_frac_sec);
	printf("vmclock: esterror %llu ns maxerror %llu ns vm_generation_counter %llu\n",
	       (unsigned long long)clk->time_esterror_nanosec,
	       (unsigned long long)clk->time_maxerror_nanosec,
	       (unsigned long long)clk->vm_generation_counter);
}

int main(int argc, char **argv)
{
	const char *ptp_path = "/dev/ptp0", *vmc_path = "/dev/vmclock0";
	long samples = 1, interval_ms = 1000;
	int opt, bad = 0, vfd, pfd;
	uint64_t last_marker = 0;
	__int128 last_ns = 0;

	while ((opt = getopt(argc, argv, "n:i:p:d:")) != -1) {
		switch (opt) {
		case 'n': samples = atol(optarg); break;
		case 'i': interval_ms = atol(optarg); break;
		case 'p': ptp_path = optarg; break;
		case 'd': vmc_path = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-n SAMPLES] [-i INTERVAL_MS] [-p /dev/ptpN] [-d /dev/vmclockN]\n",
				argv[0]);
			return 2;
		}
	}

	vfd = open(vmc_path, O_RDONLY);
	if (vfd < 0) {
		fprintf(stderr, "open %s: %s\n", vmc_path, strerror(errno));
		return 2;
	}
	clk = mmap(NULL, 4096, PROT_READ, MAP_SHARED, vfd, 0);
	if (clk == MAP_FAILED) {
		fprintf(stderr, "mmap %s: %s\n", vmc_path, strerror(errno));
		return 2;
	}
	dump_page();
	last_marker = clk->disruption_marker;

	/* Without NOTIFICATION_PRESENT the driver answers POLLHUP at once. */
	{
		struct pollfd p = { .fd = vfd, .events = POLLIN };
		int n = poll(&p, 1, 100);

		printf("poll %s: returned %d revents %#x%s%s (NOTIFICATION_PRESENT %s)\n",
		       vmc_path, n, n > 0 ? p.revents : 0,
		       n > 0 && (p.revents & POLLHUP) ? " POLLHUP" : "",
		       n > 0 && (p.revents & POLLIN) ? " POLLIN" : "",
		       clk->flags & VMCLOCK_FLAG_NOTIFICATION_PRESENT ? "set" : "clear");
	}

	if (samples <= 0)
		return 0;
	pfd = open(ptp_path, O_RDONLY);
	if (pfd < 0) {
		fprintf(stderr, "open %s: %s\n", ptp_path, strerror(errno));
		return 2;
	}

	for (long i = 0; i < samples; i++) {
		struct ptp_sys_offset_extended ext = { .n_samples = 1 };
		uint64_t tsc_a, tsc_b, ma, mb;
		uint32_t seqa, seqb;
		uint8_t sta, stb;
		__int128 pa, pb, ptp, rt;
		int ret;

		if (i)
			usleep(interval_ms * 1000);
		tsc_a = rdtsc_ordered();
		ret = ioctl(pfd, PTP_SYS_OFFSET_EXTENDED, &ext);
		tsc_b = rdtsc_ordered();
		pa = page_time_ns(tsc_a, &ma, &seqa, &sta);
		pb = page_time_ns(tsc_b, &mb, &seqb, &stb);

		printf("sample %ld: ", i);
		if (mb != last_marker)
			printf("NEW disruption_marker %llu (was %llu); ",
			       (unsigned long long)mb, (unsigned long long)last_marker);
		last_marker = mb;
		if (ret) {
			int err = errno;
			struct timespec now;

			/* The guest's own clock, to place the failure in time. */
			clock_gettime(CLOCK_REALTIME, &now);
			printf("PTP_SYS_OFFSET_EXTENDED failed: %s; page status %u (%s) seq %u; realtime %lld.%09ld\n",
			       strerror(err), stb, stb < 5 ? status_name[stb] : "?", seqb,
			       (long long)now.tv_sec, now.tv_nsec);
			fflush(stdout);
			continue;
		}
		ptp = (__int128)ext.ts[0][1].sec * 1000000000 + ext.ts[0][1].nsec;
		rt = ((__int128)ext.ts[0][0].sec * 1000000000 + ext.ts[0][0].nsec +
		      (__int128)ext.ts[0][2].sec * 1000000000 + ext.ts[0][2].nsec) / 2;
		printf("ptp %lld.%09lld TAI", (long long)(ptp / 1000000000),
		       (long long)(ptp % 1000000000));
		if (pa < 0 || pb < 0) {
			printf("; page has no time (%s)\n", pa == -1 || pb == -1 ? "seq_count timeout" : "not TAI");
			bad = 1;
		} else {
			int inside = pa <= ptp && ptp <= pb;

			printf("; page [%+lld, %+lld] ns around it (bracket %lld ns)%s",
			       (long long)(pa - ptp), (long long)(pb - ptp), (long long)(pb - pa),
			       inside ? "" : " OUTSIDE");
			bad |= !inside;
		}
		if (last_ns && ptp < last_ns) {
			printf("; BACKWARDS by %lld ns", (long long)(last_ns - ptp));
			bad = 1;
		}
		last_ns = ptp;
		printf("; realtime-ptp %+lld ns; marker %llu status %s seq %u\n",
		       (long long)(rt - ptp), (unsigned long long)mb,
		       stb < 5 ? status_name[stb] : "?", seqb);
		fflush(stdout);
	}
	return bad;
}
