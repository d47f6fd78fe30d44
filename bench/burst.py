"""Benchmark: a burst of imports, posted at once, against bare boto3 calls to the same emulator.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/12 CACHE_URL=redis://127.0.0.1:6379/13 \\
      .venv/bin/python bench/burst.py [--imports 1000] [--clients 8] [--runs 3]

The same stack as bench/submit_overhead.py (gunicorn with DEBUG off, a
Celery worker of 4 threads, PostgreSQL and Redis when DATABASE_URL,
CELERY_BROKER_URL and CACHE_URL are set, the emulator in its own process).
Each run posts `--imports` imports from `--clients` threads as fast as the
server answers, and times from the first POST until every one has its ARN
stored: imports per second. The baseline, in the same run: as many
ImportVmImage calls sent straight from boto3, one after another, to the same
emulator: calls per second. Prints both, and their ratio (the issue's goal
is 0.15 or more) as the median over runs with its spread, and, per run,
the CPU each part of the stack spent per import (from /proc: gunicorn, the
Celery worker, PostgreSQL, Redis, the emulator and this load generator),
which shows where two saturated cores go. First, the machine
(stack.describe_machine). Figures only.
"""

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from stack import (
    Stack,
    bare_calls,
    cpu_per_item,
    describe_machine,
    imagebuilder_client,
    import_request,
    median_and_spread,
    post,
)


def burst(stack, count, clients):
    """(seconds to post them all, seconds until every ARN is stored)."""
    from imports.models import ImageImport, Status

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        bodies = [import_request(f"burst {number}") for number in range(count)]
        pks = list(pool.map(lambda body: post(stack.url, stack.token, body)["id"], bodies))
    posted = time.perf_counter() - started
    waiting = ImageImport.objects.filter(pk__in=pks).exclude(status=Status.IMPORTING)
    deadline = time.monotonic() + 600
    while waiting.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{waiting.count()} imports were not sent within 600 s")
        if waiting.filter(status=Status.FAILED).exists():
            raise RuntimeError("an import failed; see the worker's log")
        time.sleep(0.02)
    return posted, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imports", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8, help="threads posting side by side")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with Stack() as stack:
        client = imagebuilder_client(stack.emulator)
        burst(stack, 20, args.clients)  # every gunicorn worker and pool thread warm
        bare_calls(client, 20)
        print(f"Burst of {args.imports} imports on {stack.describe()}")
        print(f"Machine: {describe_machine()}")
        ratios, rates = [], []
        for run in range(1, args.runs + 1):
            started = time.perf_counter()
            bare_calls(client, args.imports)
            bare_rate = args.imports / (time.perf_counter() - started)
            cpu_before = stack.cpu_seconds()
            posted, done = burst(stack, args.imports, args.clients)
            cpu_after = stack.cpu_seconds()
            rate = args.imports / done
            rates.append(rate)
            ratios.append(rate / bare_rate)
            print(
                f"  run {run}: posted in {posted:5.1f} s, all ARNs stored in {done:5.1f} s: "
                f"{rate:5.0f} imports/s; bare ImportVmImage {bare_rate:5.0f} calls/s: "
                f"{rate / bare_rate:.3f}x"
            )
            print(f"    CPU per import, ms: {cpu_per_item(cpu_before, cpu_after, args.imports)}")
    print(f"imports/s:   {median_and_spread(rates, 1, '/s')}")
    print(
        f"ratio:       {median_and_spread(ratios, 1, 'x')} (imports/s / bare calls/s; goal >= 0.15)"
    )


if __name__ == "__main__":
    sys.exit(main())
