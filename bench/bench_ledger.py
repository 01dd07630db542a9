"""Ledger benchmarks on MySQL/MariaDB: sustained appends, verification of a 100,000-entry chain,
and 8 concurrent appending processes.

Run: .venv/bin/python bench/bench_ledger.py [--entries 100000] [--procs 8] [--seconds 30]
     [--database-url mysql://root@127.0.0.1:3306/fedhealth_bench]
The database named in the URL is created if missing and its ledger tables are emptied first:
never point this at a database you care about. Prints a table, writes bench/results/ledger.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "ledger.json"


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fedhealth.settings")
    import django

    django.setup()


def ensure_database(url: str) -> None:
    import MySQLdb

    u = urlparse(url)
    conn = MySQLdb.connect(host=u.hostname, port=u.port or 3306, user=u.username or "root", passwd=u.password or "")
    conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{u.path.lstrip('/')}` CHARACTER SET utf8mb4")
    conn.close()


def payload(i: int, tag: str) -> dict:
    return {"experiment": f"bench-{tag}", "round": i // 100, "hospital": i % 100, "update_hash": hashlib.sha256(f"{tag}{i}".encode()).hexdigest(),
            "n_samples": 1000 + i % 37, "signature_ok": True}


def _worker(url: str, tag: str, seconds: float, out: mp.Queue) -> None:
    setup_django(url)
    from django.db import connection

    from ledger.services import ledger_append

    n, i, deadline = 0, 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        ledger_append(entries=[("update", payload(i + k, tag)) for k in range(100)])
        i += 100
        n += 100
    connection.close()
    out.put(n)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database-url", default="mysql://root@127.0.0.1:3306/fedhealth_bench")
    p.add_argument("--entries", type=int, default=100_000)
    p.add_argument("--procs", type=int, default=8)
    p.add_argument("--seconds", type=float, default=30)
    a = p.parse_args()
    ensure_database(a.database_url)
    setup_django(a.database_url)
    from django.core.management import call_command
    from django.db import connection

    from fedcore import chain
    from ledger.models import Block, ChainHead, Entry
    from ledger.selectors import genesis_authorities, ledger_verify, stored_chain
    from ledger.services import ledger_append, ledger_init

    call_command("migrate", verbosity=0)
    Entry.objects.all().delete()
    Block.objects.all().delete()
    ChainHead.objects.all().delete()
    ledger_init()

    # (a) sustained appends, blocks of 100 entries, one call per block as a round's task would
    t0 = time.perf_counter()
    for start in range(0, a.entries, 100):
        ledger_append(entries=[("update", payload(start + k, "seq")) for k in range(100)])
    append_s = time.perf_counter() - t0

    # (b) verification of the whole chain, against raw SHA-256 of the same bytes
    t0 = time.perf_counter()
    report = ledger_verify()
    verify_s = time.perf_counter() - t0
    assert report.intact and report.entries == a.entries, report.summary()
    blocks = stored_chain()
    raw = [e.payload.encode() for b in blocks for e in b.entries]
    t0 = time.perf_counter()
    for data in raw:
        hashlib.sha256(data).digest()
    sha_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    chain.verify_chain(blocks, genesis_authorities())
    verify_only_s = time.perf_counter() - t0

    # (c) concurrent appenders
    before = Block.objects.count()
    connection.close()
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(a.database_url, f"p{i}", a.seconds, q)) for i in range(a.procs)]
    t0 = time.perf_counter()
    for pr in procs:
        pr.start()
    appended = sum(q.get() for _ in procs)
    for pr in procs:
        pr.join()
    conc_s = time.perf_counter() - t0
    heights = list(Block.objects.order_by("height").values_list("height", flat=True))
    gaps = sum(1 for x, y in zip(heights, heights[1:], strict=False) if y != x + 1)
    forks = len(heights) - len(set(heights))
    final = ledger_verify()

    result = {
        "database": f"{urlparse(a.database_url).scheme}://{urlparse(a.database_url).hostname}/{urlparse(a.database_url).path.lstrip('/')}",
        "appends": {"entries": a.entries, "block_size": 100, "seconds": append_s, "entries_per_s": a.entries / append_s, "target": 2000},
        "verify": {"entries": report.entries, "blocks": len(blocks), "seconds": verify_s, "verify_in_memory_seconds": verify_only_s,
                   "raw_sha256_seconds": sha_s, "ratio_to_sha256": verify_only_s / sha_s, "target_seconds": 5.0},
        "concurrent": {"processes": a.procs, "seconds": conc_s, "entries": appended, "entries_per_s": appended / conc_s,
                       "blocks_added": len(heights) - before, "forks": forks, "gaps": gaps, "intact": final.intact,
                       "summary": final.summary()},
    }
    print(f"{'measure':44}{'value':>16}")
    print(f"{'sequential appends, blocks of 100 (entries/s)':44}{result['appends']['entries_per_s']:>16,.0f}   target >= 2,000")
    print(f"{'verify ' + format(report.entries, ',') + ' entries, read + check (s)':44}{verify_s:>16.2f}   target <= 5")
    print(f"{'  of which checking in memory (s)':44}{verify_only_s:>16.2f}")
    print(f"{'  raw SHA-256 of the payload bytes (s)':44}{sha_s:>16.3f}   ratio {result['verify']['ratio_to_sha256']:.0f}x")
    c = result["concurrent"]
    print(f"{f'{a.procs} concurrent appenders, {a.seconds:.0f} s (entries/s)':44}{c['entries_per_s']:>16,.0f}")
    print(f"{'  forks / gaps / chain intact':44}{c['forks']:>8} /{c['gaps']:>3} / {c['intact']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({**result, "machine": describe()}, indent=1))


if __name__ == "__main__":
    main()
