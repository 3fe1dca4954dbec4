#!/usr/bin/env python3
"""Where a decode step's GPU time goes, kernel by kernel, from an Nsight Compute CSV of gpu__time_duration
(scripts/gpu/ncu-step.sh writes one). The launches are cut into passes at each argmax_rows (a pass ends with its
greedy picks); for each pass: its kernels in launch order with their durations (µs, under the profiler: serialized,
no overlap between launches, so a sum is an upper bound of the step's time), then the time by kernel name.
Usage: ncu-step.py FILE.csv [--last N]   (N: print only the last N passes; default all)"""
import csv
import re
import sys
from collections import OrderedDict

UNIT_US = {'nsecond': 1e-3, 'usecond': 1.0, 'msecond': 1e3, 'second': 1e6, 'ns': 1e-3, 'us': 1.0, 'ms': 1e3, 's': 1e6}


def launches(path):
    """(id, kernel name, µs) per profiled launch, in launch order."""
    rows = list(csv.reader(open(path)))
    start = next(i for i, r in enumerate(rows) if r and r[0] == 'ID')
    col = {h: i for i, h in enumerate(rows[start])}
    out = []
    for r in rows[start + 1:]:
        if len(r) != len(rows[start]) or r[col['Metric Name']] != 'gpu__time_duration.sum':
            continue
        name = re.sub(r'\(.*', '', r[col['Kernel Name']]).strip()
        us = float(r[col['Metric Value']].replace(',', '')) * UNIT_US[r[col['Metric Unit']]]
        out.append((int(r[col['ID']]), name, us))
    return out


def passes(seq):
    """The launches cut after each argmax_rows; what follows the last one is a pass of its own."""
    cut, current = [], []
    for item in seq:
        current.append(item)
        if item[1] == 'argmax_rows':
            cut.append(current)
            current = []
    if current:
        cut.append(current)
    return cut


def main():
    args = sys.argv[1:]
    last = int(args[args.index('--last') + 1]) if '--last' in args else None
    found = passes(launches(args[0]))
    shown = found[-last:] if last else found
    for n, p in enumerate(shown, len(found) - len(shown)):
        total = sum(us for _, _, us in p)
        print(f'== pass {n}: {len(p)} launches, {total:.1f} µs (serialized)')
        for i, name, us in p:
            print(f'  {i:6d} {us:9.2f}  {name}')
        by = OrderedDict()
        for _, name, us in p:
            c, t = by.get(name, (0, 0.0))
            by[name] = (c + 1, t + us)
        for name, (c, t) in sorted(by.items(), key=lambda kv: -kv[1][1]):
            print(f'  {t:9.2f} µs {100 * t / total:5.1f}%  {c:3d}x {name}')


if __name__ == '__main__':
    main()
