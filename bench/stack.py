"""Shared by the benches that time the whole path: the emulator and a Celery worker as processes.

`Emulator` runs `python -m fakeaws` on a free port in a process of its own,
so that its CPU and memory are never counted as the portal's; `CeleryWorker`
runs a worker as `make serve` does (threads pool, `--concurrency`); `bare_calls`
times ImportVmImage sent straight from boto3 to the same emulator, the
baseline the portal's figures are divided by. With serving.py's `Gunicorn`,
that is the production stack on one machine.
"""

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from serving import ROOT, Gunicorn, free_port, prepare, production_environ

from fakeaws.testing import EmulatorControl

SEEDED_TASK = "import-ami-0123456789abcdef0"


class Emulator(EmulatorControl):
    """The AWS emulator in its own process; the control API as EmulatorControl's."""

    def __init__(self, step_seconds=0.0):
        port = free_port()
        super().__init__(f"http://127.0.0.1:{port}")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fakeaws",
                "--port",
                str(port),
                "--step-seconds",
                str(step_seconds),
                "--quiet",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.calls()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("the emulator did not start") from None
                time.sleep(0.1)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class CeleryWorker:
    """`celery worker` as make serve starts it (threads), logging to a file."""

    def __init__(self, environ, log_path, concurrency=4, pool="threads"):
        self.log = open(log_path, "w")  # noqa: SIM115 (closed by stop)
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "celery"),
                "-A",
                "config",
                "worker",
                "--pool",
                pool,
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=environ,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def import_request(label):
    return {
        "clientToken": str(uuid.uuid4()),
        "name": f"Bench {label}",
        "semanticVersion": "1.0.0",
        "platform": "Linux",
        "vmImportTaskId": SEEDED_TASK,
    }


def imagebuilder_client(emulator):
    """A boto3 client to the emulator, configured as the portal's own (imports/aws.py)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "imagebuilder",
        region_name="us-east-1",
        endpoint_url=emulator.url,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def bare_calls(client, count):
    """Seconds each of `count` ImportVmImage calls took, sent one after another."""
    seconds = []
    for number in range(count):
        request = import_request(f"bare {number}")
        started = time.perf_counter()
        client.import_vm_image(**request)
        seconds.append(time.perf_counter() - started)
    return seconds


def post(url, token, body, timeout=30):
    request = urllib.request.Request(
        url + "/api/imports",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def median_and_spread(values, scale=1.0, unit=""):
    """The median as "1.23 unit (1.10-1.40 over N runs)": the spread is the runs' min and max."""
    median = statistics.median(values) * scale
    low, high = min(values) * scale, max(values) * scale
    return f"{median:.2f}{unit} ({low:.2f}-{high:.2f} over {len(values)} runs)"


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CPU_PARTS = (
    "gunicorn",
    "Celery",
    "PostgreSQL",
    "Redis",
    "emulator",
    "load generator",
)

# Processes of the machine's servers, by name, counted whoever started them.
SERVERS = {"postgres": "PostgreSQL", "redis-server": "Redis"}


def cpu_per_item(before, after, count):
    """'gunicorn 6.1, Celery 6.9, ...': milliseconds of CPU per item, part by part."""
    return ", ".join(
        f"{part} {(after[part] - before[part]) / count * 1000:.1f}" for part in CPU_PARTS
    )


def process_round_trip(cpus=None, count=2000):
    """Microseconds, on average, for a byte to go to another process over loopback TCP and back.

    Every hop of an import (the client to gunicorn, gunicorn to PostgreSQL
    and Redis, Redis to the worker and on)
    wakes a process that waits for it. On some VMs a wake-up on the other
    core costs several times one on the same core; this is that cost, with
    both processes free to run on any core (`cpus=None`, as the stack's
    are) or both held on `cpus`. Linux only.
    """
    with socket.create_server(("127.0.0.1", 0)) as listener:
        child = os.fork()
        if child == 0:  # echo until the parent hangs up
            if cpus:
                os.sched_setaffinity(0, cpus)
            theirs, _ = listener.accept()
            theirs.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while data := theirs.recv(1):
                theirs.sendall(data)
            os._exit(0)
        ours = socket.create_connection(listener.getsockname())
    ours.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    allowed = os.sched_getaffinity(0)
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        started = time.perf_counter()
        for _ in range(count):
            ours.sendall(b"x")
            ours.recv(1)
        return (time.perf_counter() - started) / count * 1e6
    finally:
        os.sched_setaffinity(0, allowed)
        ours.close()
        os.waitpid(child, 0)


def describe_machine():
    """One line on what the figures depend on: cores and the cost of waking another process."""
    one_core = {min(os.sched_getaffinity(0))}
    return (
        f"{os.cpu_count()} cores; a round trip to another process "
        f"{process_round_trip():.0f} us ({process_round_trip(one_core):.0f} us with both "
        "on one core)"
    )


class Stack:
    """Emulator, gunicorn (DEBUG off) and a Celery worker on one database and broker.

    DATABASE_URL, CELERY_BROKER_URL and CACHE_URL are used when set (PostgreSQL
    and Redis, as in production), else the embedded defaults in a temporary
    DATA_DIR. This process sets Django up on the same database, to read what
    the worker stored.
    """

    def __init__(self, web_workers=4, worker_concurrency=4, **overrides):
        self.parts = []
        try:
            self.start(web_workers, worker_concurrency, overrides)
        except BaseException:
            self.stop()
            raise

    def start(self, web_workers, worker_concurrency, overrides):
        self.emulator = self.started(Emulator(step_seconds=0))
        data_dir = tempfile.mkdtemp(prefix="vmip-bench-")
        self.environ = production_environ(
            DATA_DIR=data_dir,
            PROMETHEUS_MULTIPROC_DIR=str(Path(data_dir) / "prometheus"),
            DJANGO_SETTINGS_MODULE="config.settings",
            **self.emulator.environ(),
            **overrides,
        )
        os.environ.update(self.environ)
        self.token = prepare(self.environ)
        import django

        django.setup()
        from config.celery import app

        app.control.purge()  # nothing left over from an earlier bench on this broker
        self.server = self.started(Gunicorn(self.environ, workers=web_workers))
        self.worker = self.started(
            CeleryWorker(
                self.environ, Path(data_dir) / "worker.log", concurrency=worker_concurrency
            )
        )
        self.url = self.server.url

    def started(self, part):
        self.parts.append(part)
        return part

    def describe(self):
        from django.db import connection

        broker = self.environ.get("CELERY_BROKER_URL", "filesystem://").split("://")[0]
        cache = "redis" if self.environ.get("CACHE_URL") else "file"
        return (
            f"gunicorn (DEBUG off), a Celery worker, {connection.vendor}, broker {broker}, "
            f"cache {cache}; the emulator in its own process"
        )

    def cpu_seconds(self):
        """CPU seconds (user + system) each part of the stack has used so far, from /proc.

        gunicorn (its master and workers), the Celery worker (with a prefork
        pool's children, should one run), every PostgreSQL and Redis process
        on the machine, the emulator, and this process (the load generator).
        Linux only. A process's figure includes its children that have exited
        and been reaped (PostgreSQL's backends, recycled gunicorn workers), so
        a backend that ends between two readings does not take its seconds
        with it.
        """
        processes = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                comm, rest = (entry / "stat").read_text().rsplit(")", 1)
            except OSError:
                continue  # exited meanwhile
            fields = rest.split()
            # utime, stime, then cutime and cstime: the reaped children's.
            ticks = sum(int(field) for field in fields[11:15])
            processes[int(entry.name)] = (comm.split("(", 1)[1], int(fields[1]), ticks)
        roots = {
            self.server.process.pid: ("gunicorn", "gunicorn"),
            self.worker.process.pid: ("Celery", "Celery"),  # and a prefork pool's children
            self.emulator.process.pid: ("emulator", "emulator"),
            os.getpid(): ("load generator", "load generator"),
        }
        by_part = dict.fromkeys(CPU_PARTS, 0.0)
        for pid, (name, parent, ticks) in processes.items():
            if pid in roots:
                part = roots[pid][0]
            elif parent in roots:
                part = roots[parent][1]
            elif name in SERVERS:
                part = SERVERS[name]
            else:
                continue
            by_part[part] += ticks / CLOCK_TICKS
        return by_part

    def stop(self):
        for part in reversed(self.parts):
            try:
                part.stop()
            except Exception as error:  # stop the others whatever happens to one
                print(f"could not stop {part}: {error}", file=sys.stderr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def stored_at(pk):
    """When the worker stored the import's ARN (`submitted_at`, set in that same UPDATE)."""
    from imports.models import ImageImport

    row = ImageImport.objects.filter(pk=pk).values("submitted_at", "status", "error_message")
    row = row.first()
    if row and row["status"] == "failed":
        raise RuntimeError(f"import {pk} failed: {row['error_message']}")
    return row["submitted_at"] if row else None


def wait_until_stored(pk, timeout=60, every=0.002):
    deadline = time.monotonic() + timeout
    while (moment := stored_at(pk)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"import {pk} was not sent within {timeout} s")
        time.sleep(every)
    return moment
