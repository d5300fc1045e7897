#!/usr/bin/env bash
# The end-to-end tests of issue 10 (make e2e, and step 9 of make test):
# stock QEMU 10 with "-device vmclock" on the patched KVM inside the emulated
# test host, the stock 7.2.13 guest's ptp_vmclock, four scenarios, each one
# boot of the emulated host (scripts/qemu10-smoke.sh says how):
#   boot     the driver's PTP clock and /dev/vmclock0 against the page, the
#            page against host CLOCK_TAI
#   migrate  live migration to a second QEMU process while the guest reads
#   cs       the host clocksource leaves the TSC and comes back
#   slew     host frequency +100, -100, 0 ppm: kvmclock against the vmclock
#   e2e.sh [RESULTS]    one "ok|not ok e2e-MODE-CHECK # what" line per check
#                       appended to RESULTS (default build/qemu10/e2e-results.txt)
# The host kernel and KVM modules are the test kernel's (build/obj).
# Exit status 1 if any check failed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

results=${1:-$BUILD/qemu10/e2e-results.txt}
mkdir -p "$BUILD/qemu10"
[ $# -ge 1 ] || : >"$results"

status=0
# run MODE [KERNEL_ARGS...]: one scenario; a run that stops before its
# checks (a build or fetch failure) still leaves a "not ok" line.
run() {
	local mode=$1 t0 before
	shift
	t0=$(date +%s)
	before=$(grep -c "^\(not \)\?ok e2e-$mode-" "$results" || true)
	say "e2e: $mode"
	if ! SMOKE_RESULTS=$results "$ROOT/scripts/qemu10-smoke.sh" "smoke.mode=$mode" "$@"; then
		status=1
		[ "$(grep -c "^\(not \)\?ok e2e-$mode-" "$results" || true)" -gt "$before" ] ||
			echo "not ok e2e-$mode-runs # scripts/qemu10-smoke.sh smoke.mode=$mode stopped before its checks" >>"$results"
	fi
	say "e2e: $mode took $(( $(date +%s) - t0 )) s"
}

# The first run copies the host kernel and modules from the test kernel's
# objects, so that all four run the same ones.
HOST_OBJ=$OBJ run boot
run migrate smoke.wait=300
run cs
run slew
say "e2e: $(grep -c '^ok e2e-' "$results") passed, $(grep -c '^not ok e2e-' "$results") failed ($results)"
exit $status
