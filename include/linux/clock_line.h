/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The clock line: the line, in clocksource cycles, that the timekeeper
 * steers CLOCK_REALTIME to as NTP asks, with the NTP state that goes with
 * it, for those that relay the host clock to others (a hypervisor filling
 * a guest's vmclock structure, see include/uapi/linux/vmclock-abi.h).
 */
#ifndef _LINUX_CLOCK_LINE_H
#define _LINUX_CLOCK_LINE_H

#include <linux/clocksource_ids.h>
#include <linux/types.h>

/**
 * enum clock_line_leap - Leap second state, as the vmclock ABI's indicator
 * @CLOCK_LINE_LEAP_NONE:	No leap second pending or in progress
 * @CLOCK_LINE_LEAP_PRE_INS:	A leap second is inserted at the end of the day
 * @CLOCK_LINE_LEAP_PRE_DEL:	A leap second is deleted at the end of the day
 * @CLOCK_LINE_LEAP_INS:	The inserted leap second (23:59:60 UTC) is now
 * @CLOCK_LINE_LEAP_POST_INS:	A leap second was inserted, the daemon did not
 *				clear STA_INS yet
 * @CLOCK_LINE_LEAP_POST_DEL:	A leap second was deleted, the daemon did not
 *				clear STA_DEL yet
 */
enum clock_line_leap {
	CLOCK_LINE_LEAP_NONE,
	CLOCK_LINE_LEAP_PRE_INS,
	CLOCK_LINE_LEAP_PRE_DEL,
	CLOCK_LINE_LEAP_INS,
	CLOCK_LINE_LEAP_POST_INS,
	CLOCK_LINE_LEAP_POST_DEL,
};

/**
 * struct clock_line - The line that CLOCK_REALTIME is steered to
 * @gen:		Generation, bumped whenever anything below changes
 * @valid:		The clocksource can be read by others (it is the
 *			one in @cs_id and continuous); nothing else is
 *			meaningful when false
 * @cs_id:		The clocksource whose cycles @cycles counts
 * @cycles:		Anchor, in clocksource cycles
 * @tai_sec:		TAI at @cycles, seconds
 * @tai_frac:		TAI at @cycles, fraction of a second in 2^-64 s
 * @period_frac:	Length of a cycle, in 2^-(64 + @period_shift) s
 * @period_shift:	See @period_frac
 * @tai_offset:		TAI - UTC in seconds, as the timekeeper has it
 * @tai_offset_set:	@tai_offset was set by adjtimex(ADJ_TAI) since the
 *			NTP state was last cleared: without that, the host
 *			does not know TAI (after a leap second the offset is
 *			+-1 without anybody having set it)
 * @synced:		NTP says the clock is synchronized: no STA_UNSYNC and
 *			no error status (what adjtimex() reports as TIME_ERROR)
 * @leap:		Leap second state
 * @esterror_ns:	NTP's estimated error, when @synced
 * @maxerror_ns:	Bound on |CLOCK_TAI - true TAI| at @cycles, when
 *			@synced: NTP's maximum error (including the next
 *			second's growth), any error from the last suspend and
 *			@line_error_ns.  Increases are published at once;
 *			decreases, and changes of @esterror_ns, with the next
 *			rate change or 64 s later (a daemon sets them right
 *			after a rate change)
 * @maxerror_ppb:	Growth of @maxerror_ns per second after @cycles:
 *			MAXFREQ, as NTP grows its maximum error, plus
 *			@line_error_ppb
 * @line_error_ns:	With @line_error_ppb, a bound on |line -
 *			CLOCK_REALTIME| until @gen changes (also when not
 *			@synced): at @cycles, the NTP error that the
 *			timekeeper still has to work off, and the divergence
 *			from the NTP line that is folded in instead of
 *			publishing a new line
 * @line_error_ppb:	Growth of that bound per second after @cycles: the
 *			rate at which the NTP line may move away from the
 *			line before a new one is published, and one step of
 *			the timekeeper's multiplier, which may go uncorrected
 *			for seconds while the system idles (NO_HZ)
 * @tai_steps_back:	Number of times the line went back in TAI, e.g. the
 *			clock was set back or the TAI offset reduced
 * @utc_steps_back:	Same in UTC, not counting inserted leap seconds
 * @leaps_inserted:	Number of leap seconds inserted
 *
 * The line gives TAI at clocksource value c as
 * @tai_sec + (@tai_frac + (((c - @cycles) * @period_frac) >> @period_shift))
 * / 2^64, the representation of struct vmclock_abi.
 */
struct clock_line {
	u64			gen;
	bool			valid;
	enum clocksource_ids	cs_id;
	u64			cycles;
	u64			tai_sec;
	u64			tai_frac;
	u64			period_frac;
	u8			period_shift;
	s32			tai_offset;
	bool			tai_offset_set;
	bool			synced;
	enum clock_line_leap	leap;
	u64			esterror_ns;
	u64			maxerror_ns;
	u64			maxerror_ppb;
	u64			line_error_ns;
	u64			line_error_ppb;
	u64			tai_steps_back;
	u64			utc_steps_back;
	u64			leaps_inserted;
};

#ifdef CONFIG_CLOCK_LINE
int clock_line_start(void);
void clock_line_stop(void);
void clock_line_get(struct clock_line *line);
u64 clock_line_gen(void);
#endif

#endif /* _LINUX_CLOCK_LINE_H */
