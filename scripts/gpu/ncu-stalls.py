#!/usr/bin/env python3
"""Summary of an Nsight Compute per-SASS-instruction CSV (`ncu --page source --csv --print-source sass`):
the share of each stall reason over all warp samples, then the TOP instructions by samples with
their main stall reasons (those above 10% of the instruction's samples).
Usage: ncu-stalls.py FILE.csv [TOP]"""
import csv
import sys

REASONS = ['long_sb', 'wait', 'selected', 'barrier', 'dispatch', 'not_selected', 'math', 'short_sb', 'no_inst', 'mio', 'branch_resolving', 'sleep']


def num(text):
    try:
        return float(text.replace(',', ''))
    except ValueError:
        return 0.0


def main():
    rows = list(csv.reader(open(sys.argv[1])))
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    start = next(i for i, r in enumerate(rows) if r and r[0] == 'Address')
    header, data = rows[start], rows[start + 1:]
    col = {h: i for i, h in enumerate(header)}
    samples = col['Warp Stall Sampling (All Samples)']
    total = sum(num(r[samples]) for r in data)
    print(f'warp samples: {total:.0f}')
    print('share by reason: ' + ' '.join(f'{k}={sum(num(r[col["stall_" + k]]) for r in data) / total:.3f}' for k in REASONS))
    for r in sorted(data, key=lambda r: -num(r[samples]))[:top]:
        s = num(r[samples])
        main_reasons = ', '.join(f'{k}={num(r[col["stall_" + k]]):.0f}' for k in REASONS if num(r[col['stall_' + k]]) > 0.1 * s)
        print(f'{s / total * 100:5.1f}%  exec {r[col["Instructions Executed"]]:>8}  {r[1].strip()[:72]:72}  {main_reasons}')


if __name__ == '__main__':
    main()
