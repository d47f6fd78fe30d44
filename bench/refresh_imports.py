"""Benchmark: the refresher's cycles over many imports in flight, against the emulator.

    .venv/bin/python bench/refresh_imports.py [--imports 1000] [--runs 3]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench \\
      .venv/bin/python bench/refresh_imports.py

Uses DATABASE_URL when set (PostgreSQL, as in production), else SQLite in a
temporary DATA_DIR. The AWS emulator runs in a process of its own (its
clock stopped: `advance` walks it), so its CPU and memory are not the
portal's. Each run submits `--imports` imports through the real submit task,
each with a VM import task of its own, then times four `refresh_imports()`
cycles:

- first look: every import's first answer is news (task pending, image PENDING);
- recurring: the same answers again, what the refresher does every
  IMPORT_REFRESH_INTERVAL seconds while nothing moves;
- progress: every task one step further (30 %, validating);
- final: every image AVAILABLE, every import ends.

Prints each cycle's wall time and the process's CPU time (every thread),
per import, and its SQL statements, as medians over `--runs` runs with their
spread, then the process's peak RSS. Figures only: nothing here passes or
fails on time, since these machines are shared and noisy.
"""

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="vmip-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_REGION="us-east-1",
    AWS_EC2_METADATA_DISABLED="true",
    LOG_LEVEL="WARNING",
)

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from stack import Emulator  # noqa: E402

from imports import aws, tasks  # noqa: E402
from imports.models import ImageImport, Status, Team  # noqa: E402

# Long enough that nothing moves while a run lasts; `advance` walks it.
STEP_SECONDS = 3600
CYCLES = ("first look", "recurring", "progress", "final")


def vm_import_tasks(count):
    """A VM import task of its own for each import, as in real life."""
    ec2 = aws.client("ec2")
    disk = {"Format": "VMDK", "UserBucket": {"S3Bucket": "vm-exports", "S3Key": "disk.vmdk"}}
    return [ec2.import_image(DiskContainers=[disk])["ImportTaskId"] for _ in range(count)]


def submit_imports(run, task_ids):
    team, _ = Team.objects.get_or_create(name="bench")
    user, _ = get_user_model().objects.get_or_create(username="bench")
    pks = []
    for number, task_id in enumerate(task_ids):
        payload = {
            "clientToken": f"bench-{run}-{number}-{os.getpid()}",
            "name": f"Bench image {run} {number}",
            "semanticVersion": "1.0.0",
            "platform": "Linux",
            "vmImportTaskId": task_id,
        }
        image_import, _ = ImageImport.submit(team=team, user=user, payload=payload)
        tasks.submit_import(image_import.pk)
        pks.append(image_import.pk)
    return pks


@contextmanager
def counted_statements():
    counter = {"statements": 0}

    def count(execute, sql, params, many, context):
        counter["statements"] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        yield counter


def timed_cycle(pks):
    """(wall seconds, CPU seconds, SQL statements, imports refreshed) of one cycle."""
    ImageImport.objects.filter(pk__in=pks).update(refreshed_at=None)  # all due now
    cache.delete(tasks.REFRESH_PAUSE_KEY)
    with counted_statements() as counter:
        cpu, wall = time.process_time(), time.perf_counter()
        result = tasks.refresh_imports()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, counter["statements"], result.get("refreshed", 0)


def one_run(run, count, emulator):
    pks = submit_imports(run, vm_import_tasks(count))
    in_flight = ImageImport.objects.filter(pk__in=pks, status=Status.IMPORTING).count()
    figures = {"first look": timed_cycle(pks), "recurring": timed_cycle(pks)}
    emulator.advance(STEP_SECONDS)  # every task one step on: 30 %, validating
    figures["progress"] = timed_cycle(pks)
    emulator.advance(STEP_SECONDS * 100)  # every task done, every image AVAILABLE
    figures["final"] = timed_cycle(pks)
    available = ImageImport.objects.filter(pk__in=pks, status=Status.AVAILABLE).count()
    return in_flight, available, figures


def set_aside_earlier_imports():
    """Imports left in flight by earlier benches on this database are never due again.

    Their images are in an emulator long gone; refreshing them would only
    add failed GetImage calls to the figures.
    """
    left = ImageImport.objects.filter(status=Status.IMPORTING)
    count = left.update(refreshed_at=timezone.now() + timedelta(days=3650))
    if count:
        print(f"({count} imports left in flight by earlier benches set aside)")


def spread(values, scale):
    median = statistics.median(values) * scale
    return f"{median:7.1f} ({min(values) * scale:.1f}-{max(values) * scale:.1f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imports", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    set_aside_earlier_imports()

    with Emulator(step_seconds=STEP_SECONDS) as emulator:
        os.environ.update(emulator.environ())
        aws.clear_clients()
        results = []
        for run in range(1, args.runs + 1):
            in_flight, available, figures = one_run(run, args.imports, emulator)
            results.append(figures)
            line = ", ".join(f"{name} {figures[name][0]:.2f} s" for name in CYCLES)
            print(f"run {run}: {in_flight} in flight, {available} available at the end; {line}")
            if in_flight != args.imports or available != args.imports:
                print("  (not every import was in flight, or ended: the figures are off)")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"\nRefresher cycles over {args.imports} imports on {connection.vendor},")
    print(f"median over {args.runs} runs (min-max):")
    print(f"  {'cycle':<11} {'wall ms':>22} {'ms/import':>19} {'CPU ms/import':>19} {'SQL':>6}")
    for name in CYCLES:
        walls = [figures[name][0] for figures in results]
        cpus = [figures[name][1] for figures in results]
        statements = statistics.median(figures[name][2] for figures in results)
        per_import = 1000 / args.imports
        print(
            f"  {name:<11} {spread(walls, 1000):>22} {spread(walls, per_import):>19} "
            f"{spread(cpus, per_import):>19} {statements:>6.0f}"
        )
    print(f"peak memory (RSS) of the portal's process: {peak_mib:.0f} MiB (the emulator apart)")


if __name__ == "__main__":
    main()
