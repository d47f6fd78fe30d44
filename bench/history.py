"""Benchmark: the history's first page, a deep page and a search, at 100 and at 100,000 imports.

    .venv/bin/python bench/history.py [--large 100000] [--runs 15]

Sets up its own database (SQLite in a temporary DATA_DIR, or the database
DATABASE_URL names, which it fills and leaves), bulk-loads a team's imports,
then times the signed-in history page through Django's test client: the
first page, the page 40 cursors deep, and a search that finds one import at either size.
It prints the median and spread of each at the small and the large size, and
their ratio (issue 14's goals: search <= 2x, first page <= 1.5x). Figures
only: nothing passes or fails on time, since these machines are shared and
noisy.
"""

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="vmip-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from imports.models import ImageImport, Membership, Status, Team  # noqa: E402

settings.ALLOWED_HOSTS = ["*"]


def name_of(number):
    # A word of its own per import, so that one search finds one import at
    # either size and the two timings render the same page.
    return f"image number {number} tag{number:06x}x"


SEARCHED = name_of(50).split()[-1]


def load(team, user, count, start_at=0):
    """Bulk-insert `count` available imports, a second apart, newest last."""
    now = timezone.now()
    batch = []
    for number in range(start_at, start_at + count):
        batch.append(
            ImageImport(
                team=team,
                submitted_by=user,
                payload={"name": name_of(number), "semanticVersion": "1.0.0"},
                client_token=f"bench-{number}",
                name=name_of(number),
                platform="Linux",
                vm_import_task_id=f"import-ami-{number:017x}",
                status=Status.AVAILABLE,
                image_arn=f"arn:aws:imagebuilder:us-east-1:123456789012:image/n{number}/1.0.0/1",
                created_at=now - timedelta(seconds=10**6 - number),
                updated_at=now,
            )
        )
        if len(batch) == 5000:
            ImageImport.objects.bulk_create(batch)
            batch = []
    ImageImport.objects.bulk_create(batch)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE imports_imageimport")


def timed(client, params, runs):
    client.get("/", params)  # warm
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get("/", params)
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
    return seconds


def deep_cursor(client, depth):
    params = {}
    for _ in range(depth):
        older = re.search(r"older=([A-Za-z0-9_-]+)", client.get("/", params).content.decode())
        if older is None:
            break
        params = {"older": older[1]}
    return params


def measure(client, runs, depth):
    return {
        "first page": timed(client, {}, runs),
        f"page {depth} deep": timed(client, deep_cursor(client, depth), runs),
        "search": timed(client, {"q": SEARCHED}, runs),
    }


def show(label, small, large):
    def describe(values):
        median = statistics.median(values) * 1000
        spread = (max(values) - min(values)) * 1000
        return f"{median:7.1f} ms (spread {spread:5.1f})"

    ratio = statistics.median(large) / statistics.median(small)
    print(f"  {label:<14} small {describe(small)}   large {describe(large)}   ratio {ratio:4.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--depth", type=int, default=3)
    arguments = parser.parse_args()

    call_command("migrate", verbosity=0)
    ImageImport.objects.filter(team__name="bench-history").delete()
    team, _ = Team.objects.get_or_create(name="bench-history")
    user, _ = get_user_model().objects.get_or_create(username="bench-history")
    Membership.objects.get_or_create(team=team, user=user)
    client = Client()
    client.force_login(user)

    print(f"History on {connection.vendor}, {arguments.runs} runs each, median and spread:")
    load(team, user, arguments.small)
    small = measure(client, arguments.runs, arguments.depth)
    load(team, user, arguments.large - arguments.small, start_at=arguments.small)
    large = measure(client, arguments.runs, arguments.depth)
    print(f"  ({arguments.small:,} imports vs {arguments.large:,})")
    for label in small:
        show(label, small[label], large[label])


if __name__ == "__main__":
    main()
