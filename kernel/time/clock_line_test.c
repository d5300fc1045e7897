// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for the clock line, included by clock_line.c for its static
 * functions.
 *
 * The tests run a simulated timekeeper: copies of timekeeping.c's
 * accumulation and NTP adjustment, working on a struct timekeeper and a
 * clocksource of their own, with a simulated NTP tick length in place of
 * ntp_tick_length() and an HZ of their choosing in place of the one the
 * kernel is built with.  After every update of it they bring a clock line
 * of their own up to date with clock_line_due() and clock_line_advance(),
 * as __clock_line_update() does for the published one, and check that the
 * line follows the timekeeper's NTP line, xtime + ntp_error, within the
 * bound that the line publishes.
 */

#include <kunit/test.h>
#include <linux/log2.h>

/* The anchor and the period are rounded down, to 2^-64 s each. */
#define CLT_EXACT_NS		2
#define CLT_SIM_SEC		600
#define CLT_TAI_OFFSET		37
/* 2026-01-01 00:00:00 UTC */
#define CLT_EPOCH_SEC		1767225600ULL
/* Failures reported in full per test; the rest are only counted. */
#define CLT_MAX_REPORTS		5
/* The PLL profile must not republish more often than this in 600 s. */
#define CLT_PLL_MAX_REPUBLISHES	100

struct clt_param {
	u32		freq;
	unsigned int	hz;
};

/* The largest deviation relative to the bound it was checked against. */
struct clt_worst {
	u64		dev_ns;
	u64		bound_ns;
};

struct clt_sim {
	struct kunit			*test;
	struct clocksource		cs;
	struct timekeeper		tk;
	struct ntp_line_state		ntp;
	struct clock_line_writer	w;
	struct clock_line		line;
	u32				freq;
	unsigned int			hz;
	u64				rng;
	/* Clocksource value at the start, of the last update, and ticks */
	u64				start;
	u64				now;
	/* cycle_last before the update */
	u64				prev;
	u64				ticks;
	/* Simulated NTP: what ntp.c keeps in struct ntp_data */
	u64				tick_length;
	u64				tick_length_base;
	s64				time_freq;
	s64				time_offset;
	int				time_constant;
	u64				time_reftime;
	/* The tick length of the last republish, and whether it changed */
	u64				pub_tick;
	bool				tick_changed;
	/* Figures */
	unsigned int			updates;
	unsigned int			republishes;
	unsigned int			failures;
	struct clt_worst		worst_exact;
	struct clt_worst		worst_ntp;
	struct clt_worst		worst_clock;
	struct clt_worst		worst_read;
};

/* Deterministic pseudo-random numbers: a 64-bit LCG (Knuth's MMIX). */
static u32 clt_rand(struct clt_sim *s)
{
	s->rng = s->rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return s->rng >> 32;
}

/* Uniform in [@lo, @hi], @hi - @lo below 2^32. */
static u64 clt_rand_range(struct clt_sim *s, u64 lo, u64 hi)
{
	return lo + (((u64)clt_rand(s) * (hi - lo + 1)) >> 32);
}

/* ntp.c's NTP state, as far as the simulation needs it. */

/* Copy of ntp.c's ntp_update_frequency(), with the simulation's HZ. */
static void clt_ntp_update_frequency(struct clt_sim *s)
{
	u64 second_length, new_base;

	second_length = (u64)NSEC_PER_SEC << NTP_SCALE_SHIFT;
	second_length += s->time_freq;

	new_base = div_u64(second_length, s->hz);

	s->tick_length += new_base - s->tick_length_base;
	s->tick_length_base = new_base;
}

/* ntp.c's second_overflow(), without leap seconds, PPS and ADJ_ADJTIME. */
static void clt_ntp_second_overflow(struct clt_sim *s)
{
	s64 delta;

	s->ntp.maxerror_us += MAXFREQ / NSEC_PER_USEC;
	if (s->ntp.maxerror_us > NTP_PHASE_LIMIT) {
		s->ntp.maxerror_us = NTP_PHASE_LIMIT;
		if (!(s->ntp.status & STA_UNSYNC)) {
			s->ntp.status |= STA_UNSYNC;
			s->ntp.synced = false;
			s->ntp.seq++;
		}
	}

	s->tick_length = s->tick_length_base;
	delta = shift_right(s->time_offset, SHIFT_PLL + s->time_constant);
	s->time_offset -= delta;
	s->tick_length += delta;
}

/*
 * adjtimex(ADJ_OFFSET | ADJ_TIMECONST | ADJ_MAXERROR | ADJ_ESTERROR) with
 * STA_PLL | STA_NANO, as ntpd does: copy of ntp.c's ntp_update_offset()
 * in PLL mode (ntpd's poll intervals are below MINSEC).
 */
static void clt_ntp_adjtimex_pll(struct clt_sim *s, s64 offset, int constant,
				 long maxerror_us, long esterror_us)
{
	s64 freq_adj;
	long secs;

	s->time_constant = clamp(constant, 0, MAXTC);

	offset = clamp(offset, -MAXPHASE, MAXPHASE);
	secs = (long)(s->tk.xtime_sec - s->time_reftime);
	s->time_reftime = s->tk.xtime_sec;
	if (secs > 1 << (SHIFT_PLL + 1 + s->time_constant))
		secs = 1 << (SHIFT_PLL + 1 + s->time_constant);

	freq_adj = (offset * secs) <<
		   (NTP_SCALE_SHIFT - 2 * (SHIFT_PLL + 2 + s->time_constant));
	freq_adj = min(freq_adj + s->time_freq, MAXFREQ_SCALED);
	s->time_freq = max(freq_adj, -MAXFREQ_SCALED);
	s->time_offset = div_s64(offset << NTP_SCALE_SHIFT, s->hz);
	clt_ntp_update_frequency(s);

	s->ntp.maxerror_us = maxerror_us;
	s->ntp.esterror_us = esterror_us;
	s->ntp.maxerror_seq++;
	s->ntp.seq++;
}

/* adjtimex(ADJ_FREQUENCY), @freq in ppm << 16; the caller advances. */
static void clt_ntp_adjtimex_freq(struct clt_sim *s, long freq)
{
	s->time_freq = clamp((s64)freq * PPM_SCALE, -MAXFREQ_SCALED,
			     MAXFREQ_SCALED);
	clt_ntp_update_frequency(s);
	s->ntp.seq++;
}

/* ntp.c's __ntp_clear(), as the clock is set. */
static void clt_ntp_clear(struct clt_sim *s)
{
	s->ntp.status |= STA_UNSYNC;
	s->ntp.synced = false;
	s->ntp.maxerror_us = NTP_PHASE_LIMIT;
	s->ntp.esterror_us = NTP_PHASE_LIMIT;
	clt_ntp_update_frequency(s);
	s->tick_length = s->tick_length_base;
	s->time_offset = 0;
	s->ntp.tai_set = false;
	s->ntp.maxerror_seq++;
	s->ntp.seq++;
}

/* The NTP daemon: synchronized, with the maximum and estimated error. */
static void clt_ntp_sync(struct clt_sim *s, long maxerror_us,
			 long esterror_us)
{
	s->ntp.status &= ~STA_UNSYNC;
	s->ntp.synced = true;
	s->ntp.maxerror_us = maxerror_us;
	s->ntp.esterror_us = esterror_us;
	s->ntp.maxerror_seq++;
	s->ntp.seq++;
}

/*
 * The timekeeper: copies of timekeeping.c's, operating on the simulated
 * struct timekeeper, with s->tick_length for ntp_tick_length() and
 * clt_ntp_second_overflow() for second_overflow().
 */

/* Copy of tk_setup_internals(), with s->hz for NTP_INTERVAL_FREQ. */
static void clt_tk_setup_internals(struct clt_sim *s)
{
	struct timekeeper *tk = &s->tk;
	struct clocksource *clock = &s->cs;
	u64 interval, tmp, ntpinterval;

	++tk->cs_was_changed_seq;
	tk->tkr_mono.clock = clock;
	tk->tkr_mono.mask = clock->mask;
	tk->tkr_mono.cycle_last = s->now;

	tk->tkr_raw.clock = clock;
	tk->tkr_raw.mask = clock->mask;
	tk->tkr_raw.cycle_last = tk->tkr_mono.cycle_last;

	/* Do the ns -> cycle conversion first, using original mult */
	tmp = NSEC_PER_SEC / s->hz;
	tmp <<= clock->shift;
	ntpinterval = tmp;
	tmp += clock->mult / 2;
	do_div(tmp, clock->mult);
	if (tmp == 0)
		tmp = 1;

	interval = tmp;
	tk->cycle_interval = interval;

	/* Go back from cycles -> shifted ns */
	tk->xtime_interval = interval * clock->mult;
	tk->xtime_remainder = ntpinterval - tk->xtime_interval;
	tk->raw_interval = interval * clock->mult;

	tk->tkr_mono.shift = clock->shift;
	tk->tkr_raw.shift = clock->shift;

	tk->ntp_error = 0;
	tk->ntp_error_shift = NTP_SCALE_SHIFT - clock->shift;
	tk->ntp_tick = ntpinterval << tk->ntp_error_shift;

	tk->tkr_mono.mult = clock->mult;
	tk->tkr_raw.mult = clock->mult;
	tk->ntp_err_mult = 0;
	tk->skip_second_overflow = 0;

	tk->cs_id = clock->id;
}

/* Copy of timekeeping_apply_adjustment(). */
static void clt_tk_apply_adjustment(struct timekeeper *tk, s64 offset,
				    s32 mult_adj)
{
	s64 interval = tk->cycle_interval;

	if (mult_adj == 0) {
		return;
	} else if (mult_adj == -1) {
		interval = -interval;
		offset = -offset;
	} else if (mult_adj != 1) {
		interval *= mult_adj;
		offset *= mult_adj;
	}

	if (mult_adj > 0 && tk->tkr_mono.mult + mult_adj < mult_adj)
		return;

	tk->tkr_mono.mult += mult_adj;
	tk->xtime_interval += interval;
	tk->tkr_mono.xtime_nsec -= offset;
	tk->ntp_error += offset << tk->ntp_error_shift;
}

/* Copy of timekeeping_adjust(). */
static void clt_tk_adjust(struct clt_sim *s, s64 offset)
{
	struct timekeeper *tk = &s->tk;
	u64 ntp_tl = s->tick_length;
	u32 mult;

	if (likely(tk->ntp_tick == ntp_tl)) {
		mult = tk->tkr_mono.mult - tk->ntp_err_mult;
	} else {
		tk->ntp_tick = ntp_tl;
		mult = div64_u64((tk->ntp_tick >> tk->ntp_error_shift) -
				 tk->xtime_remainder, tk->cycle_interval);
	}

	tk->ntp_err_mult = tk->ntp_error > 0 ? 1 : 0;
	mult += tk->ntp_err_mult;

	clt_tk_apply_adjustment(tk, offset, mult - tk->tkr_mono.mult);

	if (unlikely((s64)tk->tkr_mono.xtime_nsec < 0)) {
		tk->tkr_mono.xtime_nsec += (u64)NSEC_PER_SEC <<
					   tk->tkr_mono.shift;
		tk->xtime_sec--;
		tk->skip_second_overflow = 1;
	}
}

/* Copy of accumulate_nsecs_to_secs(), without leap seconds. */
static void clt_tk_accumulate_nsecs_to_secs(struct clt_sim *s)
{
	struct timekeeper *tk = &s->tk;
	u64 nsecps = (u64)NSEC_PER_SEC << tk->tkr_mono.shift;

	while (tk->tkr_mono.xtime_nsec >= nsecps) {
		tk->tkr_mono.xtime_nsec -= nsecps;
		tk->xtime_sec++;

		if (unlikely(tk->skip_second_overflow)) {
			tk->skip_second_overflow = 0;
			continue;
		}

		clt_ntp_second_overflow(s);
	}
}

/* Copy of logarithmic_accumulation(). */
static u64 clt_tk_logarithmic_accumulation(struct clt_sim *s, u64 offset,
					   u32 shift)
{
	struct timekeeper *tk = &s->tk;
	u64 interval = tk->cycle_interval << shift;
	u64 snsec_per_sec;

	if (offset < interval)
		return offset;

	offset -= interval;
	tk->tkr_mono.cycle_last += interval;
	tk->tkr_raw.cycle_last += interval;

	tk->tkr_mono.xtime_nsec += tk->xtime_interval << shift;
	clt_tk_accumulate_nsecs_to_secs(s);

	tk->tkr_raw.xtime_nsec += tk->raw_interval << shift;
	snsec_per_sec = (u64)NSEC_PER_SEC << tk->tkr_raw.shift;
	while (tk->tkr_raw.xtime_nsec >= snsec_per_sec) {
		tk->tkr_raw.xtime_nsec -= snsec_per_sec;
		tk->raw_sec++;
	}

	tk->ntp_error += tk->ntp_tick << shift;
	tk->ntp_error -= (tk->xtime_interval + tk->xtime_remainder) <<
			 (tk->ntp_error_shift + shift);

	return offset;
}

/*
 * Copy of __timekeeping_advance() up to the update, to s->now: @freq for
 * TK_ADV_FREQ (adjtimex(ADJ_FREQUENCY)), else TK_ADV_TICK.  Returns
 * whether the timekeeper was updated.
 */
static bool clt_tk_advance(struct clt_sim *s, bool freq)
{
	struct timekeeper *tk = &s->tk;
	int shift = 0, maxshift;
	u64 offset;

	offset = (s->now - tk->tkr_mono.cycle_last) & tk->tkr_mono.mask;
	if (offset < tk->cycle_interval && !freq)
		return false;

	shift = (offset ? ilog2(offset) : -1) - ilog2(tk->cycle_interval);
	shift = max(0, shift);
	maxshift = (64 - (ilog2(s->tick_length) + 1)) - 1;
	shift = min(shift, maxshift);
	while (offset >= tk->cycle_interval) {
		offset = clt_tk_logarithmic_accumulation(s, offset, shift);
		if (offset < tk->cycle_interval << shift)
			shift--;
	}

	clt_tk_adjust(s, offset);
	clt_tk_accumulate_nsecs_to_secs(s);
	return true;
}

/* Simplified timekeeping_forward_now(), before the clock is set. */
static void clt_tk_forward_now(struct clt_sim *s)
{
	struct timekeeper *tk = &s->tk;
	u64 delta = (s->now - tk->tkr_mono.cycle_last) & tk->tkr_mono.mask;
	u64 nsecps = (u64)NSEC_PER_SEC << tk->tkr_mono.shift;

	tk->tkr_mono.cycle_last = s->now;
	tk->tkr_raw.cycle_last = s->now;
	tk->tkr_mono.xtime_nsec += delta * tk->tkr_mono.mult;
	tk->tkr_raw.xtime_nsec += delta * tk->tkr_raw.mult;
	while (tk->tkr_mono.xtime_nsec >= nsecps) {
		tk->tkr_mono.xtime_nsec -= nsecps;
		tk->xtime_sec++;
	}
	while (tk->tkr_raw.xtime_nsec >= nsecps) {
		tk->tkr_raw.xtime_nsec -= nsecps;
		tk->raw_sec++;
	}
}

/* Times, in TAI and 2^-64 s as the line gives them. */

/* @sec s and @snsec ns << @shift, with @shift at most 32. */
static u128 clt_tai(u64 sec, u128 snsec, unsigned int shift)
{
	u64 nsecps = (u64)NSEC_PER_SEC << shift;

	while (snsec >= nsecps) {
		snsec -= nsecps;
		sec++;
	}
	return ((u128)sec << 64) +
	       mul_u64_u64_div_u64((u64)snsec, 1ULL << (64 - shift),
				   NSEC_PER_SEC);
}

/* The timekeeper's NTP line at cycle_last: xtime + ntp_error. */
static u128 clt_ntp_time(const struct timekeeper *tk)
{
	const s64 nsecps = (s64)NSEC_PER_SEC << NTP_SCALE_SHIFT;
	s64 ns32 = (s64)(tk->tkr_mono.xtime_nsec << tk->ntp_error_shift) +
		   tk->ntp_error;
	u64 sec = tk->xtime_sec + tk->tai_offset;

	while (ns32 < 0) {
		ns32 += nsecps;
		sec--;
	}
	return clt_tai(sec, ns32, NTP_SCALE_SHIFT);
}

/* The timekeeper's clock at @cycles, as its readers compute it. */
static u128 clt_clock_time(const struct timekeeper *tk, u64 cycles)
{
	u64 delta = (cycles - tk->tkr_mono.cycle_last) & tk->tkr_mono.mask;

	return clt_tai(tk->xtime_sec + tk->tai_offset,
		       (u128)delta * tk->tkr_mono.mult + tk->tkr_mono.xtime_nsec,
		       tk->tkr_mono.shift);
}

/* |@a - @b| in ns, rounded up. */
static u64 clt_dist_ns(u128 a, u128 b)
{
	u128 d = a > b ? a - b : b - a;

	if (d >> 64)
		return U64_MAX;
	return ((u128)(u64)d * NSEC_PER_SEC + U64_MAX) >> 64;
}

/*
 * The bound that the line publishes for |line - CLOCK_REALTIME| at
 * clocksource value @cycles: line_error_ns at its anchor, growing by
 * line_error_ppb, rounded up.
 */
static u64 clt_bound(const struct clt_sim *s, u64 cycles)
{
	u64 elapsed = cycles - s->line.cycles;
	u64 ns = mul_u64_u64_div_u64(elapsed, NSEC_PER_SEC, s->freq);

	if ((s64)elapsed < 0)
		ns = 0;
	return s->line.line_error_ns +
	       mul_u64_u64_div_u64(ns, s->line.line_error_ppb, NSEC_PER_SEC) + 1;
}

static void clt_check(struct clt_sim *s, const char *what,
		      struct clt_worst *worst, u64 dev_ns, u64 bound_ns,
		      bool assert)
{
	if (!worst->bound_ns ||
	    (u128)dev_ns * worst->bound_ns > (u128)worst->dev_ns * bound_ns) {
		worst->dev_ns = dev_ns;
		worst->bound_ns = bound_ns;
	}
	if (!assert || dev_ns <= bound_ns)
		return;
	if (s->failures++ < CLT_MAX_REPORTS)
		KUNIT_FAIL(s->test,
			   "%s: %llu ns off the line, bound %llu ns, at %llu s, gen %llu, ntp_error %lld ns, %llu ms since the previous update, hold %llu s",
			   what, dev_ns, bound_ns,
			   div_u64(s->now - s->start, s->freq), s->line.gen,
			   s->tk.ntp_error >> NTP_SCALE_SHIFT,
			   div_u64(s->now - s->prev, s->freq / MSEC_PER_SEC),
			   s->w.hold_sec);
}

/* The line against the timekeeper at its last update. */
static void clt_check_line(struct clt_sim *s, const char *when, bool clock)
{
	const struct timekeeper *tk = &s->tk;
	u64 cycles = tk->tkr_mono.cycle_last;
	u128 line;
	u64 dev;

	if (!s->line.valid)
		return;
	line = clock_line_time_at(&s->line, cycles);
	dev = clt_dist_ns(line, clt_ntp_time(tk));

	clt_check(s, when, &s->worst_ntp, dev, clt_bound(s, cycles), true);
	if (clock)
		clt_check(s, when, &s->worst_clock,
			  clt_dist_ns(line, clt_clock_time(tk, cycles)),
			  clt_bound(s, cycles), true);

	/* On the NTP line as long as the tick length is the published one. */
	if (tk->ntp_tick != s->pub_tick)
		s->tick_changed = true;
	if (!s->tick_changed)
		clt_check(s, "exact", &s->worst_exact, dev, CLT_EXACT_NS, true);
}

/* What __clock_line_update() does, with the simulation's line. */
static bool clt_line_update(struct clt_sim *s, bool was_set)
{
	if (!clock_line_due(&s->w, &s->tk, s->ntp.seq, was_set))
		return false;
	if (!clock_line_advance(&s->w, &s->line, &s->tk, &s->ntp, was_set))
		return false;
	s->republishes++;
	s->pub_tick = s->tk.ntp_tick;
	s->tick_changed = false;
	return true;
}

/*
 * A timekeeper update at clocksource value @now, as update_wall_time() or,
 * with @freq, adjtimex(ADJ_FREQUENCY) makes it, with the line update and
 * the checks around it.  Returns whether the line was republished.
 */
static bool clt_update(struct clt_sim *s, u64 now, bool freq)
{
	const struct timekeeper *tk = &s->tk;
	u64 dev;

	if ((s64)(now - s->now) < 0)
		now = s->now;

	/* CLOCK_REALTIME just before, with the mult of the last update. */
	if (s->line.valid) {
		dev = clt_dist_ns(clock_line_time_at(&s->line, now),
				  clt_clock_time(tk, now));
		clt_check(s, "read", &s->worst_read, dev, clt_bound(s, now),
			  true);
	}

	s->prev = tk->tkr_mono.cycle_last;
	s->now = now;
	if (!clt_tk_advance(s, freq))
		return false;
	s->updates++;

	/* The line that the consumers have must hold until they see another. */
	clt_check_line(s, "before the line update", false);
	if (!clt_line_update(s, false)) {
		clt_check_line(s, "kept line", true);
		return false;
	}
	clt_check_line(s, "new line", true);
	return true;
}

/* Clocksource value of tick @tick, late by up to 1/32 of a tick. */
static u64 clt_tick_cycles(struct clt_sim *s, u64 tick)
{
	u64 jitter = clt_rand_range(s, 0, s->freq / s->hz / 32);

	return s->start + div_u64(tick * s->freq, s->hz) + jitter;
}

/* Somewhere between tick @tick and the next one. */
static u64 clt_mid_tick_cycles(struct clt_sim *s, u64 tick)
{
	return s->start + div_u64(tick * s->freq, s->hz) +
	       clt_rand_range(s, 0, s->freq / s->hz - 1);
}

/*
 * The next update: the next tick, or with @nohz one time in 16 after an
 * idle period of up to 4 s (NO_HZ), anywhere in a tick.
 */
static u64 clt_next_cycles(struct clt_sim *s, bool nohz)
{
	if (!nohz || clt_rand(s) % 16)
		return clt_tick_cycles(s, ++s->ticks);

	s->ticks += clt_rand_range(s, 2, 4 * s->hz);
	return clt_mid_tick_cycles(s, s->ticks);
}

/* Run @secs seconds of ticks. */
static void clt_run(struct clt_sim *s, unsigned int secs)
{
	u64 end = s->ticks + (u64)secs * s->hz;

	while (s->ticks < end)
		clt_update(s, clt_tick_cycles(s, ++s->ticks), false);
}

static struct clt_sim *clt_sim_new(struct kunit *test, u32 freq,
				   unsigned int hz, s64 freq_ppb)
{
	struct clt_sim *s = kunit_kzalloc(test, sizeof(*s), GFP_KERNEL);
	struct timekeeper *tk;
	struct clocksource *cs;

	KUNIT_ASSERT_NOT_NULL(test, s);
	s->test = test;
	s->freq = freq;
	s->hz = hz;
	s->rng = 0x636c6f636b6c696eULL ^ ((u64)freq << 16) ^ hz;

	/* As __clocksource_update_freq_scale() would set it up. */
	cs = &s->cs;
	cs->name = "clt-tsc";
	cs->id = CSID_X86_TSC;
	cs->flags = CLOCK_SOURCE_IS_CONTINUOUS;
	cs->mask = CLOCKSOURCE_MASK(64);
	clocks_calc_mult_shift(&cs->mult, &cs->shift, freq, NSEC_PER_SEC, 600);
	cs->maxadj = div_u64((u64)cs->mult * 11, 100);

	/* 300 s before the counter wraps around. */
	s->start = 0 - (u64)freq * 300 + clt_rand(s);
	s->now = s->start;

	tk = &s->tk;
	clt_tk_setup_internals(s);
	tk->xtime_sec = CLT_EPOCH_SEC + clt_rand_range(s, 0, 86399);
	tk->tkr_mono.xtime_nsec = clt_rand_range(s, 0, NSEC_PER_SEC - 1) <<
				  tk->tkr_mono.shift;
	tk->raw_sec = 1000 + clt_rand_range(s, 0, 999);
	tk->tkr_raw.xtime_nsec = clt_rand_range(s, 0, NSEC_PER_SEC - 1) <<
				 tk->tkr_raw.shift;
	tk->tai_offset = CLT_TAI_OFFSET;

	s->ntp.seq = 1;
	s->ntp.status = STA_PLL | STA_NANO;
	s->ntp.state = TIME_OK;
	s->ntp.synced = true;
	s->ntp.maxerror_us = 20000;
	s->ntp.esterror_us = 100;
	s->ntp.maxerror_seq = 1;
	s->ntp.tai_set = true;
	s->time_reftime = tk->xtime_sec;
	s->time_freq = freq_ppb << NTP_SCALE_SHIFT;
	clt_ntp_update_frequency(s);

	/* The first line: there was none before, so it counts as steps. */
	KUNIT_EXPECT_TRUE(test, clt_line_update(s, false));
	KUNIT_EXPECT_EQ(test, s->line.gen, 1);
	KUNIT_EXPECT_TRUE(test, s->line.valid);
	KUNIT_EXPECT_EQ(test, s->line.cs_id, CSID_X86_TSC);
	KUNIT_EXPECT_EQ(test, s->line.tai_steps_back, 1);
	KUNIT_EXPECT_EQ(test, s->line.utc_steps_back, 1);
	clt_check_line(s, "first line", true);
	return s;
}

static void clt_report(struct clt_sim *s, const char *profile)
{
	kunit_info(s->test,
		   "%s %u Hz HZ=%u: %u republishes in %u updates; worst |line - ntp line| %llu/%llu ns, |line - xtime| %llu/%llu ns, read between updates %llu/%llu ns, %u failures\n",
		   profile, s->freq, s->hz, s->republishes, s->updates,
		   s->worst_ntp.dev_ns, s->worst_ntp.bound_ns,
		   s->worst_clock.dev_ns, s->worst_clock.bound_ns,
		   s->worst_read.dev_ns, s->worst_read.bound_ns, s->failures);
}

static const struct clt_param clt_params[] = {
	{ 2999999937U, 100 }, { 2999999937U, 250 },
	{ 2999999937U, 300 }, { 2999999937U, 1000 },
	{ 1000000000U, 100 }, { 1000000000U, 250 },
	{ 1000000000U, 300 }, { 1000000000U, 1000 },
	{ 24000000U, 100 }, { 24000000U, 250 },
	{ 24000000U, 300 }, { 24000000U, 1000 },
};

static void clt_param_desc(const struct clt_param *p, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%u Hz, HZ=%u", p->freq, p->hz);
}

KUNIT_ARRAY_PARAM(clt, clt_params, clt_param_desc);

/*
 * A constant NTP frequency, ticks and NO_HZ batches of up to 4 s: the line
 * stays on the timekeeper's NTP line.
 */
static void clock_line_test_on_line(struct kunit *test)
{
	const struct clt_param *p = test->param_value;
	struct clt_sim *s = clt_sim_new(test, p->freq, p->hz, -23457);
	u64 end = (u64)CLT_SIM_SEC * p->hz;

	while (s->ticks < end)
		clt_update(s, clt_next_cycles(s, true), false);
	clt_report(s, "on_line");
	KUNIT_EXPECT_FALSE(test, s->tick_changed);
	KUNIT_EXPECT_LE(test, s->worst_exact.dev_ns, CLT_EXACT_NS);
}

/*
 * ntpd with the kernel PLL: every 16 to 64 s an offset of up to 50 us,
 * which second_overflow() works off with a tick length that changes every
 * second.
 */
static void clt_pll(struct kunit *test, bool nohz)
{
	const struct clt_param *p = test->param_value;
	struct clt_sim *s = clt_sim_new(test, p->freq, p->hz, 31416);
	u64 end = (u64)CLT_SIM_SEC * p->hz;
	u64 next = 0;
	unsigned int polls = 0;

	while (s->ticks < end) {
		if (s->ticks >= next) {
			int poll = clt_rand_range(s, 4, 6);
			s64 offset = (s64)clt_rand_range(s, 0, 100000) - 50000;

			clt_ntp_adjtimex_pll(s, offset, poll,
					     clt_rand_range(s, 15000, 17000),
					     clt_rand_range(s, 95, 105));
			next = s->ticks + (u64)(1 << poll) * p->hz +
			       clt_rand_range(s, 0, p->hz);
			polls++;
		}
		clt_update(s, clt_next_cycles(s, nohz), false);
	}
	clt_report(s, nohz ? "pll_nohz" : "pll");
	kunit_info(test, "%u polls, time_freq %lld ppb\n", polls,
		   s->time_freq >> NTP_SCALE_SHIFT);
	KUNIT_EXPECT_LE(test, s->republishes, CLT_PLL_MAX_REPUBLISHES);
}

static void clock_line_test_pll(struct kunit *test)
{
	clt_pll(test, false);
}

/*
 * The same on a NO_HZ system, whose timekeeper may go up to 4 s without an
 * update: a line that was kept must hold until the update after that.
 */
static void clock_line_test_pll_nohz(struct kunit *test)
{
	clt_pll(test, true);
}

/*
 * chronyd: every 2 to 16 s a frequency change of 1 ppb to 50 ppm, at any
 * point of a tick, which adjtimex() applies at once (TK_ADV_FREQ), and
 * right after it new error bounds (ADJ_STATUS | ADJ_MAXERROR |
 * ADJ_ESTERROR): a maximum error below what the kernel grew it to since
 * the last one, an estimated error anywhere from 1 to 200 us.  One
 * republish per change, which carries the bounds set after the previous
 * one.
 */
static void clock_line_test_chrony(struct kunit *test)
{
	const struct clt_param *p = test->param_value;
	struct clt_sim *s = clt_sim_new(test, p->freq, p->hz, 4711);
	u64 end = (u64)CLT_SIM_SEC * p->hz;
	unsigned int changes = 0, last = s->republishes, most = 0, base = 0;
	long maxerror_us = s->ntp.maxerror_us;
	u64 set_sec = s->tk.xtime_sec;
	s64 ppb = 4711;

	while (s->ticks < end) {
		u64 next = s->ticks + clt_rand_range(s, 2 * p->hz, 16 * p->hz);
		unsigned int bits = clt_rand_range(s, 0, 15);
		s64 delta = clt_rand_range(s, 1ULL << bits, (2ULL << bits) - 1);

		while (s->ticks < next)
			clt_update(s, clt_tick_cycles(s, ++s->ticks), false);

		/* Republishes since the last change, which it caused. */
		most = max(most, s->republishes - last);
		if (s->republishes - last > 1 && s->failures++ < CLT_MAX_REPORTS)
			KUNIT_FAIL(test, "%u republishes for change %u",
				   s->republishes - last, changes);
		last = s->republishes;

		delta = min(delta, 50000LL);
		if (clt_rand(s) & 1 || ppb + delta > 400000)
			delta = -delta;
		if (ppb + delta < -400000)
			delta = -delta;
		ppb += delta;
		if (!changes)
			base = s->republishes;
		clt_ntp_adjtimex_freq(s, div_s64(ppb << 16, 1000));
		clt_update(s, clt_mid_tick_cycles(s, s->ticks), true);
		changes++;

		/* The bounds set after the previous change, grown since. */
		if (s->republishes != last && s->line.maxerror_ns >
		    (maxerror_us + (s->tk.xtime_sec - set_sec + 2) *
		     (MAXFREQ / NSEC_PER_USEC)) * NSEC_PER_USEC +
		    s->line.line_error_ns && s->failures++ < CLT_MAX_REPORTS)
			KUNIT_FAIL(test, "change %u: maxerror %llu ns, set to %ld us %llu s ago",
				   changes, s->line.maxerror_ns, maxerror_us,
				   s->tk.xtime_sec - set_sec);
		maxerror_us = clt_rand_range(s, 100, 1000);
		set_sec = s->tk.xtime_sec;
		clt_ntp_sync(s, maxerror_us, clt_rand_range(s, 1, 200));
	}
	clt_report(s, "chrony");
	kunit_info(test, "%u frequency changes, at most %u republishes per change\n",
		   changes, most);
	/* From the first change on, which the bounds set before go with. */
	KUNIT_EXPECT_LE(test, s->republishes - base, changes);
}

/* Steps, leap seconds, NTP and clocksource state. */
static void clock_line_test_changes(struct kunit *test)
{
	struct clt_sim *s = clt_sim_new(test, 2999999937U, NTP_INTERVAL_FREQ,
					5000);
	struct clock_line old;
	long maxerror_us;
	u128 t0, t1;
	u64 gen;

	clt_run(s, 10);

	/* A 100 ppm frequency change is published at once. */
	old = s->line;
	clt_ntp_adjtimex_freq(s, div_s64(105000LL << 16, 1000));
	KUNIT_EXPECT_TRUE(test, clt_update(s, clt_mid_tick_cycles(s, s->ticks),
					   true));
	KUNIT_EXPECT_EQ(test, s->line.gen, old.gen + 1);
	t0 = clock_line_time_at(&s->line, s->now + s->freq) -
	     clock_line_time_at(&s->line, s->now);
	t1 = clock_line_time_at(&old, s->now + s->freq) -
	     clock_line_time_at(&old, s->now);
	/* 100 us more per second, within the rounding. */
	KUNIT_EXPECT_LE(test, abs((s64)clt_dist_ns(t0, t1) - 100000), 10);
	KUNIT_EXPECT_EQ(test, s->line.tai_steps_back, old.tai_steps_back);
	KUNIT_EXPECT_EQ(test, s->line.utc_steps_back, old.utc_steps_back);
	clt_run(s, 2);

	/* The clock is set back by a second: a step back in TAI and UTC. */
	old = s->line;
	s->now = clt_mid_tick_cycles(s, s->ticks);
	clt_tk_forward_now(s);
	s->tk.xtime_sec--;
	s->tk.ntp_error = 0;
	clt_ntp_clear(s);
	KUNIT_EXPECT_TRUE(test, clt_line_update(s, true));
	KUNIT_EXPECT_EQ(test, s->line.gen, old.gen + 1);
	KUNIT_EXPECT_EQ(test, s->line.tai_steps_back, old.tai_steps_back + 1);
	KUNIT_EXPECT_EQ(test, s->line.utc_steps_back, old.utc_steps_back + 1);
	/* Not synchronized: no maximum error, not TAI. */
	KUNIT_EXPECT_FALSE(test, s->line.synced);
	KUNIT_EXPECT_EQ(test, s->line.maxerror_ns, 0);
	KUNIT_EXPECT_EQ(test, s->line.esterror_ns, 0);
	KUNIT_EXPECT_FALSE(test, s->line.tai_offset_set);
	KUNIT_EXPECT_GT(test, s->line.line_error_ns, 0);
	clt_check_line(s, "clock set back", true);
	clt_run(s, 2);

	/* The daemon synchronizes again and sets the TAI offset. */
	old = s->line;
	clt_ntp_sync(s, 10000, 100);
	s->ntp.tai_set = true;
	clt_run(s, 1);
	KUNIT_EXPECT_EQ(test, s->line.gen, old.gen + 1);
	KUNIT_EXPECT_TRUE(test, s->line.synced);
	KUNIT_EXPECT_TRUE(test, s->line.tai_offset_set);
	KUNIT_EXPECT_GE(test, s->line.maxerror_ns, 10500 * NSEC_PER_USEC);
	KUNIT_EXPECT_GE(test, s->line.esterror_ns, 100 * NSEC_PER_USEC);

	/* Set forward by a second: no step back. */
	old = s->line;
	s->now = clt_mid_tick_cycles(s, s->ticks);
	clt_tk_forward_now(s);
	s->tk.xtime_sec++;
	KUNIT_EXPECT_TRUE(test, clt_line_update(s, true));
	KUNIT_EXPECT_EQ(test, s->line.gen, old.gen + 1);
	KUNIT_EXPECT_EQ(test, s->line.tai_steps_back, old.tai_steps_back);
	KUNIT_EXPECT_EQ(test, s->line.utc_steps_back, old.utc_steps_back);
	clt_run(s, 1);

	/* The TAI offset is reduced by one: a step back in TAI only. */
	old = s->line;
	s->tk.tai_offset--;
	s->ntp.seq++;
	KUNIT_EXPECT_TRUE(test, clt_line_update(s, true));
	KUNIT_EXPECT_EQ(test, s->line.tai_offset, old.tai_offset - 1);
	KUNIT_EXPECT_EQ(test, s->line.tai_steps_back, old.tai_steps_back + 1);
	KUNIT_EXPECT_EQ(test, s->line.utc_steps_back, old.utc_steps_back);
	clt_run(s, 1);

	/* A leap second announced, then inserted: no step back. */
	old = s->line;
	s->ntp.status |= STA_INS;
	s->ntp.seq++;
	clt_run(s, 1);
	KUNIT_EXPECT_EQ(test, s->line.gen, old.gen + 1);
	KUNIT_EXPECT_EQ(test, s->line.leap, CLOCK_LINE_LEAP_PRE_INS);
	old = s->line;
	s->ntp.state = TIME_OOP;
	s->ntp.leaps_inserted++;
	s->ntp.seq++;
	s->tk.xtime_sec--;
	s->tk.tai_offset++;
	KUNIT_EXPECT_TRUE(test, clt_line_update(s, true));
	KUNIT_EXPECT_EQ(test, s->line.leap, CLOCK_LINE_LEAP_INS);
	KUNIT_EXPECT_EQ(test, s->line.leaps_inserted, old.leaps_inserted + 1);
	KUNIT_EXPECT_EQ(test, s->line.tai_offset, old.tai_offset + 1);
	KUNIT_EXPECT_EQ(test, s->line.tai_steps_back, old.tai_steps_back);
	KUNIT_EXPECT_EQ(test, s->line.utc_steps_back, old.utc_steps_back);
	clt_check_line(s, "leap second", true);
	s->ntp.state = TIME_WAIT;
	s->ntp.seq++;
	clt_run(s, 1);
	KUNIT_EXPECT_EQ(test, s->line.leap, CLOCK_LINE_LEAP_POST_INS);
	s->ntp.status &= ~STA_INS;
	s->ntp.state = TIME_OK;
	s->ntp.seq++;
	clt_run(s, 1);
	KUNIT_EXPECT_EQ(test, s->line.leap, CLOCK_LINE_LEAP_NONE);

	/* Unsynchronized: the maximum error is not given. */
	old = s->line;
	s->ntp.status |= STA_UNSYNC;
	s->ntp.synced = false;
	s->ntp.seq++;
	clt_run(s, 1);
	KUNIT_EXPECT_EQ(test, s->line.gen, old.gen + 1);
	KUNIT_EXPECT_FALSE(test, s->line.synced);
	KUNIT_EXPECT_EQ(test, s->line.maxerror_ns, 0);
	clt_ntp_sync(s, 10000, 100);
	clt_run(s, 1);
	KUNIT_EXPECT_TRUE(test, s->line.synced);

	/* The TAI offset was not set since the NTP state was cleared. */
	old = s->line;
	s->ntp.tai_set = false;
	s->ntp.seq++;
	clt_run(s, 1);
	KUNIT_EXPECT_EQ(test, s->line.gen, old.gen + 1);
	KUNIT_EXPECT_FALSE(test, s->line.tai_offset_set);
	s->ntp.tai_set = true;
	s->ntp.seq++;
	clt_run(s, 1);
	KUNIT_EXPECT_TRUE(test, s->line.tai_offset_set);

	/* The estimated error changes by 1%: nothing to republish... */
	gen = s->line.gen;
	s->ntp.esterror_us = 101;
	s->ntp.seq++;
	clt_run(s, 1);
	KUNIT_EXPECT_EQ(test, s->line.gen, gen);
	/*
	 * ... by 50%: republish, with the next rate change, or on its own
	 * CLOCK_LINE_TIGHTEN_MAX_SEC later.
	 */
	s->ntp.esterror_us = 150;
	s->ntp.seq++;
	clt_run(s, CLOCK_LINE_TIGHTEN_MAX_SEC - 1);
	KUNIT_EXPECT_EQ(test, s->line.gen, gen);
	clt_run(s, 2);
	KUNIT_EXPECT_EQ(test, s->line.gen, gen + 1);
	KUNIT_EXPECT_GE(test, s->line.esterror_ns, 150 * NSEC_PER_USEC);
	/*
	 * A rate change takes a waiting change along, even one too small
	 * to be published on its own.
	 */
	gen = s->line.gen;
	s->ntp.esterror_us = 50;
	s->ntp.seq++;
	clt_run(s, 1);
	KUNIT_EXPECT_EQ(test, s->line.gen, gen);
	clt_ntp_adjtimex_freq(s, div_s64(105001LL << 16, 1000));
	KUNIT_EXPECT_TRUE(test, clt_update(s, clt_mid_tick_cycles(s, s->ticks),
					   true));
	KUNIT_EXPECT_EQ(test, s->line.gen, gen + 1);
	KUNIT_EXPECT_LT(test, s->line.esterror_ns, 100 * NSEC_PER_USEC);
	clt_run(s, 1);
	KUNIT_EXPECT_EQ(test, s->line.gen, gen + 1);

	/* The daemon raises the maximum error: republish. */
	gen = s->line.gen;
	s->ntp.maxerror_us += 1000;
	maxerror_us = s->ntp.maxerror_us;
	s->ntp.maxerror_seq++;
	s->ntp.seq++;
	clt_run(s, 1);
	KUNIT_EXPECT_EQ(test, s->line.gen, gen + 1);
	KUNIT_EXPECT_GE(test, s->line.maxerror_ns,
			(maxerror_us + MAXFREQ / NSEC_PER_USEC) * NSEC_PER_USEC);
	/* The kernel's own growth of it: nothing to republish. */
	gen = s->line.gen;
	clt_run(s, 5);
	KUNIT_EXPECT_EQ(test, s->line.gen, gen);

	/* A clocksource that is not continuous cannot be read by others. */
	old = s->line;
	s->cs.flags &= ~CLOCK_SOURCE_IS_CONTINUOUS;
	s->tk.cs_was_changed_seq++;
	clt_run(s, 1);
	KUNIT_EXPECT_EQ(test, s->line.gen, old.gen + 1);
	KUNIT_EXPECT_FALSE(test, s->line.valid);
	/* Back to one that is: nothing to be continuous with. */
	old = s->line;
	s->cs.flags |= CLOCK_SOURCE_IS_CONTINUOUS;
	s->tk.cs_was_changed_seq++;
	clt_run(s, 1);
	KUNIT_EXPECT_EQ(test, s->line.gen, old.gen + 1);
	KUNIT_EXPECT_TRUE(test, s->line.valid);
	KUNIT_EXPECT_EQ(test, s->line.tai_steps_back, old.tai_steps_back + 1);
	KUNIT_EXPECT_EQ(test, s->line.utc_steps_back, old.utc_steps_back + 1);
	clt_check_line(s, "clocksource back", true);
	KUNIT_EXPECT_EQ(test, s->failures, 0);
}

/*
 * After a suspend, the published maximum error includes the error of the
 * sleep time until the NTP daemon sets the maximum error again.
 */
static void clock_line_test_slept(struct kunit *test)
{
	struct clt_sim *s = clt_sim_new(test, 1000000000U, NTP_INTERVAL_FREQ,
					-1234);
	const u64 sleep_ns = 10 * NSEC_PER_SEC;
	u64 sleep_err = div_u64(sleep_ns, NSEC_PER_SEC / MAXFREQ) +
			CLOCK_LINE_SLEEP_COARSE_NS;
	struct clock_line old;

	clt_run(s, 5);

	/*
	 * timekeeping_resume() with a persistent clock: the timekeeper is
	 * rebased where the clocksource is and the sleep time is injected.
	 */
	old = s->line;
	s->now = clt_mid_tick_cycles(s, s->ticks);
	clt_tk_forward_now(s);
	s->ticks += sleep_ns / NSEC_PER_SEC * s->hz;
	s->now = clt_mid_tick_cycles(s, s->ticks);
	s->tk.tkr_mono.cycle_last = s->now;
	s->tk.tkr_raw.cycle_last = s->now;
	s->tk.ntp_error = 0;
	s->tk.xtime_sec += sleep_ns / NSEC_PER_SEC;
	/* What clock_line_slept() does for the published line. */
	s->w.sleep_pending_ns += sleep_err;
	KUNIT_EXPECT_TRUE(test, clt_line_update(s, true));
	KUNIT_EXPECT_EQ(test, s->line.gen, old.gen + 1);
	KUNIT_EXPECT_EQ(test, s->line.maxerror_ns,
			(s->ntp.maxerror_us + MAXFREQ / NSEC_PER_USEC) *
			NSEC_PER_USEC + sleep_err + s->line.line_error_ns);
	KUNIT_EXPECT_EQ(test, s->w.sleep_pending_ns, 0);
	clt_run(s, 5);

	/* Republished for another reason: still included. */
	old = s->line;
	clt_ntp_adjtimex_freq(s, div_s64(100000LL << 16, 1000));
	KUNIT_EXPECT_TRUE(test, clt_update(s, clt_mid_tick_cycles(s, s->ticks),
					   true));
	KUNIT_EXPECT_EQ(test, s->line.gen, old.gen + 1);
	KUNIT_EXPECT_EQ(test, s->line.maxerror_ns,
			(s->ntp.maxerror_us + MAXFREQ / NSEC_PER_USEC) *
			NSEC_PER_USEC + sleep_err + s->line.line_error_ns);
	clt_run(s, 5);

	/*
	 * The daemon sets the maximum error: not any longer, published at
	 * once, as that makes the bound a second tighter.
	 */
	old = s->line;
	s->ntp.maxerror_us = 5000;
	s->ntp.maxerror_seq++;
	s->ntp.seq++;
	clt_run(s, 1);
	KUNIT_EXPECT_EQ(test, s->line.gen, old.gen + 1);
	KUNIT_EXPECT_EQ(test, s->w.sleep_error_ns, 0);
	KUNIT_EXPECT_GE(test, s->line.maxerror_ns,
			(5000 + MAXFREQ / NSEC_PER_USEC) * NSEC_PER_USEC +
			s->line.line_error_ns);
	KUNIT_EXPECT_LE(test, s->line.maxerror_ns,
			(5000 + 2 * MAXFREQ / NSEC_PER_USEC) * NSEC_PER_USEC +
			s->line.line_error_ns);
	KUNIT_EXPECT_EQ(test, s->failures, 0);
}

static struct kunit_case clock_line_test_cases[] = {
	KUNIT_CASE_PARAM(clock_line_test_on_line, clt_gen_params),
	KUNIT_CASE_PARAM(clock_line_test_pll, clt_gen_params),
	KUNIT_CASE_PARAM(clock_line_test_pll_nohz, clt_gen_params),
	KUNIT_CASE_PARAM(clock_line_test_chrony, clt_gen_params),
	KUNIT_CASE(clock_line_test_changes),
	KUNIT_CASE(clock_line_test_slept),
	{}
};

static struct kunit_suite clock_line_test_suite = {
	.name = "clock-line",
	.test_cases = clock_line_test_cases,
};

kunit_test_suite(clock_line_test_suite);
