#!/usr/bin/env bash
# "make demo": the series as its users run it.  The emulated test host (the
# patched kernel under QEMU TCG) runs stock QEMU 10 with "-device vmclock"
# and a stock Linux 7.2.13 guest whose ptp_vmclock driver reads the page KVM
# keeps (vmm/vmclock-preload.c registers it, standing in for a QEMU patch),
# through one scenario (vmm/host-init, smoke.mode=demo): steady, the host's
# rate +200 ppm and back, a live migration to a second QEMU process, the
# host clocksource away from the TSC and back.  Then a timeline, per phase:
# the guest's PTP reads, their agreement with the page, the disruption
# markers, and the guest's kvmclock against the vmclock.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

"$ROOT/scripts/deps.sh"
"$ROOT/scripts/fetch-base.sh"
"$ROOT/scripts/tree.sh"
say "building the host kernel (the test kernel) when needed"
"$ROOT/scripts/kernel.sh"
start=$(date +%s)
log=$BUILD/demo.log
if ! HOST_OBJ=$OBJ "$ROOT/scripts/qemu10-smoke.sh" smoke.mode=demo >"$log" 2>&1; then
	grep -E 'FAILED|error' "$log" | head -20 >&2 || true
	warn "some checks failed (log: build/demo.log, console: build/qemu10/smoke-console-demo.log)"
fi
echo
echo "make demo: stock QEMU 10 and a stock Linux 7.2.13 guest (ptp_vmclock) on the patched KVM,"
echo "inside the emulated test host; the guest reads its PTP clock every 200 ms throughout"
echo
python3 "$ROOT/scripts/demo-timeline.py" "$BUILD/qemu10/smoke-console-demo.log"
echo
say "checks: $(grep -c 'ok: ' "$log" || true) passed, $(grep -c 'FAILED: ' "$log" || true) failed; the run took $(( $(date +%s) - start )) s (log: build/demo.log)"
