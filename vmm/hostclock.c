// SPDX-License-Identifier: GPL-2.0
/*
 * hostclock: set what an NTP daemon would set on the emulated test host, so
 * that KVM's automatic vmclock mode has a TAI clock to publish (issue 10).
 *
 *   hostclock [-t TAI_OFFSET] [-s] [-u] [-f PPM]
 *     -t N   adjtimex(ADJ_TAI, N): the TAI - UTC offset (37 in 2026); without
 *            it a TAI vmclock reads UNRELIABLE (and ptp_vmclock refuses it)
 *     -s     clear STA_UNSYNC and set small error bounds: SYNCHRONIZED
 *     -u     set STA_UNSYNC: FREERUNNING
 *     -f P   set the frequency offset to P ppm (ADJ_FREQUENCY), e.g. to show
 *            that the vmclock follows the host rate and kvmclock does not
 * Prints the resulting state and CLOCK_TAI (to put host events on the
 * guest's PTP time line).  Busybox's adjtimex cannot set ADJ_TAI.
 * Static build: gcc -O2 -static -o hostclock hostclock.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <sys/timex.h>

int main(int argc, char **argv)
{
	struct timespec tai;
	struct timex tx;
	int opt, ret;

	while ((opt = getopt(argc, argv, "t:suf:")) != -1) {
		memset(&tx, 0, sizeof(tx));
		switch (opt) {
		case 't':
			tx.modes = ADJ_TAI;
			tx.constant = atol(optarg);
			break;
		case 's':
		case 'u':
			adjtimex(&tx);		/* modes 0: read the status bits */
			tx.modes = ADJ_STATUS;
			if (opt == 'u') {
				tx.status |= STA_UNSYNC;
				break;
			}
			tx.modes |= ADJ_MAXERROR | ADJ_ESTERROR;
			tx.status &= ~STA_UNSYNC;
			tx.maxerror = 1000;	/* us */
			tx.esterror = 100;	/* us */
			break;
		case 'f':
			tx.modes = ADJ_FREQUENCY;
			tx.freq = (long)(atof(optarg) * 65536.0);	/* ppm << 16 */
			break;
		default:
			fprintf(stderr, "usage: %s [-t TAI_OFFSET] [-s] [-u] [-f PPM]\n", argv[0]);
			return 2;
		}
		if (adjtimex(&tx) < 0) {
			perror("adjtimex");
			return 1;
		}
	}
	memset(&tx, 0, sizeof(tx));
	ret = adjtimex(&tx);
	clock_gettime(CLOCK_TAI, &tai);
	printf("hostclock: state %d status %#x%s tai %d freq %+.3f ppm maxerror %ld us esterror %ld us; CLOCK_TAI %lld.%09ld\n",
	       ret, tx.status, tx.status & STA_UNSYNC ? " (UNSYNC)" : " (synchronized)",
	       tx.tai, tx.freq / 65536.0, tx.maxerror, tx.esterror, (long long)tai.tv_sec, tai.tv_nsec);
	return 0;
}
