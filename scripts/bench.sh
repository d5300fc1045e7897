#!/usr/bin/env bash
# "make bench": boot the patched kernel under QEMU and run the automatic
# vmclock benchmark there (vmclock_auto_test -b): BENCH_SECONDS (default
# 600) each of chrony's and of the kernel PLL's (ntpd, systemd-timesyncd)
# way of steering the host clock and of a steady host, with updates per minute and per daemon
# adjustment, vCPU kicks, notifier calls that did work, bound violations,
# worst error and bounds; then the notifier's work with 1 and 100 VMs, and
# how long one host change takes to reach 1, 10 and 100 VMs.  Before that,
# what a vmclock update and a guest read cost next to kvmclock's
# (vmclock_test -b; emulated times, which do not carry over to hardware).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

seconds=${BENCH_SECONDS:-600}
case $seconds in
'' | *[!0-9]*) die "BENCH_SECONDS must be a number of seconds, not '$seconds'" ;;
esac
exec "$ROOT/scripts/inside.sh" bench "$ROOT/scripts/bench-inside" $((3 * seconds + 1200)) \
	"vmclock.bench_seconds=$seconds"
