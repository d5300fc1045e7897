// SPDX-License-Identifier: GPL-2.0
/*
 * The clock line, see include/linux/clock_line.h.
 *
 * The timekeeper steers CLOCK_REALTIME onto the line that NTP asks for by
 * dithering its multiplier nearly every tick: each cycle_interval cycles
 * are worth ntp_tick (nanoseconds << NTP_SCALE_SHIFT), less xtime_remainder,
 * the rounding of cycle_interval to whole cycles, and ntp_error is the
 * distance of the clock to that line.  Whoever relays the host clock to
 * somebody else (a hypervisor to its guests) wants that line, not the
 * dithered clock: the line only changes when NTP changes the rate, the
 * clock is set or the clocksource changes, and it has no secular drift from
 * CLOCK_REALTIME.
 *
 * The line is computed here, under the timekeeper lock, only while it has
 * users (clock_line_start()), and only when something changed.  It is
 * published with a generation that is bumped only when the line or the NTP
 * state that goes with it changes in a way that matters to a consumer: a
 * rate change that keeps the published line within CLOCK_LINE_STEP_NS of
 * the NTP line until the next change can be expected is folded into the
 * published error bounds instead.  That keeps a host under the kernel PLL,
 * whose tick length changes every second, from republishing every second.
 */

#include <linux/audit.h>
#include <linux/clock_line.h>
#include <linux/clocksource.h>
#include <linux/export.h>
#include <linux/math64.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/seqlock.h>
#include <linux/static_key.h>
#include <linux/timekeeper_internal.h>
#include <linux/timex.h>

#include "ntp_internal.h"
#include "clock_line_internal.h"

/*
 * Divergence from the NTP line that is folded into line_error_ns instead of
 * publishing a new line: with it, the kernel PLL republishes a few times a
 * minute instead of every second.
 */
#define CLOCK_LINE_STEP_NS		1000
/* Rounding of the anchor and the period, both rounded down. */
#define CLOCK_LINE_ROUND_NS		2
/* Growth of |ntp_error| from the mult dithering that is not republished. */
#define CLOCK_LINE_NTP_ERROR_SLACK_NS	16
/* The time until the next change is expected from the last one, within: */
#define CLOCK_LINE_HOLD_MIN_SEC		1
#define CLOCK_LINE_HOLD_MAX_SEC		64
/* How long tighter error bounds wait for a rate change to go with. */
#define CLOCK_LINE_TIGHTEN_MAX_SEC	64
/*
 * Sleep time is measured with the clocksource while suspended, or with a
 * persistent clock or RTC (1 s resolution): count it as off by MAXFREQ, and
 * by a second more for the latter, until the NTP daemon sets the maximum
 * error again.
 */
#define CLOCK_LINE_SLEEP_COARSE_NS	NSEC_PER_SEC

DEFINE_STATIC_KEY_FALSE(clock_line_key);
static DEFINE_MUTEX(clock_line_users_lock);
static unsigned int clock_line_users;

static struct {
	seqcount_t		seq;
	struct clock_line	line;
} clock_line_pub = {
	.seq = SEQCNT_ZERO(clock_line_pub.seq),
};

/* What the published line was computed from; under the timekeeper lock. */
struct clock_line_writer {
	bool			computed;
	u64			ntp_seq;
	u8			cs_seq;
	s32			tai_offset;
	u64			ntp_tick;
	u64			check_raw_sec;
	u64			tighten_raw_sec;
	u64			published_raw_sec;
	u64			hold_sec;
	u64			drift_ppb;
	s64			ntp_error_limit;
	s64			maxerror_base_us;
	long			esterror_us;
	u64			sleep_error_ns;
	u64			sleep_pending_ns;
	u64			sleep_maxerror_seq;
};

static struct clock_line_writer clock_line_writer;

static u64 clock_line_ns_to_frac(u64 ns)
{
	/* ns * 2^64 / NSEC_PER_SEC, for ns below a second. */
	return mul_u64_u64_div_u64(ns, 1ULL << 63, NSEC_PER_SEC) << 1;
}

/* Nanoseconds in @frac 2^-64 s, rounded down; U64_MAX from a second on. */
static u64 clock_line_frac_to_ns(u128 frac)
{
	if (frac >> 64)
		return U64_MAX;
	return mul_u64_u64_shr((u64)frac, NSEC_PER_SEC, 64);
}

/* TAI that @line gives at clocksource value @cycles, in 2^-64 s. */
static u128 clock_line_time_at(const struct clock_line *line, u64 cycles)
{
	u128 t0 = (u128)line->tai_sec << 64 | line->tai_frac;
	u128 d;

	if ((s64)(cycles - line->cycles) >= 0)
		return t0 + (((u128)(cycles - line->cycles) * line->period_frac) >>
			     line->period_shift);

	d = ((u128)(line->cycles - cycles) * line->period_frac) >> line->period_shift;
	return d > t0 ? 0 : t0 - d;
}

/*
 * The length of a cycle on the NTP line: cycle_interval cycles are worth
 * ntp_tick - (xtime_remainder << ntp_error_shift) ns << NTP_SCALE_SHIFT, in
 * units of 2^-(64 + *@shift) s with *@shift as large as the precision of
 * the division allows (at most 31, from 2^(32 + shift) fitting in a u64).
 */
static bool clock_line_period(const struct timekeeper *tk, u64 *period,
			      u8 *shift)
{
	u64 num = tk->ntp_tick - ((u64)tk->xtime_remainder << tk->ntp_error_shift);
	u64 den, p;
	int s;

	if (!tk->cycle_interval || (s64)num <= 0 ||
	    check_mul_overflow(tk->cycle_interval, (u64)NSEC_PER_SEC, &den))
		return false;

	/* num / (den << NTP_SCALE_SHIFT) seconds per cycle. */
	p = mul_u64_u64_div_u64(num, 1ULL << (64 - NTP_SCALE_SHIFT), den);
	if (!p)
		return false;
	s = min(31, 63 - fls64(p));
	if (s < 0)
		return false;

	*shift = s;
	*period = mul_u64_u64_div_u64(num, 1ULL << (64 - NTP_SCALE_SHIFT + s), den);
	return true;
}

/*
 * The anchor: the timekeeper's last update (cycle_last) and its time there
 * plus ntp_error, which puts it on the NTP line.  TAI.
 */
static void clock_line_anchor(const struct timekeeper *tk,
			      struct clock_line *line)
{
	const s64 ns32_per_sec = (s64)NSEC_PER_SEC << NTP_SCALE_SHIFT;
	/* xtime_nsec is below NSEC_PER_SEC << shift, and ntp_error small. */
	s64 ns32 = (s64)(tk->tkr_mono.xtime_nsec << tk->ntp_error_shift) +
		   tk->ntp_error;
	u64 sec = tk->xtime_sec + tk->tai_offset;

	while (ns32 < 0) {
		ns32 += ns32_per_sec;
		sec--;
	}
	while (ns32 >= ns32_per_sec) {
		ns32 -= ns32_per_sec;
		sec++;
	}

	line->cycles = tk->tkr_mono.cycle_last;
	line->tai_sec = sec;
	line->tai_frac = mul_u64_u64_div_u64(ns32, 1ULL << (64 - NTP_SCALE_SHIFT),
					     NSEC_PER_SEC);
}

static enum clock_line_leap clock_line_leap(const struct ntp_line_state *ntp)
{
	switch (ntp->state) {
	case TIME_INS:
		return CLOCK_LINE_LEAP_PRE_INS;
	case TIME_DEL:
		return CLOCK_LINE_LEAP_PRE_DEL;
	case TIME_OOP:
		return CLOCK_LINE_LEAP_INS;
	case TIME_WAIT:
		/* NTP daemons clear STA_INS/DEL some time after the leap. */
		if (ntp->status & STA_INS)
			return CLOCK_LINE_LEAP_POST_INS;
		if (ntp->status & STA_DEL)
			return CLOCK_LINE_LEAP_POST_DEL;
		return CLOCK_LINE_LEAP_NONE;
	default:
		/* Armed, but second_overflow() did not see it yet. */
		if (ntp->status & STA_INS)
			return CLOCK_LINE_LEAP_PRE_INS;
		if (ntp->status & STA_DEL)
			return CLOCK_LINE_LEAP_PRE_DEL;
		return CLOCK_LINE_LEAP_NONE;
	}
}

/*
 * NTP's maximum error less what the kernel adds by itself once a second
 * (second_overflow()), so that only changes made by the NTP daemon show.
 */
static s64 clock_line_maxerror_base(const struct timekeeper *tk,
				    const struct ntp_line_state *ntp)
{
	return ntp->maxerror_us - (s64)tk->xtime_sec * (MAXFREQ / NSEC_PER_USEC);
}

static u64 clock_line_ntp_error_ns(const struct timekeeper *tk)
{
	return (u64)abs(tk->ntp_error) >> NTP_SCALE_SHIFT;
}

/* The line and state for @tk and @ntp, but for the generation and steps. */
static void clock_line_compute(struct clock_line_writer *w,
			       const struct timekeeper *tk,
			       const struct ntp_line_state *ntp,
			       struct clock_line *line)
{
	const struct clocksource *cs = tk->tkr_mono.clock;
	u64 maxerror_us;

	memset(line, 0, sizeof(*line));
	line->cs_id = cs->id;
	line->tai_offset = tk->tai_offset;
	line->tai_offset_set = ntp->tai_set;
	line->valid = (cs->flags & CLOCK_SOURCE_IS_CONTINUOUS) &&
		      clock_line_period(tk, &line->period_frac,
					&line->period_shift);
	if (!line->valid)
		return;

	clock_line_anchor(tk, line);
	line->leap = clock_line_leap(ntp);
	line->synced = ntp->synced;
	line->line_error_ns = clock_line_ntp_error_ns(tk) +
			      CLOCK_LINE_NTP_ERROR_SLACK_NS +
			      CLOCK_LINE_STEP_NS + CLOCK_LINE_ROUND_NS;
	line->maxerror_ppb = MAXFREQ;
	if (!line->synced)
		return;

	/* The next second's growth too: the bound must never be too small. */
	maxerror_us = max(ntp->maxerror_us, 0L) + MAXFREQ / NSEC_PER_USEC;
	line->maxerror_ns = maxerror_us * NSEC_PER_USEC + w->sleep_error_ns +
			    line->line_error_ns;
	line->esterror_ns = max(ntp->esterror_us, 0L) * NSEC_PER_USEC +
			    clock_line_ntp_error_ns(tk);
}

/* How the state of a new line differs from that of the published one. */
enum clock_line_change {
	CLOCK_LINE_SAME,	/* Nothing that matters */
	CLOCK_LINE_TIGHTER,	/* Tighter error bounds, new error estimates */
	CLOCK_LINE_CHANGED,	/* Anything else */
};

/*
 * How @new's state differs from what @line shows.  Any increase of the
 * maximum error beyond the kernel's own growth counts at once, as a bound
 * must not be too small.  A decrease, or a change of the estimated error,
 * only makes what is published less tight or less current than it could
 * be: it can wait for the next line (see clock_line_tighten_now()).  Error
 * estimates move all the time: only changes by more than an eighth count,
 * below the precision of NTP's estimates, and the same for decreases of the
 * maximum error.
 */
static enum clock_line_change
clock_line_state_changed(const struct clock_line_writer *w,
			 const struct clock_line *line,
			 const struct clock_line *new,
			 const struct timekeeper *tk,
			 const struct ntp_line_state *ntp)
{
	s64 base;

	if (new->valid != line->valid || new->cs_id != line->cs_id ||
	    new->tai_offset != line->tai_offset ||
	    new->tai_offset_set != line->tai_offset_set)
		return CLOCK_LINE_CHANGED;
	if (!new->valid)
		return CLOCK_LINE_SAME;
	if (new->synced != line->synced || new->leap != line->leap)
		return CLOCK_LINE_CHANGED;
	if (!new->synced)
		return CLOCK_LINE_SAME;

	base = clock_line_maxerror_base(tk, ntp);
	if (base > w->maxerror_base_us ||
	    new->maxerror_ns > line->maxerror_ns + (u64)(MAXFREQ / NSEC_PER_USEC) *
	    NSEC_PER_USEC * (tk->xtime_sec - line->tai_sec + line->tai_offset + 1))
		return CLOCK_LINE_CHANGED;
	if (w->maxerror_base_us - base > max(ntp->maxerror_us, 0L) / 8 ||
	    abs(ntp->esterror_us - w->esterror_us) > w->esterror_us / 8)
		return CLOCK_LINE_TIGHTER;
	return CLOCK_LINE_SAME;
}

/*
 * Whether tighter error bounds (or new estimates) are to be published now.
 * An NTP daemon sets its error bounds right after it changed the rate
 * (chrony: ADJ_FREQUENCY, then ADJ_STATUS | ADJ_MAXERROR | ADJ_ESTERROR):
 * publishing them on their own would double the updates of every consumer
 * for nothing but tighter bounds.  So they wait for the next rate change,
 * published or not, but no longer than CLOCK_LINE_TIGHTEN_MAX_SEC.
 */
static bool clock_line_tighten_now(struct clock_line_writer *w,
				   const struct timekeeper *tk)
{
	if (w->ntp_tick != tk->ntp_tick)
		return true;
	if (w->tighten_raw_sec == U64_MAX)
		w->tighten_raw_sec = tk->raw_sec + CLOCK_LINE_TIGHTEN_MAX_SEC;
	return tk->raw_sec >= w->tighten_raw_sec;
}

/* About one second's worth of cycles on @line. */
static u64 clock_line_cycles_per_sec(const struct clock_line *line)
{
	/* 2^(64 + shift) / period, with shift <= 31. */
	return mul_u64_u64_div_u64(1ULL << 63, 2ULL << line->period_shift,
				   line->period_frac);
}

/*
 * Whether the published @line strays too far from the NTP line @new: more
 * than CLOCK_LINE_STEP_NS before the next change can be expected (as long
 * after this one as the last one came after its predecessor), faster than
 * the published line_error_ppb allows (the next check may be seconds away
 * on an idle NO_HZ system), or the timekeeper's NTP error grew beyond what
 * was published.  Otherwise decide when to look again: in a second if the
 * rates differ.
 */
static bool clock_line_diverged(struct clock_line_writer *w,
				const struct clock_line *line,
				const struct clock_line *new,
				const struct timekeeper *tk)
{
	u64 second = clock_line_cycles_per_sec(new);
	u128 pub0 = clock_line_time_at(line, new->cycles);
	u128 ntp0 = clock_line_time_at(new, new->cycles);
	u128 pub1 = clock_line_time_at(line, new->cycles + second);
	u128 ntp1 = clock_line_time_at(new, new->cycles + second);
	u64 d0, d1, rate;

	if (abs(tk->ntp_error) > w->ntp_error_limit)
		return true;

	d0 = clock_line_frac_to_ns(max(pub0, ntp0) - min(pub0, ntp0));
	d1 = clock_line_frac_to_ns(max(pub1, ntp1) - min(pub1, ntp1));
	/* How fast the distance grows, in ns per second. */
	rate = d1 > d0 ? d1 - d0 : d0 - d1;
	if (d0 > CLOCK_LINE_STEP_NS || d1 > CLOCK_LINE_STEP_NS ||
	    rate > w->drift_ppb || d0 + rate * w->hold_sec > CLOCK_LINE_STEP_NS)
		return true;

	w->check_raw_sec = rate || d0 != d1 ? tk->raw_sec + 1 : U64_MAX;
	return false;
}

/* Carry the step counters over to @new, counting a step back if it is one. */
static void clock_line_count_steps(const struct clock_line_writer *w,
				   const struct clock_line *old,
				   struct clock_line *new,
				   const struct ntp_line_state *ntp)
{
	u128 step = clock_line_ns_to_frac(CLOCK_LINE_STEP_NS);
	u128 t_old, t_new;

	new->tai_steps_back = old->tai_steps_back;
	new->utc_steps_back = old->utc_steps_back;
	new->leaps_inserted = ntp->leaps_inserted;
	if (!new->valid)
		return;

	/*
	 * Nothing to be continuous with: whatever was read before may be off.
	 * Lines in the cycles of another clocksource cannot be compared.
	 */
	if (!w->computed || !old->valid || old->cs_id != new->cs_id) {
		new->tai_steps_back++;
		new->utc_steps_back++;
		return;
	}

	t_old = clock_line_time_at(old, new->cycles);
	t_new = clock_line_time_at(new, new->cycles);
	if (t_new + step < t_old)
		new->tai_steps_back++;

	/* UTC = TAI - tai_offset; an inserted leap second goes back on purpose. */
	t_old -= (u128)(s64)old->tai_offset << 64;
	t_new -= (u128)(s64)new->tai_offset << 64;
	if (t_new + step < t_old && new->leaps_inserted == old->leaps_inserted)
		new->utc_steps_back++;
}

/* Whether the cheap checks say that the line may have to change. */
static bool clock_line_due(const struct clock_line_writer *w,
			   const struct timekeeper *tk, u64 ntp_seq,
			   bool was_set)
{
	return !w->computed || was_set || w->ntp_seq != ntp_seq ||
	       w->cs_seq != tk->cs_was_changed_seq ||
	       w->tai_offset != tk->tai_offset || w->ntp_tick != tk->ntp_tick ||
	       tk->raw_sec >= w->check_raw_sec ||
	       tk->raw_sec >= w->tighten_raw_sec ||
	       abs(tk->ntp_error) > w->ntp_error_limit;
}

/*
 * Bring @line up to date with @tk and @ntp.  Returns true if @line changed
 * (and its generation with it), false if it still holds.
 */
static bool clock_line_advance(struct clock_line_writer *w,
			       struct clock_line *line,
			       const struct timekeeper *tk,
			       const struct ntp_line_state *ntp, bool was_set)
{
	enum clock_line_change change = CLOCK_LINE_CHANGED;
	bool resynced = false;
	struct clock_line new;
	bool keep;

	if (w->sleep_pending_ns) {
		w->sleep_error_ns += w->sleep_pending_ns;
		w->sleep_pending_ns = 0;
		w->sleep_maxerror_seq = ntp->maxerror_seq;
	} else if (w->sleep_error_ns &&
		   w->sleep_maxerror_seq != ntp->maxerror_seq) {
		/*
		 * The NTP daemon has set a new maximum error: the bound no
		 * longer needs the second or so that the sleep time may be
		 * off, which is worth publishing at once.
		 */
		w->sleep_error_ns = 0;
		resynced = true;
	}

	clock_line_compute(w, tk, ntp, &new);
	w->check_raw_sec = U64_MAX;
	if (w->computed && !resynced)
		change = clock_line_state_changed(w, line, &new, tk, ntp);
	if (change != CLOCK_LINE_TIGHTER)
		w->tighten_raw_sec = U64_MAX;
	keep = w->computed && !was_set && w->cs_seq == tk->cs_was_changed_seq &&
	       (change == CLOCK_LINE_SAME ||
		(change == CLOCK_LINE_TIGHTER && !clock_line_tighten_now(w, tk))) &&
	       (!new.valid || !clock_line_diverged(w, line, &new, tk));

	w->ntp_seq = ntp->seq;
	w->cs_seq = tk->cs_was_changed_seq;
	w->tai_offset = tk->tai_offset;
	w->ntp_tick = tk->ntp_tick;
	if (keep)
		return false;

	clock_line_count_steps(w, line, &new, ntp);
	new.gen = line->gen + 1;

	w->hold_sec = clamp(tk->raw_sec - w->published_raw_sec,
			    (u64)CLOCK_LINE_HOLD_MIN_SEC,
			    (u64)CLOCK_LINE_HOLD_MAX_SEC);
	w->published_raw_sec = tk->raw_sec;
	/*
	 * A line drifting away from the NTP line by CLOCK_LINE_STEP_NS over
	 * the expected hold, plus a multiplier step (see line_error_ppb).
	 */
	w->drift_ppb = div_u64(CLOCK_LINE_STEP_NS, w->hold_sec);
	if (new.valid) {
		new.line_error_ppb = w->drift_ppb +
				     div_u64(NSEC_PER_SEC, tk->tkr_mono.mult) + 1;
		new.maxerror_ppb += new.line_error_ppb;
	}
	w->ntp_error_limit = abs(tk->ntp_error) +
			     ((s64)CLOCK_LINE_NTP_ERROR_SLACK_NS << NTP_SCALE_SHIFT);
	w->tighten_raw_sec = U64_MAX;
	w->maxerror_base_us = clock_line_maxerror_base(tk, ntp);
	w->esterror_us = ntp->esterror_us;
	w->computed = true;
	*line = new;
	return true;
}

static void clock_line_publish(const struct clock_line *line)
{
	write_seqcount_begin(&clock_line_pub.seq);
	clock_line_pub.line = *line;
	write_seqcount_end(&clock_line_pub.seq);
}

/**
 * __clock_line_update - Follow a timekeeper update
 * @tk:		The core timekeeper, as it is about to be published
 * @was_set:	The clock was set (stepped, TAI offset changed, leap second)
 *
 * Context: Timekeeper lock held, readers blocked; only while the line has
 *	    users, see clock_line_update().
 */
void __clock_line_update(const struct timekeeper *tk, bool was_set)
{
	struct clock_line_writer *w = &clock_line_writer;
	struct clock_line line = clock_line_pub.line;
	struct ntp_line_state ntp;

	if (!clock_line_due(w, tk, ntp_line_seq(tk->id), was_set))
		return;

	ntp_get_line_state(tk->id, &ntp);
	if (clock_line_advance(w, &line, tk, &ntp, was_set))
		clock_line_publish(&line);
}

/* Compute the line afresh: its users may not have seen the previous one. */
void __clock_line_restart(const struct timekeeper *tk)
{
	clock_line_writer.computed = false;
	__clock_line_update(tk, false);
}

/**
 * clock_line_slept - The system slept for @sleep_ns
 * @sleep_ns:	Sleep time that was injected into the timekeeper
 * @coarse:	It was measured with a persistent clock or an RTC, which
 *		count in whole seconds, not with a clocksource
 *
 * Context: Timekeeper lock held.
 */
void clock_line_slept(u64 sleep_ns, bool coarse)
{
	clock_line_writer.sleep_pending_ns += div_u64(sleep_ns, NSEC_PER_SEC / MAXFREQ) +
					      (coarse ? CLOCK_LINE_SLEEP_COARSE_NS : 0);
}

/**
 * clock_line_start - Start computing the clock line
 *
 * Until the matching clock_line_stop(), the line is kept up to date with
 * every timekeeper update, and published: see clock_line_get().  Before
 * that, and between the last user's clock_line_stop() and the next
 * clock_line_start(), the timekeeper pays nothing for it.
 *
 * Context: May sleep.
 * Return: 0.
 */
int clock_line_start(void)
{
	guard(mutex)(&clock_line_users_lock);
	if (!clock_line_users++) {
		static_branch_enable(&clock_line_key);
		timekeeping_clock_line_restart();
	}
	return 0;
}
EXPORT_SYMBOL_GPL(clock_line_start);

/**
 * clock_line_stop - Stop computing the clock line, see clock_line_start()
 *
 * Context: May sleep.
 */
void clock_line_stop(void)
{
	guard(mutex)(&clock_line_users_lock);
	if (!WARN_ON_ONCE(!clock_line_users) && !--clock_line_users)
		static_branch_disable(&clock_line_key);
}
EXPORT_SYMBOL_GPL(clock_line_stop);

/**
 * clock_line_get - Get the clock line
 * @line:	Where to store it
 *
 * Only meaningful between clock_line_start() and clock_line_stop().
 */
void clock_line_get(struct clock_line *line)
{
	unsigned int seq;

	do {
		seq = read_seqcount_begin(&clock_line_pub.seq);
		*line = clock_line_pub.line;
	} while (read_seqcount_retry(&clock_line_pub.seq, seq));
}
EXPORT_SYMBOL_GPL(clock_line_get);

/**
 * clock_line_gen - The generation of the clock line
 *
 * Cheap enough for every timekeeper update, e.g. in a pvclock_gtod
 * notifier, which runs after the line was updated: a consumer compares it
 * with the generation of the line it has, and calls clock_line_get() only
 * when they differ.
 */
u64 clock_line_gen(void)
{
	return READ_ONCE(clock_line_pub.line.gen);
}
EXPORT_SYMBOL_GPL(clock_line_gen);

#ifdef CONFIG_CLOCK_LINE_KUNIT_TEST
#include "clock_line_test.c"
#endif
