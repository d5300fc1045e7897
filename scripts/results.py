#!/usr/bin/env python3
"""Turn one "make test" run into KTAP and a one-line verdict.

Inputs: the results of the host-side checks (one "ok|not ok|skip NAME [# why]"
per line) and the console log of the emulated test host, which holds
 - KUnit's KTAP, printed by the kernel at boot (with printk timestamps),
 - the selftest results, printed by /init as "vmclock-test: ok N name ...",
 - every kernel report: a WARNING, BUG, Oops, KASAN or lockdep splat, or a
   panic, each of which fails the run, as does a run that never printed
   its completion marker (a crash or a hang).
More consoles (PREFIX=PATH: another boot of the emulated host) are read the same way,
their results named PREFIX.NAME.
Output: build/test-results.ktap and, last on stdout, "N passed, N failed,
N skipped", after a FAIL line for each failure, with the assertion a failed
selftest printed (so that a CI log says what failed). Exit status 1 if
anything failed.
"""
import os
import re
import sys

TS = re.compile(r'^\[\s*\d+\.\d+\]\s?')
# What a failed selftest said about its failure, by result name.
DETAILS = {}
RESULT = re.compile(r'^(not ok|ok) \d+ (\S+)(.*)$')
# Kernel reports that fail the run, whatever the tests said.
REPORTS = [
    (re.compile(r'WARNING: .* at |WARNING: CPU: '), 'kernel WARNING'),
    (re.compile(r'\bBUG: |kernel BUG at '), 'kernel BUG'),
    (re.compile(r'\bOops: |general protection fault'), 'kernel Oops'),
    (re.compile(r'KASAN: '), 'KASAN report'),
    (re.compile(r'possible circular locking|possible recursive locking|'
                r'inconsistent lock state|suspicious RCU usage|'
                r'INFO: possible irq lock inversion|lock held when returning|'
                r'DEBUG_LOCKS_WARN_ON|BUG: sleeping function'), 'lockdep report'),
    (re.compile(r'Kernel panic'), 'kernel panic'),
    (re.compile(r'UBSAN: '), 'UBSAN report'),
]


def known_reports(path):
    """(regex, reason) pairs from scripts/known-kernel-reports.txt."""
    known = []
    with open(path) as f:
        for line in f:
            if line.startswith('#') or not line.strip():
                continue
            rx, _, why = line.rstrip('\n').partition('\t')
            known.append((re.compile(rx), why.strip()))
    return known


def host_results(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.rstrip('\n')
            m = re.match(r'^(ok|not ok|skip) (\S+)(?: # (.*))?$', line)
            if m:
                out.append((m.group(1), 'host.' + m.group(2), m.group(3) or ''))
    return out


def console_results(path, known):
    """KUnit cases (suite.case) and selftests from the console log."""
    out, reports = [], []
    suite = None
    completed = False
    booted = False
    said = []
    with open(path, errors='replace') as f:
        lines = [l.rstrip('\n') for l in f]
    for i, raw in enumerate(lines):
        line = TS.sub('', raw)
        for rx, what in REPORTS:
            if rx.search(line):
                block = [TS.sub('', l) for l in lines[i:i + 12]]
                why = next((w for k, w in known if any(k.search(l) for l in block)), None)
                if why:
                    print('NOTE: known %s, not failing the run: %s (%s)' % (what, line.strip(), why))
                else:
                    reports.append((what, line.strip()))
        if line.startswith('vmclock-test: '):
            body = line[len('vmclock-test: '):]
            booted = True
            if body == 'completed':
                completed = True
            m = RESULT.match(body)
            if not m:
                said.append(body)
            if m:
                status, name, rest = m.groups()
                if status == 'not ok':
                    DETAILS[name] = failure_details(said)
                said = []
                # The list holds only tests that run here: a skip means
                # the test host lost something (no TSC clocksource...).
                if status == 'ok' and '# SKIP' in rest:
                    status, rest = 'not ok', 'unexpected ' + rest.lstrip(' #')
                out.append((status, 'selftest.' + name, rest.lstrip(' #')))
            continue
        # KUnit: "    # Subtest: suite", then cases at four spaces.
        m = re.match(r'^    # Subtest: (\S+)', line)
        if m:
            suite = m.group(1)
            continue
        m = re.match(r'^    (not ok|ok) \d+ (\S+)(.*)$', line)
        if m and suite:
            status, case, rest = m.groups()
            if status == 'ok' and '# SKIP' in rest:
                status = 'skip'
            out.append((status, 'kunit.%s.%s' % (suite, case), rest.lstrip(' #')))
    return out, reports, booted, completed


def failure_details(said):
    """The assertion a selftest printed before it failed, or its last lines."""
    for i, line in enumerate(said):
        if 'Test Assertion Failure' in line:
            return said[i + 1:i + 5]
    return said[-3:]


def console_checks(console, prefix, known):
    """The results of one boot of the emulated host, names under @prefix."""
    try:
        res, reports, booted, completed = console_results(console, known)
    except FileNotFoundError:
        res, reports, booted, completed = [], [], False, False
    out = [(s, prefix + n, w) for s, n, w in res]
    for s, n, w in res:
        if n.startswith('selftest.') and n[len('selftest.'):] in DETAILS:
            DETAILS[prefix + n] = DETAILS[n[len('selftest.'):]]
    out.append(('ok' if booted else 'not ok', prefix + 'host.boot',
                '' if booted else 'the test host never reached /init'))
    out.append(('ok' if completed else 'not ok', prefix + 'host.run-completed',
                '' if completed else 'no completion marker: crash or hang (see ' + console + ')'))
    seen = set()
    for what, line in reports:
        if (what, line) in seen:
            continue
        seen.add((what, line))
        print('FAIL: %s in the console log %s: %s' % (what, console, line))
    out.append(('not ok' if reports else 'ok', prefix + 'host.console-clean',
                '%d kernel report(s): %s' % (len(seen), ', '.join(sorted({w for w, _ in seen})))
                if reports else ''))
    return out


def main():
    """results.py HOST_RESULTS CONSOLE|- KTAP [PREFIX=CONSOLE...]"""
    host_file, console, ktap = sys.argv[1:4]
    results = host_results(host_file)
    known = known_reports(os.path.join(os.path.dirname(__file__), 'known-kernel-reports.txt'))
    if console != '-':
        results += console_checks(console, '', known)
        # More boots of the emulated host, if any: a missing
        # console is a failure like any other.
        for extra in sys.argv[4:]:
            prefix, _, path = extra.partition('=')
            results += console_checks(path, prefix + '.', known)
    with open(ktap, 'w') as f:
        f.write('KTAP version 1\n1..%d\n' % len(results))
        for i, (status, name, why) in enumerate(results, 1):
            if status == 'skip':
                f.write('ok %d %s # SKIP %s\n' % (i, name, why))
            else:
                f.write('%s %d %s%s\n' % (status, i, name, ' # ' + why if why else ''))
    passed = sum(1 for s, _, _ in results if s == 'ok')
    failed = [(n, w) for s, n, w in results if s == 'not ok']
    skipped = sum(1 for s, _, _ in results if s == 'skip')
    for name, why in failed:
        print('FAIL: %s%s' % (name, ': ' + why if why else ''))
        for line in DETAILS.get(name, []):
            print('      | %s' % line[:300])
    print('%d passed, %d failed, %d skipped' % (passed, len(failed), skipped))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
