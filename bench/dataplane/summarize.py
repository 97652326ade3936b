#!/usr/bin/env python3
"""Turns raw.csv from run.sh into a markdown table: per-row medians, and ratios to nginx taken
within each round (so the VM's drift cancels) and then reduced to their median."""
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

print("| file | conns | server | req/s | MiB/s | p50 ms | p99 ms | CPU µs/req | wrk CPU % | req/s ÷ nginx | CPU/req ÷ nginx | p99 ÷ nginx |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
# Rows in the order the run produced them, nginx (the peer) first.
servers = ["nginx"] + [s for s in dict.fromkeys(r["server"] for r in rows) if s != "nginx"]
order = list(dict.fromkeys(r["file"] for r in rows))
keys = sorted({(f, c) for (f, c, _) in by}, key=lambda k: (int(k[1]), order.index(k[0])))
for f, c in keys:
    nginx = by.get((f, c, "nginx"), {})
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
        ratios = [(float(r["req_per_s"]) / float(nginx[k]["req_per_s"]),
                   float(r["cpu_us_per_req"]) / float(nginx[k]["cpu_us_per_req"]) if float(nginx[k]["cpu_us_per_req"]) > 0 else float("nan"),
                   float(r["p99_ms"]) / float(nginx[k]["p99_ms"]) if float(nginx[k]["p99_ms"]) > 0 else float("nan"))
                  for k, r in runs.items() if k in nginx]
        if server == "nginx":
            rr = cr = pr = "1"
        else:
            rr = f"{med([x[0] for x in ratios]):.2f}×"
            cr = f"{med([x[1] for x in ratios]):.2f}×"
            pr = f"{med([x[2] for x in ratios]):.2f}×"
        print(f"| {f} | {c} | {server} | {rps:,.0f} | {mib:,.1f} | {p50:.2f} | {p99:.2f} | {cpu:.1f} | {client:.0f} | {rr} | {cr} | {pr} |")
