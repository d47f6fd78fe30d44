"""Benchmark: the history's first page, a deep page and a search, at 100 and at 100,000 imports.

    .venv/bin/python bench/history.py [--large 100000] [--runs 15] [--others 0]

Sets up its own database (SQLite in a temporary DATA_DIR, or the database
DATABASE_URL names, which it fills and leaves) and times the signed-in
history page through Django's test client, each as a median over --runs with
its spread and the part spent in SQL, at --small and at --large imports:

1. the first page right after a bulk load into a table never analysed (a
   fresh database: use one for this figure, since an earlier run's
   statistics would stay);
2. the first page right after a bulk load into a table analysed when it
   held --small imports (a table that grows by a load);
3. vacuumed and analysed, as autovacuum leaves a table after a load: the
   first page, the page --depth cursors deep, and searches that find one
   import at either size: a word of its name, its AMI ID, the first 8
   characters of its client token, and its disk file's name. (Before VACUUM, a search also reads the
   trigram indexes' pending lists, up to 4 MB each: see vacuum_analyze.)

With --others N, another team's N imports are loaded first, as in a
database that teams share (the first figure's table then holds them, never
analysed, when the team's first 100 arrive).

On PostgreSQL autovacuum is kept off the table meanwhile, so that 1 and 2
are the plans before any ANALYZE (autovacuum analyses within about a
minute of a load). Issue 14's goals: search <= 2x, first page right after a
bulk load <= 1.5x. Figures only: nothing passes or fails on time, since
these machines are shared and noisy.
"""

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="vmip-bench-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # not a line per request

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


def token_of(number):
    # Random-looking, as the form's UUIDs are, yet the same on every run.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-{number}"))


def ami_of(number):
    # An AMI ID as EC2 makes them: ami- and 17 hexadecimal digits.
    return "ami-0" + uuid.uuid5(uuid.NAMESPACE_DNS, f"bench-{number}").hex[:16]


def disk_key_of(number):
    # The S3 key of the disk file it was imported from.
    return f"exports/team-{number % 7}/vm{number:06x}.ova"


ACCOUNT = "123456789012"
SEARCHED = name_of(50).split()[-1]
SEARCHED_AMI = ami_of(50)
SEARCHED_TOKEN_PREFIX = token_of(50)[:8]
SEARCHED_FILE = disk_key_of(50).rsplit("/", 1)[-1]


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
                client_token=token_of(number),
                name=name_of(number),
                platform="Linux",
                vm_import_task_id=f"import-ami-{number:017x}",
                disk_key=disk_key_of(number),
                status=Status.AVAILABLE,
                image_arn=f"arn:aws:imagebuilder:us-east-1:123456789012:image/n{number}/1.0.0/1",
                amis=[{"region": "us-east-1", "image": ami_of(number), "accountId": ACCOUNT}],
                created_at=now - timedelta(seconds=10**6 - number),
                updated_at=now,
            )
        )
        # 1,000 rows of 30 columns: under the 65,535 values PostgreSQL binds
        # to one statement (the portal binds on the server).
        if len(batch) == 1000:
            ImageImport.objects.bulk_create(batch)
            batch = []
    ImageImport.objects.bulk_create(batch)


def vacuum_analyze():
    """The table as autovacuum leaves it after a load: vacuumed, and analysed.

    VACUUM matters to the search: until it runs, the trigram indexes keep
    the newest rows' entries in their pending lists (GIN's fastupdate, up to
    4 MB), which every search reads through; ANALYZE alone leaves them there.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE imports_imageimport")


@contextmanager
def no_autovacuum():
    """Keep autovacuum from analysing the table behind the bench's back.

    The figures "right after a bulk load" are those of the planner before
    any ANALYZE: with PostgreSQL's autovacuum, that lasts up to a minute
    (autovacuum_naptime) after a load, for as long as a load goes on.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE imports_imageimport SET (autovacuum_enabled = off)")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE imports_imageimport RESET (autovacuum_enabled)")


def statistics_state():
    """What the planner knows of the table: its last ANALYZE and the rows changed since."""
    if connection.vendor != "postgresql":
        return "SQLite"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(greatest(last_analyze, last_autoanalyze)::text, 'never'),"
            " n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = 'imports_imageimport'"
        )
        analysed, changed = cursor.fetchone()
    return f"last analysed {analysed}, {changed:,} rows changed since"


class SqlClock:
    """Adds up the time the database took, through Django's execute wrapper."""

    def __init__(self):
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started


def timed(client, params, runs):
    """[(seconds for the page, seconds of it in the database)] over `runs` requests."""
    client.get("/", params)  # warm
    times = []
    for _ in range(runs):
        clock = SqlClock()
        with connection.execute_wrapper(clock):
            started = time.perf_counter()
            response = client.get("/", params)
            times.append((time.perf_counter() - started, clock.seconds))
        assert response.status_code == 200, response.status_code
    return times


def deep_cursor(client, depth):
    params = {}
    for _ in range(depth):
        older = re.search(r"older=([A-Za-z0-9_-]+)", client.get("/", params).content.decode())
        if older is None:
            break
        params = {"older": older[1]}
    return params


def finds_one(client, query):
    """`query`, checked to find the one import it is meant to, at either size."""
    page = client.get("/", {"q": query}).content.decode()
    assert "<span>1 matching import</span>" in page, query
    return {"q": query}


def measure(client, runs, depth):
    return {
        "first page": timed(client, {}, runs),
        f"page {depth} deep": timed(client, deep_cursor(client, depth), runs),
        "search": timed(client, finds_one(client, SEARCHED), runs),
        "search AMI": timed(client, finds_one(client, SEARCHED_AMI), runs),
        "search token": timed(client, finds_one(client, SEARCHED_TOKEN_PREFIX), runs),
        "search file": timed(client, finds_one(client, SEARCHED_FILE), runs),
    }


def show(label, small, large):
    def describe(times):
        pages, sql = [page * 1000 for page, _ in times], [db * 1000 for _, db in times]
        median, spread = statistics.median(pages), max(pages) - min(pages)
        return f"{median:6.1f} ms ({spread:5.1f}; SQL {statistics.median(sql):5.1f})"

    ratio = statistics.median(p for p, _ in large) / statistics.median(p for p, _ in small)
    print(f"  {label:<12} small {describe(small)}  large {describe(large)}  ratio {ratio:4.2f}x")


def shrink_to(count):
    """Back to the first `count` imports, the table rewritten and analysed at that size."""
    imports = ImageImport.objects.filter(team__name="bench-history")
    last_kept = imports.get(client_token=token_of(count - 1)).created_at
    imports.filter(created_at__gt=last_kept).delete()  # loaded in order, a second apart
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM FULL imports_imageimport")
    vacuum_analyze()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--others", type=int, default=0, help="another team's imports, first")
    arguments = parser.parse_args()

    call_command("migrate", verbosity=0)
    ImageImport.objects.filter(team__name="bench-history").delete()
    team, _ = Team.objects.get_or_create(name="bench-history")
    user, _ = get_user_model().objects.get_or_create(username="bench-history")
    Membership.objects.get_or_create(team=team, user=user)
    client = Client()
    client.force_login(user)

    print(f"History on {connection.vendor}, {arguments.runs} runs each: median (spread; SQL)")
    sizes = f"{arguments.small:,} imports vs {arguments.large:,}"
    print(f"({sizes}; another team's beside them: {arguments.others:,})")
    rest = arguments.large - arguments.small
    with no_autovacuum():
        if arguments.others:
            others, _ = Team.objects.get_or_create(name="bench-history-others")
            ImageImport.objects.filter(team=others).delete()
            load(others, user, arguments.others)
        # 1. A table never analysed (a fresh database) takes a bulk load.
        load(team, user, arguments.small)
        never_small = timed(client, {}, arguments.runs)
        load(team, user, rest, start_at=arguments.small)
        never_state = statistics_state()
        never_large = timed(client, {}, arguments.runs)
        # 2. A table analysed at the small size takes a bulk load.
        shrink_to(arguments.small)
        small = measure(client, arguments.runs, arguments.depth)
        load(team, user, rest, start_at=arguments.small)
        stale_state = statistics_state()
        stale_large = timed(client, {}, arguments.runs)
        # 3. Vacuumed and analysed at the large size.
        vacuum_analyze()
        large = measure(client, arguments.runs, arguments.depth)
    print(f"Right after a bulk load into a table never analysed ({never_state}):")
    show("first page", never_small, never_large)
    print(f"Right after a bulk load into a table analysed when small ({stale_state}):")
    show("first page", small["first page"], stale_large)
    print("Vacuumed and analysed:")
    for label in small:
        show(label, small[label], large[label])


if __name__ == "__main__":
    main()
