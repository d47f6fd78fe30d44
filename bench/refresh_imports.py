"""Benchmark: one refresher cycle over many imports in flight, against the emulator.

    .venv/bin/python bench/refresh_imports.py [--imports 1000]

Sets up its own SQLite database in a temporary DATA_DIR (or uses
DATABASE_URL), starts the AWS emulator on a free loopback port, submits the
imports through the real submit task, then times one `refresh_imports()`
cycle and prints what it cost. Figures only: nothing here passes or fails on
time, since these machines are shared and noisy.
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="vmip-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_REGION="us-east-1",
    AWS_EC2_METADATA_DISABLED="true",
)

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

from fakeaws.testing import running_emulator  # noqa: E402
from imports import aws, tasks  # noqa: E402
from imports.models import ImageImport, Status, Team  # noqa: E402


def vm_import_tasks(count):
    """A VM import task of its own for each import, as in real life."""
    ec2 = aws.client("ec2")
    disk = {"Format": "VMDK", "UserBucket": {"S3Bucket": "vm-exports", "S3Key": "disk.vmdk"}}
    return [ec2.import_image(DiskContainers=[disk])["ImportTaskId"] for _ in range(count)]


def submit_imports(task_ids):
    team, _ = Team.objects.get_or_create(name="bench")
    user, _ = get_user_model().objects.get_or_create(username="bench")
    for number, task_id in enumerate(task_ids):
        payload = {
            "clientToken": f"bench-{number}",
            "name": f"Bench image {number}",
            "semanticVersion": "1.0.0",
            "platform": "Linux",
            "vmImportTaskId": task_id,
        }
        image_import, _ = ImageImport.submit(team=team, user=user, payload=payload)
        tasks.submit_import(image_import.pk)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imports", type=int, default=1000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)

    with running_emulator(step_seconds=0) as emulator:
        os.environ.update(emulator.environ())
        aws.clear_clients()
        started = time.perf_counter()
        submit_imports(vm_import_tasks(args.imports))
        submitted_in = time.perf_counter() - started
        in_flight = ImageImport.objects.filter(status=Status.IMPORTING).count()
        before = emulator.calls()["operations"]

        started = time.perf_counter()
        result = tasks.refresh_imports()
        cycle = time.perf_counter() - started

        after = emulator.calls()["operations"]
    describe_calls = after.get("DescribeImportImageTasks", 0) - before.get(
        "DescribeImportImageTasks", 0
    )
    get_image_calls = after.get("GetImage", 0) - before.get("GetImage", 0)
    available = ImageImport.objects.filter(status=Status.AVAILABLE).count()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"database:                  {django.db.connection.vendor}")
    print(f"imports in flight:         {in_flight} (submitted in {submitted_in:.1f} s)")
    print(f"refreshed in one cycle:    {result.get('refreshed', 0)}")
    per_import = cycle / max(in_flight, 1) * 1000
    print(f"cycle time:                {cycle:.2f} s ({per_import:.1f} ms per import)")
    print(f"DescribeImportImageTasks:  {describe_calls} call(s) (at most one per 100 task ids)")
    print(f"GetImage:                  {get_image_calls} call(s) (one per import)")
    print(f"available after the cycle: {available}")
    print(f"peak memory (RSS):         {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
