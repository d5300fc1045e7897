/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _KERNEL_TIME_CLOCK_LINE_INTERNAL_H
#define _KERNEL_TIME_CLOCK_LINE_INTERNAL_H

#include <linux/jump_label.h>
#include <linux/types.h>

struct timekeeper;

#ifdef CONFIG_CLOCK_LINE
DECLARE_STATIC_KEY_FALSE(clock_line_key);

void __clock_line_update(const struct timekeeper *tk, bool was_set);
void __clock_line_restart(const struct timekeeper *tk);
void clock_line_slept(u64 sleep_ns, bool coarse);
void timekeeping_clock_line_restart(void);

/*
 * Called on every update of the core timekeeper, with its lock held and
 * its readers blocked: only while the line has users.
 */
static __always_inline void clock_line_update(const struct timekeeper *tk,
					      bool was_set)
{
	if (static_branch_unlikely(&clock_line_key))
		__clock_line_update(tk, was_set);
}
#else
static inline void clock_line_update(const struct timekeeper *tk, bool was_set) { }
static inline void clock_line_slept(u64 sleep_ns, bool coarse) { }
#endif

#endif /* _KERNEL_TIME_CLOCK_LINE_INTERNAL_H */
