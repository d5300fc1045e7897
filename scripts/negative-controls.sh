#!/usr/bin/env bash
# Negative controls: every test must be shown to fail when the behaviour it
# names is removed. For each control, break that one behaviour in a scratch
# worktree of build/linux (branch "vmclock", never changed), build the test
# kernel into its own O= directory, boot it with only the selftest that
# should catch the change, and check that the test (or the KUnit case) fails.
#   negative-controls.sh [--check] [NAME...]
# No NAME: the baseline (unmodified kernel, every test used must pass), then
# every control. NAME: only those ("baseline" is a name too). --check: only
# apply each breaking change and undo it (no build, no boot).
# One line per control, "CONTROL <name>: caught by <test> (as expected)" or
# "CONTROL <name>: NOT caught", then "N controls, N caught, N not caught";
# exit status 1 if any control is not caught.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

NC_TREE=$BUILD/negctl-tree   # scratch worktree of build/linux, detached
NC_OBJ=$BUILD/obj-negctl     # O= directory of its kernels
NC_ST=$BUILD/st-negctl       # its selftests
NC_OUT=$BUILD/negctl         # logs, initramfs images, consoles
VMCLOCK_C=arch/x86/kvm/vmclock.c
BRANCH=vmclock

# name|kind|what must fail|why this test catches it
# kind "selftest": selftests (space separated) that must report "not ok";
# kind "kunit": KUnit cases (of kvm-x86-vmclock or clock-line) that must fail
# (the kernel boots with x86/vmclock_abi_test only, which is fast).
CONTROLS=(
	"adopt-vmm-fields|selftest|x86/vmclock_migration_test x86/vmclock_test|KVM must take the VMM-owned fields (disruption_marker...) from guest memory a VMM wrote, not overwrite them"
	"cmpxchg-no-check|selftest|x86/vmclock_test x86/vmclock_migration_test|seq_count is claimed with compare-and-exchange so that a foreign writer racing with KVM is detected and the update retried"
	"one-writer|selftest|x86/vmclock_test|one vCPU (the test_and_set_bit_lock claim) publishes each change, the others wait for it"
	"no-stall|selftest|x86/vmclock_test|a write that fails (no memslot) marks the vmclock STALLED for the VMM and is not counted as done"
	"notify-always|selftest|x86/vmclock_test|F_NOTIFY signals the eventfd once per update written, never without one"
	"validity-offsets|selftest|x86/vmclock_test|vCPUs with different TSC offsets have no common guest TSC: the clock must turn UNRELIABLE"
	"counter-rounding|kunit|vmclock_test_ratio|the guest counter_value is rounded down to a tick and the time moved back by the fraction, so the line stays the host's"
	"maxerror-round-up|kunit|vmclock_test_ratio vmclock_test_error_rates|the maximum error rate is a bound: it must be rounded up when scaled"
	"dirty-log|selftest|x86/vmclock_test|KVM's writes to the vmclock page must reach the dirty log and dirty ring, or live migration loses them"
	"private-memory|selftest|x86/vmclock_test|KVM writes through the VMM's mapping, which private memory does not have: KVM_SET_VMCLOCK must refuse it"
	"clock-line-remainder|kunit|clock_line_test_on_line|the clock line's period is ntp_tick less xtime_remainder per cycle_interval, or the line drifts off CLOCK_REALTIME (tens of ppb)"
	"host-tsc-unstable|kunit|vmclock_test_guest_tsc|a host TSC the kernel marked unstable makes every vmclock UNRELIABLE, whatever the vCPUs agree on"
	"tsc-ratio-default|selftest|x86/tsc_msrs_test|a vCPU whose TSC rate is refused keeps the default scaling ratio, not 0 (a frozen guest TSC)"
	"masterclock-reeval|selftest|x86/kvm_clock_masterclock_test|a VM gets its master clock back when the host clocksource returns to the TSC"
	"auto-catch-up|selftest|x86/vmclock_auto_test|in auto mode a new line that starts behind what the guest may have read (a rate decrease) is started at the old line's time and slewed (kvm_vmclock_catch_up()), or the guest's clock goes back"
	"auto-entry-stale|selftest|x86/vmclock_auto_test|no vCPU enters the guest with an AUTO vmclock older than the host's clock line: kvm_vcpu_exit_request() cancels the entry, the workqueue that kicks vCPUs comes later"
	"auto-failed-write|selftest|x86/vmclock_auto_test|after a failed write, the next line in auto mode cannot be checked against guest memory and must not claim TIME_MONOTONIC"
	"auto-failed-write-reregister|selftest|x86/vmclock_auto_test|a new registration at the place of a failed write is no fresh start: its first line must not claim TIME_MONOTONIC either"
	"fuzz-page-cross|selftest|x86/vmclock_fuzz_test|a vmclock must lie in one page (KVM writes it through one mapping): the fuzzer's model predicts EINVAL for every registration that crosses one"
	"fuzz-host-leap|selftest|x86/vmclock_fuzz_test|KVM_SET_VMCLOCK_HOST refuses a leap_indicator the ABI does not define (EINVAL): the fuzzer's random host clocks hit it"
	"auto-destroy-slew|selftest|x86/vmclock_auto_test|a VM destroyed while its line is slewed takes the work that ends the slew with it (freeing a pending timer is a WARN with object debugging)"
	"auto-gentle-slew|kunit|vmclock_test_catch_up|a line a microsecond behind or less is slewed gently (32 s) and replaced only once as far past the NTP line, so that a rate decrease costs one update, not two"
	"races-set-busy|selftest|x86/vmclock_test|a registration may meet an update that is still pending: it must not fail (EBUSY is no documented error); the races test (vmclock_test -r alone) meets one within its rounds"
	"clock-line-tighten|kunit|clock_line_test_chrony clock_line_test_changes|tighter error bounds and new estimates wait for the next rate change (64 s at most): chrony sets them right after each frequency change, which would double the updates"
)
# What the baseline boots: every selftest the controls use.
BASELINE_TESTS="x86/vmclock_abi_test x86/vmclock_fuzz_test x86/vmclock_test x86/vmclock_migration_test x86/tsc_msrs_test x86/kvm_clock_masterclock_test x86/vmclock_auto_test"

export CCACHE_DIR=${CCACHE_DIR:-$BUILD/ccache}

# Replace the one occurrence of the text OLD (multi-line, exact) in FILE of
# the scratch tree by NEW; fail loudly unless OLD occurs exactly once.
replace_once() {
	local rc=0
	python3 - "$NC_TREE/$1" "$2" "$3" <<-'EOF' || rc=$?
	import sys
	path, old, new = sys.argv[1:4]
	text = open(path).read()
	n = text.count(old)
	if n != 1:
	    sys.exit("%s: the text to replace occurs %d times, expected once:\n%s" % (path, n, old))
	open(path, "w").write(text.replace(old, new))
	EOF
	[ "$rc" = 0 ] || die "a breaking change does not apply to $1"
}

# The breaking changes, one function per control, applied to $NC_TREE.

# kvm_vmclock_try_write() never adopts what guest memory holds.
break_adopt-vmm-fields() {
	replace_once "$VMCLOCK_C" '		r = kvm_vmclock_adopt(kvm, vc);
		if (r)
			return r;
' '		/* NEGATIVE CONTROL: the VMM-owned fields are not adopted */
'
}

# seq_count is written with a plain store that always succeeds.
break_cmpxchg-no-check() {
	replace_once "$VMCLOCK_C" '	r = __try_cmpxchg_user(seq, old, new, efault);
	return r > 0 ? -EAGAIN : r;' '	/* NEGATIVE CONTROL: a plain store, no check of the old value */
	r = put_user(new, seq);
	return r ? -EFAULT : 0;'
}

# No claim: every vCPU with the request publishes.
break_one-writer() {
	replace_once "$VMCLOCK_C" '	if (test_and_set_bit_lock(0, &vc->writing)) {
		kvm_make_request(KVM_REQ_VMCLOCK_UPDATE, vcpu);
		return;
	}

' '	/* NEGATIVE CONTROL: no test_and_set_bit_lock() claim */
'
	replace_once "$VMCLOCK_C" '		kvm_vmclock_publish(vcpu, req);

	clear_bit_unlock(0, &vc->writing);
' '		kvm_vmclock_publish(vcpu, req);
'
}

# A write that failed is taken as done: no STALLED, no write_failures.
break_no-stall() {
	replace_once "$VMCLOCK_C" '	if (r) {
		vc->written_valid = false;
		kvm_vmclock_stall(kvm, vc, req);
		goto out;
	}' '	if (r) {
		vc->written_valid = false;
		goto done;	/* NEGATIVE CONTROL: not stalled */
	}'
}

# The eventfd is signalled on every KVM_REQ_VMCLOCK_UPDATE, written or not.
break_notify-always() {
	replace_once "$VMCLOCK_C" '		kvm_vmclock_publish(vcpu, req);

	clear_bit_unlock(0, &vc->writing);' '		kvm_vmclock_publish(vcpu, req);

	/* NEGATIVE CONTROL: signalled whether or not an update was written */
	spin_lock(&vc->lock);
	if (vc->notify)
		eventfd_signal(vc->notify);
	spin_unlock(&vc->lock);

	clear_bit_unlock(0, &vc->writing);'
}

# Only the ratios must agree between vCPUs, not the offsets.
break_validity-offsets() {
	replace_once "$VMCLOCK_C" \
		'	    (g->vcpus && (offset != g->offset || ratio != g->ratio)))' \
		'	    (g->vcpus && ratio != g->ratio))	/* NEGATIVE CONTROL */'
}

# The time at the rounded-down guest counter_value is not moved back.
break_counter-rounding() {
	replace_once "$VMCLOCK_C" '	kvm_vmclock_set_time(guest, time - back);' \
		'	kvm_vmclock_set_time(guest, time);	/* NEGATIVE CONTROL */'
}

# The maximum error rate is rounded down like the estimate.
break_maxerror-round-up() {
	replace_once "$VMCLOCK_C" '	maxerr = vmclock_scale_up(maxerr, ratio, t);' \
		'	maxerr = vmclock_scale(maxerr, ratio, t);	/* NEGATIVE CONTROL */'
}

# The page KVM wrote is not marked dirty.
break_dirty-log() {
	replace_once "$VMCLOCK_C" '	/* Whatever the page holds now goes into the dirty log. */
	mark_page_dirty_in_slot(kvm, vc->ghc.memslot, gpa_to_gfn(vc->ghc.gpa));
' '	/* NEGATIVE CONTROL: not dirty logged */
'
}

# A gpa in private memory is accepted.
break_private-memory() {
	replace_once "$VMCLOCK_C" '	if (kvm_mem_is_private(kvm, gpa_to_gfn(gpa)))
		r = -EINVAL;
	else if (kvm_gfn_to_hva_cache_init(kvm, &ghc, gpa, size))' \
		'	/* NEGATIVE CONTROL: no kvm_mem_is_private() check */
	if (kvm_gfn_to_hva_cache_init(kvm, &ghc, gpa, size))'
}

# A registration may cross a page (the fuzzer must see success, not EINVAL).
break_fuzz-page-cross() {
	replace_once "$VMCLOCK_C" '	    offset_in_page(cfg->gpa) + cfg->size > PAGE_SIZE)' \
		'	    offset_in_page(cfg->gpa) + cfg->size > 2 * PAGE_SIZE) /* NEGATIVE CONTROL */'
}

# One leap_indicator value past the ABI's last is taken.
break_fuzz-host-leap() {
	replace_once "$VMCLOCK_C" '	    in->leap_indicator > VMCLOCK_LEAP_POST_NEG ||' \
		'	    in->leap_indicator > VMCLOCK_LEAP_POST_NEG + 1 || /* NEGATIVE CONTROL */'
}

# The host TSC's stability is not looked at.
break_host-tsc-unstable() {
	replace_once "$VMCLOCK_C" '	return !host_tsc_unstable && g->vcpus && !g->mismatch;' \
		'	return g->vcpus && !g->mismatch;	/* NEGATIVE CONTROL */'
}

# The clock line's period forgets the rounding of cycle_interval.
break_clock-line-remainder() {
	replace_once kernel/time/clock_line.c '	u64 num = tk->ntp_tick - ((u64)tk->xtime_remainder << tk->ntp_error_shift);' \
		'	u64 num = tk->ntp_tick;	/* NEGATIVE CONTROL: xtime_remainder omitted */'
}

# Stock 7.2: a refused TSC rate leaves a new vCPU's scaling ratio at 0.
break_tsc-ratio-default() {
	replace_once arch/x86/kvm/x86.c '			kvm_vcpu_write_tsc_multiplier(vcpu, kvm_caps.default_tsc_scaling_ratio);
			return -1;' '			/* NEGATIVE CONTROL: the ratio stays as it was */
			return -1;'
}

# Stock 7.2: the master clock is only re-evaluated when the host leaves the TSC.
break_masterclock-reeval() {
	replace_once arch/x86/kvm/x86.c '	if ((!is_tsc && atomic_read(&kvm_guest_has_master_clock) != 0) ||
	    (is_tsc && !was_tsc))' '	/* NEGATIVE CONTROL: nothing happens when the host returns to the TSC */
	if (!is_tsc && atomic_read(&kvm_guest_has_master_clock) != 0)'
}

# Auto mode: the new line is published as it is, even behind the old one.
break_auto-catch-up() {
	replace_once "$VMCLOCK_C" '		prev->slew_ns = kvm_vmclock_catch_up(prev->clk, clk,
						     kvm_read_l1_tsc(vcpu, rdtsc()));' \
		'		prev->slew_ns = 0;	/* NEGATIVE CONTROL: no kvm_vmclock_catch_up() */'
}

# Auto mode: no check at guest entry, only the workqueue's requests.
break_auto-entry-stale() {
	replace_once arch/x86/kvm/vmclock.h '	return static_branch_unlikely(&kvm_vmclock_auto_key) &&
	       READ_ONCE(vcpu->kvm->arch.vmclock.mode) == KVM_VMCLOCK_MODE_AUTO &&
	       kvm_vmclock_auto_stale(vcpu);' \
		'	return false;	/* NEGATIVE CONTROL: no check at guest entry */'
}

# Auto mode: TIME_MONOTONIC after a failed write, as if the write had been done.
break_auto-failed-write() {
	replace_once "$VMCLOCK_C" '	return vc->written_valid && vc->auto_steps == rec->steps &&' \
		'	return /* NEGATIVE CONTROL: failed writes ignored */ vc->auto_steps == rec->steps &&'
}

# Auto mode: a new registration always starts monotonic.
break_auto-failed-write-reregister() {
	replace_once "$VMCLOCK_C" '		return vc->written_valid || !vc->seq_known;' \
		'		return true;	/* NEGATIVE CONTROL: a failed write before is ignored */'
}

# Auto mode: the slew's end is not cancelled when the VM goes.
break_auto-destroy-slew() {
	replace_once "$VMCLOCK_C" '	cancel_delayed_work_sync(&kvm->arch.vmclock.slew_work);
}' \
		'	/* NEGATIVE CONTROL: slew_work left pending */
}'
}

# Every catch-up takes the two-second slew and its second update.
break_auto-gentle-slew() {
	replace_once "$VMCLOCK_C" '	gentle = ns <= VMCLOCK_AUTO_SLEW_GENTLE_MAX_NS;' \
		'	gentle = ns > 2 * VMCLOCK_AUTO_MAX_BEHIND_NS; /* NEGATIVE CONTROL */'
}

# A registration refuses while an update is pending.
break_races-set-busy() {
	replace_once "$VMCLOCK_C" '	if (copy_from_user(&cfg, argp, sizeof(cfg)))
		return -EFAULT;

	r = kvm_vmclock_check_config(&cfg);' '	if (copy_from_user(&cfg, argp, sizeof(cfg)))
		return -EFAULT;
	/* NEGATIVE CONTROL: busy while an update is pending */
	if (vc->mode && atomic64_read(&vc->update_req) != READ_ONCE(vc->update_done))
		return -EBUSY;

	r = kvm_vmclock_check_config(&cfg);'
}

# Tighter bounds are published on their own, at once.
break_clock-line-tighten() {
	replace_once kernel/time/clock_line.c '		(change == CLOCK_LINE_TIGHTER && !clock_line_tighten_now(w, tk))) &&' \
		'		(change == CLOCK_LINE_TIGHTER && !clock_line_tighten_now(w, tk) && 0)) && /* NEGATIVE CONTROL */'
}

break_baseline() { :; }

# The scratch worktree, at the vmclock branch, clean. Only this worktree's
# HEAD (detached) and files change; the branch and build/linux never do.
reset_tree() {
	[ "$(realpath -m "$NC_TREE")" != "$(realpath -m "$TREE")" ] || die "the scratch tree is build/linux"
	if [ ! -e "$NC_TREE/.git" ]; then
		say "creating the scratch worktree $NC_TREE (detached at $BRANCH)"
		git -C "$TREE" worktree add --detach "$NC_TREE" "$BRANCH" >/dev/null 2>&1 ||
			die "git worktree add $NC_TREE $BRANCH failed"
	fi
	git -C "$NC_TREE" checkout -q -f --detach "$BRANCH"
	git -C "$NC_TREE" clean -q -fdx
	[ "$(git -C "$NC_TREE" rev-parse HEAD)" = "$(git -C "$TREE" rev-parse "$BRANCH")" ] ||
		die "the scratch tree is not at $BRANCH"
	[ -z "$(git -C "$NC_TREE" status --porcelain)" ] || die "the scratch tree is not clean"
}

# Apply the breaking change of control $1 and show it; fail if nothing changed.
break_tree() {
	local name=$1
	"break_$name" || die "$name: the breaking change does not apply to $VMCLOCK_C"
	if [ "$name" = baseline ]; then
		[ -z "$(git -C "$NC_TREE" status --porcelain)" ] || die "baseline: the tree is not clean"
		return 0
	fi
	git -C "$NC_TREE" diff --quiet && die "$name: the breaking change changed nothing"
	git -C "$NC_TREE" diff --stat | tail -1 | sed "s/^/    $name:/" >&2
	git -C "$NC_TREE" diff >"$NC_OUT/$name.diff"
}

build_kernel() {
	local name=$1 log=$NC_OUT/$1.kernel.log start
	start=$(date +%s)
	say "$name: building the kernel into $(basename "$NC_OBJ") (log: ${log#"$ROOT"/})"
	if ! "$ROOT/scripts/kernel.sh" "$NC_TREE" "$NC_OBJ" >"$log" 2>&1; then
		grep -E 'error|Error' "$log" | head -10 >&2 || tail -20 "$log" >&2
		die "$name: the kernel does not build (log: $log)"
	fi
	# The change must be in the kvm.ko that boots.
	[ "$NC_OBJ/arch/x86/kvm/kvm.ko" -nt "$NC_TREE/$VMCLOCK_C" ] ||
		die "$name: kvm.ko is older than the changed $VMCLOCK_C"
	say "$name: kernel built in $(( $(date +%s) - start )) s"
}

# Build the selftests $2... into $NC_ST, headers from $NC_OBJ.
build_selftests() {
	local name=$1 log=$NC_OUT/$1.selftests.log t targets=()
	shift
	for t in "$@"; do
		[ -f "$NC_TREE/tools/testing/selftests/kvm/$t.c" ] || die "$name: no selftest $t in the tree"
		grep -qE "^${t}[[:space:]]" "$ROOT/scripts/selftests.list" || die "$name: $t is not in scripts/selftests.list"
		targets+=("$NC_ST/$t")
	done
	say "$name: building $* (log: ${log#"$ROOT"/})"
	mkdir -p "$NC_ST"
	if ! { make -s -C "$NC_TREE" O="$NC_OBJ" headers_install &&
		make -s -C "$NC_TREE/tools/testing/selftests/kvm" OUTPUT="$NC_ST" CC="ccache gcc" \
			-j"$JOBS" KHDR_INCLUDES="-isystem $NC_OBJ/usr/include" \
			LINUX_HDR_PATH="$NC_OBJ/usr/include/" "${targets[@]}"; } >"$log" 2>&1; then
		grep -E 'error' "$log" | head -10 >&2 || tail -20 "$log" >&2
		die "$name: the selftests do not build (log: $log)"
	fi
}

# Pack an initramfs with the selftests $2... only, and boot it.
boot() {
	local name=$1 pack=$NC_OUT/$1.tests t
	shift
	rm -rf "$pack"
	for t in "$@"; do
		mkdir -p "$pack/$(dirname "$t")"
		cp "$NC_ST/$t" "$pack/$t"
	done
	OBJ_DIR=$NC_OBJ "$ROOT/scripts/initramfs.sh" "$pack" "$NC_OUT/$name.cpio.gz"
	BZIMAGE=$NC_OBJ/arch/x86/boot/bzImage INITRAMFS=$NC_OUT/$name.cpio.gz VM_TIMEOUT=600 \
		"$ROOT/scripts/run-vm.sh" "$NC_OUT/$name.console.log"
}

# What the console says. "selftest LOG TEST": ok, not-ok or none, then on
# further lines where a failed test failed. "kunit LOG": per KUnit case of
# kvm-x86-vmclock and clock-line "CASE ok|not-ok", then the first failure messages.
analyze() {
	python3 - "$@" <<-'EOF'
	import re, sys
	kind, log = sys.argv[1:3]
	lines = open(log, errors="replace").read().splitlines()
	if kind == "selftest":
	    test = sys.argv[3]
	    res = re.compile(r"vmclock-test: (not )?ok \d+ (\S+)")
	    block, status = [], "none"
	    for l in lines:
	        m = res.search(l)
	        if m and not l.split("vmclock-test: ", 1)[1].startswith("#"):
	            if m.group(2) == test:
	                status = "not-ok" if m.group(1) else "ok"
	                print(status, l.split("vmclock-test: ", 1)[1])
	                break
	            block = []
	            continue
	        if "vmclock-test: # " in l:
	            block.append(l.split("vmclock-test: # ", 1)[1])
	    if status == "none":
	        print("none")
	    if status != "not-ok":
	        sys.exit(0)
	    last_ok = None
	    for b in block:
	        m = re.match(r"ok (\d+) (.*)", b)
	        if m:
	            last_ok = m
	        if b.startswith("==== Test Assertion Failure"):
	            break
	    if last_ok:
	        print("failed after sub-test %s passed (%s)" % (last_ok.group(1), last_ok.group(2).strip()))
	    else:
	        print("failed before its first sub-test passed")
	    for i, b in enumerate(block):
	        if b.startswith("==== Test Assertion Failure"):
	            loc = block[i + 1].strip() if i + 1 < len(block) else "?"
	            msg = next((x.strip() for x in block[i + 2:]
	                        if re.match(r"  \S", x) and not x.strip().startswith(("pid=", "("))), "")
	            print("assertion %s" % loc)
	            if msg:
	                print("  %s" % msg[:300])
	            break
	    else:
	        tail = [b for b in block if b.strip()][-3:]
	        for b in tail:
	            print("  %s" % b[:300])
	else:
	    case = re.compile(r"\]\s+(not )?ok \d+ ((?:vmclock|clock_line)_test_\w+)(\s|$)")
	    failed = re.compile(r"# (?:vmclock|clock_line)_test_\w+: (EXPECTATION|ASSERTION) FAILED")
	    nfail, first = 0, None
	    for i, l in enumerate(lines):
	        m = case.search(l)
	        if m:
	            print(m.group(2), "not-ok" if m.group(1) else "ok")
	        if failed.search(l):
	            nfail += 1
	            if first is None:
	                first = i
	    if first is not None:
	        print("# %d failed expectations; the first:" % nfail)
	        for l in lines[first:first + 4]:
	            print("#   " + l.split("] ", 1)[-1].strip()[:200])
	EOF
}

# Kernel reports in a console: worth a note, whatever the tests said.
kernel_reports() {
	grep -E 'WARNING:|BUG:|Oops|Kernel panic|possible recursive locking|circular locking|UBSAN' "$1" | head -3 || true
}

RESULTS=()
CAUGHT=0
MISSED=0

record() {
	RESULTS+=("$1")
	printf '%s\n' "$1"
}

note() { printf '    %s\n' "$*"; }

run_control() {
	local entry=$1 name kind targets why log t out r status caught=() passed=() boots
	IFS='|' read -r name kind targets why <<<"$entry"
	local start
	start=$(date +%s)
	say "===== $name: $why"
	reset_tree
	break_tree "$name"
	build_kernel "$name"
	if [ "$kind" = kunit ]; then
		boots="x86/vmclock_abi_test"
	else
		boots=$targets
	fi
	# shellcheck disable=SC2086
	build_selftests "$name" $boots
	# shellcheck disable=SC2086
	boot "$name" $boots
	log=$NC_OUT/$name.console.log
	grep -q 'vmclock-test: completed' "$log" ||
		note "$name: the emulated host did not complete its run (crash or hang): see $log"
	r=$(kernel_reports "$log")
	[ -z "$r" ] || note "$name: kernel reports in the console: $(head -1 <<<"$r")"

	if [ "$kind" = kunit ]; then
		out=$(analyze kunit "$log")
		grep -q ' ok$\| not-ok$' <<<"$out" ||
			note "$name: no KUnit result of kvm-x86-vmclock or clock-line in the console"
		for t in $targets; do
			status=$(awk -v c="$t" '$1 == c { print $2; exit }' <<<"$out")
			if [ "$status" = not-ok ]; then caught+=("KUnit $t"); else passed+=("KUnit $t: ${status:-no result}"); fi
		done
		r=$(awk '$2 == "not-ok" { print $1 }' <<<"$out" | paste -sd' ')
		note "$name: failing KUnit cases: ${r:-none}"
		grep '^# ' <<<"$out" | sed "s/^# /$name: /" | while read -r l; do note "$l"; done
	else
		for t in $targets; do
			out=$(analyze selftest "$log" "$t")
			status=$(head -1 <<<"$out" | cut -d' ' -f1)
			if [ "$status" = not-ok ]; then
				caught+=("$t")
				tail -n +2 <<<"$out" | sed "s|^|$t |" | while read -r l; do note "$l"; done
			else
				passed+=("$t: $(head -1 <<<"$out")")
			fi
		done
	fi

	if [ "$name" = baseline ]; then
		# Nothing broken: everything must pass.
		[ ${#caught[@]} = 0 ] ||
			die "baseline: the unmodified kernel fails ${caught[*]}; the controls would prove nothing (see $log)"
		for t in "${passed[@]}"; do
			[[ $t == *": ok "* ]] || die "baseline: $t (see $log)"
		done
		out=$(analyze kunit "$log")
		grep -q ' not-ok$' <<<"$out" && die "baseline: KUnit cases fail on the unmodified kernel (see $log)"
		grep -q ' ok$' <<<"$out" || die "baseline: no KUnit result in the console (see $log)"
		say "baseline: $BASELINE_TESTS and KUnit kvm-x86-vmclock and clock-line pass on the unmodified kernel ($(( $(date +%s) - start )) s)"
		return 0
	fi

	if [ ${#caught[@]} -gt 0 ]; then
		CAUGHT=$((CAUGHT + 1))
		record "CONTROL $name: caught by $(printf '%s, ' "${caught[@]}" | sed 's/, $//') (as expected)"
	else
		MISSED=$((MISSED + 1))
		record "CONTROL $name: NOT caught"
	fi
	for t in "${passed[@]}"; do
		note "$name: did not fail: $t"
	done
	say "$name: done in $(( $(date +%s) - start )) s"
}

check_only=0
if [ "${1:-}" = --check ]; then
	check_only=1
	shift
fi

# The controls to run, by name.
selected=()
if [ $# = 0 ]; then
	selected=("baseline|selftest|$BASELINE_TESTS|the unmodified kernel: every test used here passes" "${CONTROLS[@]}")
else
	for want in "$@"; do
		if [ "$want" = baseline ]; then
			selected+=("baseline|selftest|$BASELINE_TESTS|the unmodified kernel: every test used here passes")
			continue
		fi
		found=
		for entry in "${CONTROLS[@]}"; do
			[ "${entry%%|*}" = "$want" ] && { selected+=("$entry"); found=1; }
		done
		[ -n "$found" ] || die "no control named $want; controls: $(printf '%s\n' "${CONTROLS[@]}" | cut -d'|' -f1 | paste -sd' ')"
	done
fi

mkdir -p "$NC_OUT"
[ -d "$TREE/.git" ] || die "no build/linux: run 'make tree' first"
git -C "$TREE" rev-parse -q --verify "$BRANCH" >/dev/null || die "build/linux has no branch $BRANCH"

if [ "$check_only" = 1 ]; then
	for entry in "${selected[@]}"; do
		name=${entry%%|*}
		reset_tree
		break_tree "$name"
		say "$name: the breaking change applies"
	done
	reset_tree
	exit 0
fi

t0=$(date +%s)
for entry in "${selected[@]}"; do
	run_control "$entry"
done
reset_tree

echo
say "negative controls done in $(( $(date +%s) - t0 )) s; logs in ${NC_OUT#"$ROOT"/}"
for line in ${RESULTS[@]+"${RESULTS[@]}"}; do
	printf '%s\n' "$line"
done
echo "$((CAUGHT + MISSED)) controls, $CAUGHT caught, $MISSED not caught"
[ "$MISSED" = 0 ]
