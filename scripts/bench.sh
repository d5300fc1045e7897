#!/usr/bin/env bash
# "make bench": boot the patched kernel under QEMU and run the automatic
# vmclock benchmark there (vmclock_auto_test -b): updates per minute with
# the host clock steady for BENCH_SECONDS (default 600) and with the kernel
# PLL slewing it for a minute, against the host's ticks, and the largest
# distance of the published clock from host CLOCK_TAI.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

seconds=${BENCH_SECONDS:-600}
case $seconds in
'' | *[!0-9]*) die "BENCH_SECONDS must be a number of seconds, not '$seconds'" ;;
esac
exec "$ROOT/scripts/inside.sh" bench "$ROOT/scripts/bench-inside" $((seconds + 900)) \
	"vmclock.bench_seconds=$seconds"
