#!/usr/bin/env python3
"""Turns raw.csv from run.sh or proxy.sh into a markdown table: per-row medians, and ratios to nginx
(and, where the run has one, to the floor peer) taken within each round, so the VM's drift cancels,
then reduced to their median."""
import csv
import statistics
import sys
from collections import defaultdict

rows = list(csv.DictReader(open(sys.argv[1])))
by = defaultdict(dict)  # (file, conns, server) -> round -> row
for r in rows:
    by[(r["file"], r["conns"], r["server"])][r["round"]] = r

def med(values):
    return statistics.median(values) if values else float("nan")

def ratios(runs, peer, column):
    values = [float(r[column]) / float(peer[k][column]) for k, r in runs.items()
              if k in peer and float(peer[k][column]) > 0]
    return f"{med(values):.2f}×" if values else "–"

has_floor = any(r["server"] == "floor" for r in rows)
floor_head = " req/s ÷ floor | CPU/req ÷ floor |" if has_floor else ""
print("| file | conns | server | req/s | MiB/s | p50 ms | p99 ms | CPU µs/req | wrk CPU % | req/s ÷ nginx | CPU/req ÷ nginx | p99 ÷ nginx |" + floor_head)
print("|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if has_floor else ""))
# Rows in the order the run produced them, nginx (the peer) first, then the floor.
servers = ["nginx", "floor"] + [s for s in dict.fromkeys(r["server"] for r in rows) if s not in ("nginx", "floor")]
order = list(dict.fromkeys(r["file"] for r in rows))
keys = sorted({(f, c) for (f, c, _) in by}, key=lambda k: (int(k[1]), order.index(k[0])))
for f, c in keys:
    nginx = by.get((f, c, "nginx"), {})
    floor = by.get((f, c, "floor"), {})
    for server in servers:
        runs = by.get((f, c, server))
        if not runs:
            continue
        rps = med([float(r["req_per_s"]) for r in runs.values()])
        mib = med([float(r["mib_per_s"]) for r in runs.values()])
        p50 = med([float(r["p50_ms"]) for r in runs.values()])
        p99 = med([float(r["p99_ms"]) for r in runs.values()])
        cpu = med([float(r["cpu_us_per_req"]) for r in runs.values()])
        client = med([float(r.get("client_cpu_pct") or "nan") for r in runs.values()])
        if server == "nginx":
            rr = cr = pr = "1"
        else:
            rr, cr, pr = ratios(runs, nginx, "req_per_s"), ratios(runs, nginx, "cpu_us_per_req"), ratios(runs, nginx, "p99_ms")
        line = f"| {f} | {c} | {server} | {rps:,.0f} | {mib:,.1f} | {p50:.2f} | {p99:.2f} | {cpu:.1f} | {client:.0f} | {rr} | {cr} | {pr} |"
        if has_floor:
            line += " 1 | 1 |" if server == "floor" else f" {ratios(runs, floor, 'req_per_s')} | {ratios(runs, floor, 'cpu_us_per_req')} |"
        print(line)
