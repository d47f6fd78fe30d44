"""Benchmark: the admin's CSV export of 100,000 audit events, streamed.

    .venv/bin/python bench/audit_export.py [--events 100000]

Fills a temporary SQLite database (or DATABASE_URL) with events, downloads
the export through the real admin view, and prints its size, time and how
much memory Python allocated at the peak while streaming (tracemalloc),
next to the size of the CSV: streaming keeps the first far below the second.
"""

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="vmip-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402

from imports.models import Action, AuditEvent, ImageImport, Team  # noqa: E402


def fill(count):
    team, _ = Team.objects.get_or_create(name="bench")
    user = get_user_model().objects.create_superuser("bench-admin", password="x")
    image_import, _ = ImageImport.submit(
        team=team,
        user=user,
        payload={
            "clientToken": "bench",
            "name": "Bench image",
            "semanticVersion": "1.0.0",
            "platform": "Linux",
            "vmImportTaskId": "import-ami-0123456789abcdef0",
        },
    )
    batch = [
        AuditEvent(
            action=Action.STATUS,
            actor=user,
            team=team,
            image_import=image_import,
            from_status="importing",
            to_status="importing",
            detail=f"VM import task: converting ({number % 100}%)",
        )
        for number in range(count)
    ]
    AuditEvent.objects.bulk_create(batch, batch_size=5000)
    return user


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    user = fill(args.events)
    client = Client(HTTP_HOST="localhost")  # an allowed host; "testserver" is not
    client.force_login(user)

    tracemalloc.start()
    started = time.perf_counter()
    response = client.get(reverse("admin:imports_auditevent_export"))
    size = rows = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        rows += chunk.count(b"\n")
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(f"database:             {django.db.connection.vendor}")
    print(f"events exported:      {rows - 1} (+ header)")
    print(f"CSV size:             {size / 2**20:.1f} MiB")
    print(f"export time:          {elapsed:.1f} s")
    print(f"peak Python memory:   {peak / 2**20:.1f} MiB while streaming (tracemalloc)")


if __name__ == "__main__":
    main()
