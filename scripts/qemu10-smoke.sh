#!/usr/bin/env bash
# End-to-end test of issue 10, one scenario per run (scripts/e2e.sh runs all):
# the emulated test host (the patched kernel under QEMU 7.2 TCG, as make test
# boots it) runs QEMU 10 with "-device vmclock" on the patched KVM, with
# vmm/vmclock-preload.c registering the page in automatic mode; the nested
# guest is stock 7.2.13 whose ptp_vmclock driver must register a PTP clock,
# and vmm/vmclock-reader.c checks the driver's time against the page.
#
#   qemu10-smoke.sh [KERNEL_ARGS...]   e.g. smoke.smp=2 smoke.samples=20
#
# The host kernel is build/qemu10/host-bzImage with the KVM modules in
# build/qemu10/host/ (a copy, so that rebuilding build/obj does not change
# it under a run); HOST_OBJ=build/obj (or another O= directory) refreshes
# that copy first.  GUEST_BZIMAGE=FILE boots another guest kernel instead of
# building scripts/qemu10-guest-kernel.sh's.  CPU-heavy work runs under nice.
# The emulated host runs under the extracted QEMU 10 (TCG) with one CPU:
# QEMU 7.2's TCG SVM corrupts the nested guest's memory (it dies in
# prepare_creds at boot, with a stock host kernel too), and QEMU 10's with
# two host CPUs leaves it spinning on a free spinlock; vmm/NOTES.md has the
# runs.  OUTER_QEMU=7.2 and OUTER_SMP=N bring those back, to re-check a newer
# emulator.  The host's built-in KUnit suites are switched off
# (kunit.enable=0): make test runs them.
# Console: build/qemu10/smoke-console-MODE.log.  Exit status 1 if a check
# fails; SMOKE_RESULTS=FILE appends one "ok|not ok NAME # what" per check.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

Q=$BUILD/qemu10
hostk=$Q/host-bzImage
mods=(virt/lib/irqbypass.ko arch/x86/kvm/kvm.ko arch/x86/kvm/kvm-amd.ko)
mode=boot
[[ " $* " == *" smoke.mode=migrate "* ]] && mode=migrate
[[ " $* " == *" smoke.mode=cs "* ]] && mode=cs
[[ " $* " == *" smoke.mode=slew "* ]] && mode=slew
[[ " $* " == *" smoke.mode=demo "* ]] && mode=demo
log=$Q/smoke-console-$mode.log
limit=${VM_TIMEOUT:-900}
mkdir -p "$Q/host" "$Q/out"

if [ -n "${HOST_OBJ:-}" ] || [ ! -f "$hostk" ]; then
	obj=${HOST_OBJ:-$OBJ}
	say "copying the host kernel and KVM modules from $obj"
	[ -f "$obj/arch/x86/boot/bzImage" ] || die "no host kernel in $obj (make kernel)"
	cp "$obj/arch/x86/boot/bzImage" "$hostk"
	for m in "${mods[@]}"; do cp "$obj/$m" "$Q/host/"; done
fi
for m in "${mods[@]}"; do
	[ -f "$Q/host/$(basename "$m")" ] || die "no $(basename "$m") in $Q/host"
done

[ -f "$Q/stage/MANIFEST" ] || "$ROOT/scripts/qemu10-fetch.sh"
guest_bz=${GUEST_BZIMAGE:-$("$ROOT/scripts/qemu10-guest-kernel.sh")}
"$ROOT/scripts/qemu10-guest-initramfs.sh" "$Q/guest-initramfs.cpio.gz"

say "building vmclock-preload.so and hostclock"
nice -n 19 gcc -O2 -Wall -Wextra -Werror -shared -fPIC -o "$Q/out/vmclock-preload.so" \
	"$ROOT/vmm/vmclock-preload.c" -ldl
nice -n 19 gcc -O2 -Wall -Wextra -Werror -static -o "$Q/out/hostclock" "$ROOT/vmm/hostclock.c"

say "assembling the host initramfs"
root=$Q/host-initramfs.d
image=$Q/host-initramfs.cpio.gz
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,proc,sys,dev,tmp,lib/modules,guest}
cp /bin/busybox "$root/bin/busybox"
for app in $(/bin/busybox --list); do
	[ "$app" = busybox ] || ln -sf busybox "$root/bin/$app"
done
cp -a "$Q/stage/." "$root/"
rm -f "$root/MANIFEST"
install -m 755 "$ROOT/vmm/host-init" "$root/init"
cp "$Q/host/"*.ko "$root/lib/modules/"
cp "$Q/out/vmclock-preload.so" "$root/lib/"
cp "$Q/out/hostclock" "$root/bin/"
cp "$guest_bz" "$root/guest/bzImage"
cp "$Q/guest-initramfs.cpio.gz" "$root/guest/initramfs.cpio.gz"
(cd "$root" && find . | cpio -o -H newc --quiet | nice -n 19 gzip -1) >"$image"
say "host initramfs: $(du -h "$image" | cut -f1) ($(du -sh "$root" | cut -f1) unpacked)"

# As scripts/run-vm.sh boots the test kernel: one socket and tsc=reliable
# keep the inner kernel on the TSC; single-threaded TCG.
say "booting the emulated host (limit ${limit}s, nice -n 19); console: $log"
start=$(date +%s)
set +e
outer=("$Q/root/usr/bin/qemu-system-x86_64" -L "$Q/stage/usr/share/qemu")
[ "${OUTER_QEMU:-10}" = 10 ] || outer=(qemu-system-x86_64)
say "outer emulator: $("${outer[0]}" --version | head -1), ${OUTER_SMP:-1} CPU(s)"
nice -n 19 timeout --foreground -k 10 "$limit" "${outer[@]}" \
	-accel tcg,thread=single -cpu EPYC,+vgif -smp "${OUTER_SMP:-1},sockets=1" -m 4G \
	-nographic -no-reboot -nodefaults -serial stdio -display none \
	-kernel "$hostk" -initrd "$image" \
	-append "console=ttyS0 panic=-1 tsc=reliable kunit.enable=0 $*" </dev/null 2>&1 |
	sed -u 's/\r//g' | tee "$log" |
	grep --line-buffered -E 'qemu10-smoke:|vmclock-preload:|guest: |(WARNING|BUG|Oops|Kernel panic)' |
	sed -u 's/^/    /'
rc=${PIPESTATUS[0]}
set -e
say "emulated host ran $(( $(date +%s) - start )) s (QEMU status $rc)"

# Every check is one result: "ok|not ok e2e-MODE-ID # what it proves",
# appended to $SMOKE_RESULTS when set (scripts/e2e.sh, make test).
fail=0
results=${SMOKE_RESULTS:-/dev/null}
pass() { say "ok: $2"; echo "ok e2e-$mode-$1 # $2" >>"$results"; }
flunk() { warn "FAILED: $2"; echo "not ok e2e-$mode-$1 # $2" >>"$results"; fail=1; }
check() {
	local id=$1 what=$2 re=$3
	if grep -q -E "$re" "$log"; then pass "$id" "$what"; else flunk "$id" "$what"; fi
}
check completed "the run completed" 'qemu10-smoke: completed'
check registered "KVM_SET_VMCLOCK from inside QEMU 10 (preload)" 'vmclock-preload: KVM_SET_VMCLOCK .*: ok'
check ptp-clock "the guest driver registered a PTP clock" 'guest: dmesg: .*vmclock0: registered .*PTP'
check page-data "/dev/vmclock0 holds KVM's data (X86_TSC, TAI)" 'guest: vmclock: magic .*counter_id 1 \(X86_TSC\) time_type 1 \(TAI\)'
check pollhup "poll() on /dev/vmclock0 returns POLLHUP" 'guest: poll .*POLLHUP.*NOTIFICATION_PRESENT clear'
check ptp-in-bracket "PTP reads agree with the page (inside the rdtsc bracket)" 'guest: sample 0: ptp '
[ "$mode" != boot ] ||
	check reader-passed "every reader sample passed" 'guest: reader exit status 0'

# The host side (vmclock-preload's check thread, in every QEMU process): the
# page's time at the host TSC plus the vCPU's TSC offset against host
# CLOCK_TAI read around that TSC, within half the bracket plus 1 us.
host_check() {
	grep -a -o -E 'vmclock-preload: check [0-9]+: page - host CLOCK_TAI [-+0-9]+ ns, bracket [0-9]+ ns' "$log" |
		awk '{ d = $8 + 0; b = $11 + 0; n++; if (d < 0) d = -d
			if (d > worst) worst = d; if (d > b / 2 + 1000) bad++
			if (min == "" || b < min) min = b; if (b > max) max = b }
		END { printf "%d samples, worst |page - host CLOCK_TAI| %d ns, brackets %d-%d ns, %d outside\n", n, worst, min, max, bad
			exit !(n > 0 && !bad) }'
}
if summary=$(host_check); then
	pass host-tai "the page agrees with host CLOCK_TAI at the host TSC (within half the bracket + 1 us): $summary"
else
	flunk host-tai "the page agrees with host CLOCK_TAI at the host TSC (within half the bracket + 1 us): $summary"
fi
# The markers across the move: the guest's last on the source (S), the one
# QEMU's post_load wrote on the destination (Q, from the preload), and the
# guest's first new one (N).  Want Q = S + 1 and N = Q + 1.
marker_arithmetic() {
	local n s q
	n=$(grep -a -o -E '\[dst\] guest: sample [0-9]+: NEW disruption_marker [0-9]+ \(was [0-9]+\)' "$log" | head -1)
	q=$(grep -a -o -E '\[dst\] vmclock-preload: KVM_VMCLOCK_DISRUPTION: ok \(disruption_marker in guest memory before: [0-9]+' "$log" |
		head -1 | sed 's/.*: //')
	s=$(echo "$n" | sed -n 's/.*(was \([0-9]*\))/\1/p')
	n=$(echo "$n" | sed -n 's/.*NEW disruption_marker \([0-9]*\) .*/\1/p')
	echo "source ${s:-?}, QEMU's post_load ${q:-?}, guest after the move ${n:-?}"
	[ -n "$n" ] && [ -n "$s" ] && [ -n "$q" ] && [ "$q" = $((s + 1)) ] && [ "$n" = $((q + 1)) ]
}
case " $* " in
*" smoke.mode=migrate "*)
	check migrated "QEMU 10 migrated the VM (exec: through a FIFO)" 'qemu10-smoke: source: .*tatus: *completed'
	check dst-registered "the destination registered the vmclock again (preload)" '\[dst\] vmclock-preload: KVM_SET_VMCLOCK .*: ok'
	check new-marker "the guest saw a new disruption_marker after the move" '\[dst\] guest: sample [0-9]+: NEW disruption_marker'
	check dst-ptp "PTP reads on the destination agree with the page" '\[dst\] guest: sample [0-9]+: .*ptp .*page \['
	check dst-kvm-disruption "the destination also signalled the disruption through KVM (KVM_VMCLOCK_DISRUPTION)" '\[dst\] vmclock-preload: KVM_VMCLOCK_DISRUPTION: ok'
	# QEMU's post_load bump (in guest memory) and KVM's (the ioctl) both
	# reach the guest: its new marker is the source's + 2, and QEMU's + 1.
	if markers=$(marker_arithmetic); then
		pass both-disruptions "the guest's new disruption_marker counts QEMU's post_load bump and KVM_VMCLOCK_DISRUPTION: $markers"
	else
		flunk both-disruptions "the guest's new disruption_marker counts QEMU's post_load bump and KVM_VMCLOCK_DISRUPTION: $markers"
	fi
	;;
esac
# What the guest saw across the move: the last sample before the new
# disruption_marker and the first with it.  "realtime-ptp" is the guest's
# kvmclock-based CLOCK_REALTIME minus the driver's PTP (TAI) time; its change
# across the move is kvmclock's jump relative to the vmclock.
migration_summary() {
	# The two QEMU processes share the console: a line of one may be cut
	# by a line of the other, so split at every "[src] " / "[dst] " first.
	sed -E 's/\[(src|dst)\] /\n&/g' "$log" |
		grep -a -E '^\[(src|dst)\] guest: sample [0-9]+: ' | sed 's/^\[...\] //' |
		awk '
		/NEW disruption_marker/ && !seen { seen = 1; first = $0; rp_after = rp($0); next }
		!seen && /realtime-ptp/ { last = $0; rp_before = rp($0) }
		function rp(l,  m) { return match(l, /realtime-ptp -?[0-9]+/) ? substr(l, RSTART + 13, RLENGTH - 13) : "" }
		END {
			if (!seen) { print "no sample with a new disruption_marker"; exit }
			print "last sample before the move: " last
			print "first sample after it:       " first
			if (first ~ /failed/) print "the first read after the move FAILED"
			else if (rp_before != "" && rp_after != "")
				printf "kvmclock CLOCK_REALTIME moved %+.3f ms against the vmclock across the move\n", (rp_after - rp_before) / 1e6
		}'
}
if [ "$mode" = migrate ]; then
	migration_summary | while read -r l; do say "migration: $l"; done || true
fi

# smoke.mode=cs: the host's switches and the guest's reads on one time line,
# TAI seconds relative to the first switch.  A failed read carries the
# guest's CLOCK_REALTIME, turned into TAI with the realtime-ptp offset of the
# last good read before it (kvmclock may jump when the host leaves the TSC:
# tenths of a second of uncertainty for those).  Lines that the kernel's own
# console messages cut in two are left out.
cs_timeline() {
	grep -a -E 'host clocksource (switched|ntp daemon)|guest: sample [0-9]+: ' "$log" |
		awk '
		function str(l, re) { return match(l, re) ? substr(l, RSTART, RLENGTH) : "" }
		function num(l, re,  s) { s = str(l, re); sub(/.* /, "", s); return s + 0 }
		function add(what, when) { n++; ev[n] = what; t[n] = when; if (t0 == "" && what ~ /^host/) t0 = when }
		{
			# A console line may hold a guest sample cut by a host message.
			h = str($0, "host clocksource (switched (back )?to [a-z_]+|ntp daemon).*CLOCK_TAI [0-9.]+")
			g = str($0, "guest: sample [0-9]+: .*"); sub(/qemu10-smoke: .*/, "", g)
			if (h ~ /ntp daemon/) add("host: the NTP daemon sets the TAI offset and sync again", num(h, "CLOCK_TAI [0-9.]+"))
			else if (h != "") add("host: clocksource " str(h, "(back )?to [a-z_]+"), num(h, "CLOCK_TAI [0-9.]+"))
			if (g ~ / ptp [0-9].*realtime-ptp/) {
				off = num(g, "realtime-ptp [-0-9]+") / 1e9
				add("guest: read ok, " str(g, "status [A-Z]+"), num(g, " ptp [0-9.]+"))
			} else if (g ~ /failed.*realtime [0-9]/ && off != "")
				add("guest: read FAILED, " str(g, "page status [0-9]+ [(][A-Z]+[)]"), num(g, "realtime [0-9.]+") - off)
		}
		END { for (i = 1; i <= n; i++) printf "%+9.3f s  %s\n", t[i] - t0, ev[i] }' | sort -n
}

# smoke.mode=cs: reads fail while the host is off the TSC, and only then.
unreliable_read='PTP_SYS_OFFSET_EXTENDED failed: Invalid argument; page status 4 \(UNRELIABLE\)'
if [ "$mode" = cs ]; then
	check reads-before "reads succeed before the host leaves the TSC" 'guest: sample [0-4]: ptp .*status SYNCHRONIZED'
	check left-tsc "the host clocksource left the TSC" 'qemu10-smoke: host clocksource switched to (hpet|acpi_pm)'
	check unreliable "then the driver refuses reads (-EINVAL), the page says UNRELIABLE" "guest: sample [0-9]+: $unreliable_read"
	check back-on-tsc "the host clocksource is back on the TSC" 'qemu10-smoke: host clocksource switched back to tsc'
	check daemon "the NTP daemon set the TAI offset again" 'qemu10-smoke: host clocksource ntp daemon .*CLOCK_TAI'
	# The last sample is a good read: the clock came back once the host is
	# on the TSC and its NTP state is set again.
	last=$(cs_timeline | tail -n 1 || true)
	if echo "$last" | grep -q 'guest: read ok, status SYNCHRONIZED'; then
		pass reads-again "back on the TSC, reads succeed again (SYNCHRONIZED)"
	else
		flunk reads-again "back on the TSC, reads succeed again (SYNCHRONIZED)"
	fi
	cs_timeline | while read -r l; do say "cs: $l"; done || true
fi

# smoke.mode=slew: in each phase between two host rate changes, the rate of
# the guest's kvmclock CLOCK_REALTIME against the driver's PTP time (slope
# of realtime-ptp over PTP time, from the first to the last sample of the
# phase, a second clear of each change).  The vmclock follows the host's
# rate, so this is minus the host's frequency offset when kvmclock does not.
slew_rates() {
	grep -a -E 'host frequency set to|guest: sample [0-9]+: ' "$log" |
		awk '
		function str(l, re) { return match(l, re) ? substr(l, RSTART, RLENGTH) : "" }
		function num(l, re,  s) { s = str(l, re); sub(/.* /, "", s); return s + 0 }
		{
			h = str($0, "host frequency set to -?[0-9]+ ppm.*CLOCK_TAI [0-9.]+")
			g = str($0, "guest: sample [0-9]+: .*"); sub(/qemu10-smoke: .*/, "", g)
			if (h != "") { np++; at[np] = num(h, "CLOCK_TAI [0-9.]+"); ppm[np] = num(h, "to -?[0-9]+") }
			if (g ~ / ptp [0-9].*realtime-ptp/) { ns++; p[ns] = num(g, " ptp [0-9.]+"); r[ns] = num(g, "realtime-ptp [-0-9]+") }
		}
		END {
			at[0] = -1e18; ppm[0] = 0; at[np + 1] = 1e18
			for (k = 0; k <= np; k++) {
				a = ""; b = ""
				for (j = 1; j <= ns; j++)
					if (p[j] > at[k] + 1 && p[j] < at[k + 1] - 1) { if (a == "") a = j; b = j }
				if (a == "" || b == a || p[b] - p[a] < 3) { printf "host %+d ppm: too few samples\n", ppm[k]; continue }
				printf "host %+d ppm: kvmclock %+.2f ppm against the vmclock (%d samples over %.1f s)\n",
					ppm[k], (r[b] - r[a]) / (p[b] - p[a]) / 1e3, b - a + 1, p[b] - p[a]
			}
		}'
}
if [ "$mode" = slew ]; then
	rates=$(slew_rates || true)
	echo "$rates" | while read -r l; do say "slew: $l"; done
	check_rate() {
		local host=$1 lo=$2 hi=$3
		# Every phase at that host rate (the steady one comes twice).
		if echo "$rates" | awk -v h="$host" -v lo="$lo" -v hi="$hi" '
			$2 == h { seen = 1; if ($0 !~ /against the vmclock/) { bad = 1; next } v = $5 + 0; if (v < lo || v > hi) bad = 1 } END { exit !(seen && !bad) }'; then
			pass "rate$host" "host $host ppm: kvmclock against the vmclock in [$lo, $hi] ppm"
		else
			flunk "rate$host" "host $host ppm: kvmclock against the vmclock in [$lo, $hi] ppm"
		fi
	}
	check_rate +0 -5 5
	check_rate +100 -105 -95
	check_rate -100 95 105
fi

expected_failure='^$'
[ "$mode" = cs ] || [ "$mode" = demo ] && expected_failure=$unreliable_read
# No early-exiting reader in these pipelines: under pipefail, a grep killed
# by SIGPIPE would make a failure look like a pass.
bad=$(grep -a -E 'guest: .*(OUTSIDE|BACKWARDS|failed)' "$log" | grep -v -E "$expected_failure" || true)
if [ -n "$bad" ]; then
	flunk samples "every reader sample inside its bracket, none back, none failed (cs mode: but the UNRELIABLE refusals)"
else
	pass samples "every reader sample inside its bracket, none back, none failed (cs mode: but the UNRELIABLE refusals)"
fi
# As scripts/results.py reads the test host's console: the host kernel is
# the test kernel, with lockdep, KASAN, UBSAN and debug objects.
reports=$(grep -a -E '(WARNING|BUG|Oops|Kernel panic|KASAN:|UBSAN:|general protection fault|possible (circular|recursive) locking|inconsistent lock state|suspicious RCU usage|irq lock inversion|lock held when returning|DEBUG_LOCKS_WARN_ON)' "$log" | grep -v 'qemu10-smoke' || true)
if [ -n "$reports" ]; then
	echo "$reports" | sed -n 1,5p
	flunk no-reports "no kernel report (WARNING, BUG, Oops, panic, KASAN, UBSAN, lockdep) in the console"
else
	pass no-reports "no kernel report (WARNING, BUG, Oops, panic, KASAN, UBSAN, lockdep) in the console"
fi
[ "$fail" = 0 ] || die "qemu10 smoke test failed (console: $log)"
say "qemu10 smoke test passed"
