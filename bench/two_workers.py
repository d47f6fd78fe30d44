"""Two worker machines: 200 imports, each sent to AWS exactly once.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/12 \\
      .venv/bin/python bench/two_workers.py [--imports 200] [--fail-rate 0]

Starts two Celery workers as separate processes, each with a DATA_DIR of
its own as a second machine would have, sharing only PostgreSQL and the
broker (Redis or RabbitMQ), and the AWS emulator (in this process, on a free
loopback port). Submits the imports as the web does (recorded, then queued
after the commit), waits until every one is importing, and prints, from the
emulator's own count, how many ImportVmImage calls each client token got and
how many images were made, and how the work was shared. Exits 1 unless every
import was sent once and made one image. With --fail-rate, the emulator
fails that share of calls (ServiceUnavailable): calls are then retried with
the same token, and each import must still make exactly one image.
"""

import argparse
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
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
from django.db import connection  # noqa: E402

from config.celery import app  # noqa: E402
from fakeaws.testing import running_emulator  # noqa: E402
from imports import services  # noqa: E402
from imports.models import ImageImport, Status, Team  # noqa: E402

SEEDED_TASK = "import-ami-0123456789abcdef0"


def start_worker(name, emulator, log_dir):
    env = {
        **os.environ,
        **emulator.environ(),
        "DATA_DIR": tempfile.mkdtemp(prefix=f"vmip-bench-{name}-"),
        "IMPORT_RETRY_BASE_DELAY": "1",
        "IMPORT_RETRY_MAX_DELAY": "2",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # each machine its own, under its DATA_DIR
    log = open(log_dir / f"{name}.log", "w")  # noqa: SIM115 (closed when the bench ends)
    command = [
        str(Path(sys.executable).parent / "celery"),
        "-A",
        "config",
        "worker",
        "--hostname",
        f"{name}@%h",
        "--concurrency",
        "4",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_until_ready(log_dir, names, timeout=60):
    deadline = time.monotonic() + timeout
    while not all(" ready." in (log_dir / f"{name}.log").read_text() for name in names):
        if time.monotonic() > deadline:
            sys.exit("the workers did not start; see " + str(log_dir))
        time.sleep(0.2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imports", type=int, default=200)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    args = parser.parse_args()
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if connection.vendor != "postgresql" or not broker.startswith(("redis", "amqp")):
        sys.exit("Two machines share PostgreSQL and a broker: set DATABASE_URL, CELERY_BROKER_URL")
    call_command("migrate", verbosity=0)
    app.control.purge()
    team, _ = Team.objects.get_or_create(name="bench-two-workers")
    user, _ = get_user_model().objects.get_or_create(username="bench-two-workers")
    log_dir = Path(tempfile.mkdtemp(prefix="vmip-bench-logs-"))
    names = ["machine-a", "machine-b"]

    with running_emulator(step_seconds=0) as emulator:
        if args.fail_rate:
            emulator.fail_rate(args.fail_rate, operation="ImportVmImage")
        workers = [start_worker(name, emulator, log_dir) for name in names]
        try:
            wait_until_ready(log_dir, names)
            started = time.perf_counter()
            run = uuid.uuid4().hex[:8]
            pks = []
            for number in range(args.imports):
                payload = {
                    "clientToken": str(uuid.uuid4()),
                    "name": f"Two workers {run} {number}",
                    "semanticVersion": "1.0.0",
                    "platform": "Linux",
                    "vmImportTaskId": SEEDED_TASK,
                }
                image_import, _ = services.submit_import(team=team, user=user, payload=payload)
                pks.append(image_import.pk)
            imports = ImageImport.objects.filter(pk__in=pks)
            deadline = time.monotonic() + 300
            while imports.exclude(status__in=[Status.IMPORTING, Status.FAILED]).exists():
                if time.monotonic() > deadline:
                    break
                time.sleep(0.25)
            elapsed = time.perf_counter() - started
            calls = emulator.calls()
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                worker.wait(timeout=60)

    tokens = dict(imports.values_list("client_token", "status"))
    statuses = collections.Counter(tokens.values())
    per_token = collections.Counter(calls["clientTokens"].get(token, 0) for token in tokens)
    shares = {
        name: (log_dir / f"{name}.log").read_text().count("accepted by AWS") for name in names
    }
    print(f"{args.imports} imports, two worker processes, broker {broker.split('://')[0]}")
    print(f"  all importing after {elapsed:.1f} s; statuses: {dict(statuses)}")
    print(f"  ImportVmImage calls per client token: {dict(sorted(per_token.items()))}")
    print(f"  images made: {calls['imagesCreated']}")
    print(f"  accepted by each machine: {shares}  (logs in {log_dir})")
    once = statuses[Status.IMPORTING] == args.imports and calls["imagesCreated"] == args.imports
    if not args.fail_rate:
        once = once and per_token == {1: args.imports}
    claim = "made exactly one image" if args.fail_rate else "sent exactly once"
    print(f"  each import {claim}: " + ("yes" if once else "NO"))
    return 0 if once else 1


if __name__ == "__main__":
    sys.exit(main())
