#!/usr/bin/env bash
# "make test": everything a reviewer wants proven, in order, then one line
# "N passed, N failed, N skipped". Exit status non-zero on any failure.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

t0=$(date +%s)
host=$BUILD/host-results.txt
console=$BUILD/console.log
ktap=$BUILD/test-results.ktap
mkdir -p "$BUILD"
: >"$host"
rm -f "$console"
elapsed() { echo "$(( $(date +%s) - t0 ))s"; }

finish() {
	say "results: $ktap ($(elapsed) in all)"
	exec python3 "$ROOT/scripts/results.py" "$host" "$1" "$ktap" "${@:2}"
}

say "[1/7] packages"
"$ROOT/scripts/deps.sh"

say "[2/7] base and work tree"
"$ROOT/scripts/fetch-base.sh"
"$ROOT/scripts/tree.sh"

say "[3/7] the series: applies, each patch builds and passes checkpatch --strict, new-file tree ($(elapsed))"
"$ROOT/scripts/check-series.sh" >>"$host" ||
	echo "not ok series-checks # scripts/check-series.sh failed: see its messages above" >>"$host"
if grep -q '^not ok patch-.*-applies' "$host"; then
	finish -
fi

say "[4/7] test kernel: lockdep, KASAN, UBSAN, kmemleak, debug objects ($(elapsed))"
if ! "$ROOT/scripts/kernel.sh" >"$BUILD/kernel.log" 2>&1; then
	grep -E 'error|Error|requested but not set' "$BUILD/kernel.log" | head -5 >&2 || true
	echo "not ok kernel-builds # the test kernel does not build (log: build/kernel.log)" >>"$host"
	finish -
fi
echo "ok kernel-builds" >>"$host"
say "[4/7] build variants: W=1, sparse, CONFIG_KVM_VMCLOCK=n, KVM built in ($(elapsed))"
"$ROOT/scripts/build-variants.sh" >>"$host" ||
	echo "not ok build-variants # scripts/build-variants.sh failed: see its messages above" >>"$host"

say "[5/7] KVM selftests ($(elapsed))"
if ! "$ROOT/scripts/selftests.sh" >"$BUILD/selftests.log" 2>&1; then
	grep -E 'error' "$BUILD/selftests.log" | head -5 >&2 || true
	echo "not ok selftests-build # the selftests do not build (log: build/selftests.log)" >>"$host"
	finish -
fi
echo "ok selftests-build" >>"$host"
"$ROOT/scripts/initramfs.sh"

# The emulated host is one TCG thread: the machine's other core builds the
# guest kernel of step 7 meanwhile (under nice 19, so that it takes only
# what the emulated host leaves).
say "[6/7] the guest kernel of step 7, in the background (log: build/guest-kernel.log)"
setsid "$ROOT/scripts/qemu10-guest-kernel.sh" >"$BUILD/guest-kernel.log" 2>&1 &
guest_kernel=$!
# Its own process group: a make test stopped early takes the build with it.
trap 'kill -- -"$guest_kernel" 2>/dev/null || true' EXIT

say "[6/7] boot the emulated test host, KUnit and selftests inside ($(elapsed))"
"$ROOT/scripts/run-vm.sh" "$console"

say "[7/7] end to end: stock QEMU 10 and the stock guest's ptp_vmclock on the patched KVM, inside the emulated host ($(elapsed))"
if wait "$guest_kernel"; then
	trap - EXIT
	say "guest kernel ready ($(elapsed))"
else
	grep -E 'error|Error|ERROR' "$BUILD/guest-kernel.log" | head -5 >&2 || true
	echo "not ok e2e-guest-kernel # the guest kernel does not build (log: build/guest-kernel.log)" >>"$host"
	trap - EXIT
fi
"$ROOT/scripts/e2e.sh" "$host" 2>&1 | tee "$BUILD/e2e.log" |
	grep --line-buffered -E '^==> (e2e:|ok:|building|booting)|^WARNING: FAILED|^ERROR' | sed -u 's/^/    /' || true
# Each scenario must have left its results, whatever happened to e2e.sh.
for mode in boot migrate cs slew; do
	grep -q " e2e-$mode-completed" "$host" ||
		echo "not ok e2e-$mode-results # no results from the $mode scenario: scripts/e2e.sh stopped early (log: build/e2e.log)" >>"$host"
done
say "end to end done ($(elapsed); log: build/e2e.log)"
finish "$console"
