#!/usr/bin/env python3
"""Print make demo's timeline from the emulated host's console.

Input: the console of one "smoke.mode=demo" run (scripts/qemu10-smoke.sh,
vmm/host-init): the host's events, each with its CLOCK_TAI ("qemu10-smoke:
demo: EVENT; CLOCK_TAI S.N"), the guest reader's samples, prefixed [src] or
[dst] by QEMU process ("guest: sample N: ptp S.N TAI; page [a, b] ns around
it ...; realtime-ptp D ns; marker M status S seq Q", or a refused read), and
the preload's host-side checks of the page against host CLOCK_TAI.  "PTP in
bracket": reads whose PTP time lies between the page's time read just
before and just after it, and the widest such bracket.
Output: one line per phase between two events: the guest's reads (good,
refused), the PTP clock against the page the guest reads around it, the
disruption markers seen, and how the guest's kvmclock-based CLOCK_REALTIME
moved against the vmclock (ppm within the phase, a jump across the move).
Exit status 1 if the console has no events or no samples.
"""
import re
import sys

EVENT = re.compile(r'qemu10-smoke: demo: ([^;]+); CLOCK_TAI (\d+)\.(\d+)')
SOURCE = re.compile(r'qemu10-smoke: demo: source: (.*)')
SAMPLE = re.compile(r'^(?:\[(src|dst)\] )?guest: sample (\d+): (.*)$')
GOOD = re.compile(r'ptp (\d+)\.(\d+) TAI; page \[([-+]\d+), ([-+]\d+)\] ns around it '
                  r'\(bracket (\d+) ns\).*realtime-ptp ([-+]\d+) ns; marker (\d+) status (\S+)')
REFUSED = re.compile(r'PTP_SYS_OFFSET_EXTENDED failed: ([^;]+); page status \d+ \((\w+)\).*'
                     r'realtime (\d+)\.(\d+)')
CHECK = re.compile(r'vmclock-preload: check \d+: page - host CLOCK_TAI ([-+]\d+) ns, bracket (\d+) ns')
BOOTED = re.compile(r'^(?:\[src\] )?guest: booted .* after ([0-9.]+) s')


def parse(path):
    events, samples, checks, notes, boot = [], [], [], [], None
    last_offset = None      # realtime - ptp of the last good read
    with open(path, errors='replace') as f:
        for raw in f:
            line = raw.rstrip('\n').replace('\r', '').strip()
            m = EVENT.search(line)
            if m:
                events.append((int(m.group(2)) * 10**9 + int(m.group(3)), m.group(1)))
                continue
            m = SOURCE.search(line)
            if m:
                notes.append(m.group(1).strip())
                continue
            m = CHECK.search(line)
            if m:
                checks.append((int(m.group(1)), int(m.group(2))))
                continue
            m = BOOTED.search(line)
            if m and boot is None:
                boot = float(m.group(1))
            m = SAMPLE.match(line)
            if not m:
                continue
            vm, body = m.group(1) or 'src', m.group(3)
            g = GOOD.search(body)
            if g:
                tai = int(g.group(1)) * 10**9 + int(g.group(2))
                offset = int(g.group(6))
                last_offset = offset
                samples.append(dict(vm=vm, tai=tai, ok=True, lo=int(g.group(3)),
                                    hi=int(g.group(4)), offset=offset,
                                    marker=int(g.group(7)), status=g.group(8)))
                continue
            r = REFUSED.search(body)
            if r and last_offset is not None:
                # Placed in time by the guest's CLOCK_REALTIME and the last
                # good read's realtime - TAI.
                rt = int(r.group(3)) * 10**9 + int(r.group(4))
                samples.append(dict(vm=vm, tai=rt - last_offset, ok=False,
                                    why='%s, page %s' % (r.group(1), r.group(2))))
    return events, samples, checks, notes, boot


def split_by_marker(samples):
    """Good reads before and after the move: by disruption marker, not by
    the [src]/[dst] prefix, as a line the guest printed before the move may
    reach the console through the destination's serial port."""
    good = [s for s in samples if s['ok']]
    if not good:
        return
    first = good[0]['marker']
    for s in samples:
        if s['ok']:
            s['vm'] = 'src' if s['marker'] == first else 'dst'


def ppm(first, last):
    dt = last['tai'] - first['tai']
    if dt <= 0:
        return None
    return (last['offset'] - first['offset']) / dt * 1e6


def main():
    events, samples, checks, notes, boot = parse(sys.argv[1])
    split_by_marker(samples)
    if not events or not samples:
        print('demo: no timeline in %s (%d events, %d samples)' % (sys.argv[1], len(events), len(samples)))
        return 1
    t0 = events[0][0]
    print('   t (s)  phase (host event)                        guest reads            '
          'PTP in bracket    markers   kvmclock vs vmclock')
    prev_last = None
    for i, (tai, name) in enumerate(events):
        end = events[i + 1][0] if i + 1 < len(events) else None
        if end is None:
            print('  %6.1f  %s' % ((tai - t0) / 1e9, name))
            break
        phase = [s for s in samples if tai <= s['tai'] < end]
        good = [s for s in phase if s['ok']]
        refused = [s for s in phase if not s['ok']]
        reads = '%d ok' % len(good) + (', %d refused' % len(refused) if refused else '')
        if refused:
            reads += ' (%s)' % refused[0]['why']
        inside = '-'
        if good:
            n_in = sum(1 for s in good if s['lo'] <= 0 <= s['hi'])
            inside = '%d/%d (<%d us)' % (n_in, len(good),
                                       max(s['hi'] - s['lo'] for s in good) // 1000 + 1)
        markers = ','.join(str(m) for m in sorted({s['marker'] for s in good})) or '-'
        drift = ''
        for vm in ('src', 'dst'):
            g = [s for s in good if s['vm'] == vm]
            if len(g) >= 2 and ppm(g[0], g[-1]) is not None:
                drift += '%s %+.2f ppm ' % (vm, ppm(g[0], g[-1]))
        print('  %6.1f  %-40s  %-22s %-17s %-9s %s' %
              ((tai - t0) / 1e9, name, reads, inside, markers, drift.strip()))
        # Across the move: the last read before it, the first after it.
        if name.startswith('live migration done'):
            src = [s for s in samples if s['vm'] == 'src' and s['ok']]
            dst = [s for s in samples if s['vm'] == 'dst' and s['ok']]
            if src and dst:
                a, b = src[-1], dst[0]
                lost = sum(1 for s in samples if not s['ok'] and a['tai'] < s['tai'] < b['tai'])
                print('          move: the last read with marker %d and the first with the new marker %d '
                      'are %.2f s apart (reads every 0.2 s; QEMU: %s); %d read(s) refused between; '
                      'kvmclock vs vmclock jumped by %+.3f ms across it'
                      % (a['marker'], b['marker'], (b['tai'] - a['tai']) / 1e9,
                         ', '.join(n for n in notes if 'downtime:' in n) or 'downtime unknown',
                         lost, (b['offset'] - a['offset']) / 1e6))
    if checks:
        worst = max(checks, key=lambda c: abs(c[0]))
        print('page vs host CLOCK_TAI at the host TSC (preload, %d checks): worst %+d ns (bracket %d ns)'
              % (len(checks), worst[0], worst[1]))
    if boot is not None:
        print('nested guest boot (QEMU 10, qboot, direct kernel boot): /init at %.1f s of guest uptime' % boot)
    return 0


if __name__ == '__main__':
    sys.exit(main())
