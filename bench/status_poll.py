"""Benchmark: an unchanged status poll against a trivial view, on the same server.

    .venv/bin/python bench/status_poll.py [--runs 5] [--seconds 8] [--connections 8]
                                          [--imports 100]

The server is production's: gunicorn with deploy/gunicorn.conf.py (sync
workers, two per core plus one), DEBUG off, JSON request lines at INFO (sent
to /dev/null, but formatted as in production). The database is DATABASE_URL
and the cache CACHE_URL when set (the figures in the README are on PostgreSQL
and Redis); without them, SQLite and the file cache. Workers are not
recycled during the runs (GUNICORN_MAX_REQUESTS=0), so that a worker's
start-up is not counted against either view.

The poll is what the import page sends while nothing changes: a signed-in
session's GET of /imports/<pk>/status?seen=<version>&every=<ms>, answered 204
from the cache by imports/polling.py's middleware, part way down the stack:
after the request ID and its log line, the security headers, whitenoise, the
malformed-text check, sessions, the host check, X-Frame-Options and the CSP,
before CSRF, auth, messages, htmx, audit, axes and the view. The baseline is
/healthz: a tiny JSON answer through the whole stack and a view, touching
neither the database nor the cache. It does no more than any page must, so
the ratio says what an unchanged poll costs against the cheapest page.

Load: wrk (Debian's package) when on PATH, with 2 threads and --connections
connections; else Python threads with requests.Session. Either keeps
connections alive, though gunicorn's sync workers close each one after its
answer, as they do in production. The two views alternate, in turns of
--seconds each, --runs times; the script prints each view's requests/s
(median and spread), the ratio per run (median, min-max; issue 14's goal:
>= 0.8), and how each poll was answered (every one must be a 204).

Then --imports imports are posted through the API and sent by a Celery
worker started as `make serve` starts it (threads pool, CELERY_CONCURRENCY)
to the AWS emulator, and the resident memory of every gunicorn worker and
of the worker, whose threads are its pool, is printed (issue 14's goal:
<= 120 MB and <= 150 MB for a pool process).
Figures only: nothing passes or fails on time.
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import requests
from serving import ROOT, free_port, prepare, production_environ, sign_in

from fakeaws.testing import running_emulator
from tests.processes import children

SEEDED_TASK = "import-ami-0123456789abcdef0"

# One import to poll, old enough (an hour) that its polling interval no
# longer changes during the runs.
POLLED_IMPORT = """
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from imports.models import ImageImport, Status, Team
user = get_user_model().objects.get(username="bench")
image_import = ImageImport.objects.create(
    team=Team.objects.get(name="bench"), submitted_by=user, name="Polled", platform="Linux",
    payload={"name": "Polled", "semanticVersion": "1.0.0"}, client_token="bench-polled-%s",
    vm_import_task_id="%s", status=Status.IMPORTING,
    created_at=timezone.now() - timedelta(hours=1),
)
print(image_import.pk, image_import.version, image_import.poll_milliseconds)
"""

WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  for status, count in pairs(total) do io.write(string.format("status %d %d\\n", status, count)) end
end
"""


def polled_import(environ):
    code = POLLED_IMPORT % (uuid.uuid4().hex[:8], SEEDED_TASK)
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=environ,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    pk, version, every = result.stdout.split()[-3:]
    return int(pk), version, every


class Server:
    """gunicorn as `make serve` runs it (deploy/gunicorn.conf.py), on a free port."""

    def __init__(self, environ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "config.wsgi",
                "--config",
                str(ROOT / "deploy" / "gunicorn.conf.py"),
            ],
            cwd=ROOT,
            env={
                **environ,
                "GUNICORN_BIND": f"127.0.0.1:{self.port}",
                "GUNICORN_MAX_REQUESTS": "0",
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/healthz", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def workers(self):
        return children(self.process.pid)

    def stop(self):
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=60)


def cpu_seconds(pids):
    """User and system CPU time the processes have used (utime and stime in /proc)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wrk_load(url, headers, seconds, connections, script):
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "-s", script]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    statuses = Counter(
        {int(code): int(count) for code, count in re.findall(r"^status (\d+) (\d+)$", output, re.M)}
    )
    errors = re.search(r"Socket errors: (.*)", output)
    if errors:
        statuses["socket errors: " + errors[1]] += 1
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]), statuses


def thread_load(url, headers, seconds, connections, script=None):
    statuses = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client():
        mine = Counter()
        with requests.Session() as session:
            session.headers.update(headers)
            while time.monotonic() < deadline:
                mine[session.get(url, timeout=30, allow_redirects=False).status_code] += 1
        with lock:
            statuses.update(mine)

    threads = [threading.Thread(target=client) for _ in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(statuses.values()) / (time.monotonic() - started), statuses


def describe(values, unit=""):
    median = statistics.median(values)
    return f"{median:8.2f}{unit} (min {min(values):.2f}, max {max(values):.2f})"


def measure_polls(server, session, pk, version, every, arguments):
    load = wrk_load if shutil.which("wrk") else thread_load
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(WRK_SCRIPT)
    poll_url = f"{server.url}/imports/{pk}/status?seen={version}&every={every}"
    headers = {**session.headers, "HX-Request": "true"}
    headers.pop("X-CSRFToken", None)
    targets = {"trivial": (server.url + "/healthz", headers), "poll": (poll_url, headers)}

    def grant_access():
        # The full answer that lets this session's next unchanged polls be
        # answered from the cache for a minute, as the page's first poll does.
        first = session.get(poll_url, headers={"HX-Request": "true"}, timeout=10)
        again = session.get(poll_url, headers={"HX-Request": "true"}, timeout=10)
        if first.status_code not in (200, 204) or again.status_code != 204:
            raise RuntimeError(f"the poll answered {first.status_code}, {again.status_code}")

    def turn(name, seconds):
        if name == "poll":
            grant_access()
        url, headers = targets[name]
        cpu_before = cpu_seconds(server.workers())
        rate, statuses = load(url, headers, seconds, arguments.connections, str(script))
        answered = sum(count for status, count in statuses.items() if isinstance(status, int))
        cpu = (cpu_seconds(server.workers()) - cpu_before) / max(answered, 1) * 1e6
        return rate, statuses, cpu

    generator = "wrk" if load is wrk_load else "Python threads"
    print(f"Load: {generator}, {arguments.connections} connections, {arguments.runs} runs")
    print(f"of {arguments.seconds} s per view, alternating; requests/s, median (min, max):")
    for name in targets:
        turn(name, 2)  # warm every worker
    rates = {name: [] for name in targets}
    cpu = {name: [] for name in targets}
    answers = {name: Counter() for name in targets}
    ratios, cpu_ratios = [], []
    for run in range(arguments.runs):
        order = list(targets) if run % 2 == 0 else list(reversed(targets))
        for name in order:
            rate, statuses, microseconds = turn(name, arguments.seconds)
            rates[name].append(rate)
            cpu[name].append(microseconds)
            answers[name].update(statuses)
        ratios.append(rates["poll"][-1] / rates["trivial"][-1])
        cpu_ratios.append(cpu["trivial"][-1] / cpu["poll"][-1])
    script.unlink()
    print(f"  trivial view (/healthz)   {describe(rates['trivial'], ' req/s')}")
    print(f"  unchanged status poll     {describe(rates['poll'], ' req/s')}")
    print(f"  ratio poll / trivial      {describe(ratios, 'x')}   goal >= 0.8x")
    print(f"  answers: trivial {dict(answers['trivial'])}, poll {dict(answers['poll'])}")
    # Steadier on a shared machine than requests/s: what the server's own
    # processes spent per answer (neither Redis's share nor the kernel's
    # network work on behalf of others is in it).
    print("gunicorn workers' CPU per answer, median (min, max):")
    print(f"  trivial view (/healthz)   {describe(cpu['trivial'], ' us')}")
    print(f"  unchanged status poll     {describe(cpu['poll'], ' us')}")
    print(f"  ratio trivial / poll      {describe(cpu_ratios, 'x')}")


def start_worker(environ, emulator, log):
    """The Celery worker as `make serve` starts it: the threads pool."""
    command = [
        str(Path(sys.executable).parent / "celery"),
        "-A",
        "config",
        "worker",
        "--pool",
        "threads",
        "--loglevel",
        "INFO",
        "--concurrency",
        environ["CELERY_CONCURRENCY"],
        "--without-gossip",
        "--without-mingle",
    ]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env={**environ, **emulator.environ()},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def send_imports(server, token, count):
    """Post `count` imports through the API; wait until every one is importing."""
    headers = {"Authorization": f"Bearer {token}"}
    run = uuid.uuid4().hex[:8]
    with requests.Session() as api:
        api.headers.update(headers)
        urls = []
        for number in range(count):
            payload = {
                "clientToken": str(uuid.uuid4()),
                "name": f"Memory {run} {number}",
                "semanticVersion": "1.0.0",
                "platform": "Linux",
                "vmImportTaskId": SEEDED_TASK,
            }
            response = api.post(server.url + "/api/imports", json=payload, timeout=30)
            response.raise_for_status()
            urls.append(f"{server.url}/api/imports/{response.json()['id']}")
        deadline = time.monotonic() + 300
        waiting = list(urls)
        while waiting and time.monotonic() < deadline:
            waiting = [url for url in waiting if not api.get(url, timeout=30).json()["imageArn"]]
            time.sleep(0.5)
    return count - len(waiting)


def measure_memory(environ, server, token, count):
    with running_emulator(step_seconds=0) as emulator, tempfile.TemporaryFile("w+") as log:
        worker = start_worker(environ, emulator, log)
        try:
            started = time.monotonic()
            while " ready." not in read_all(log):
                if time.monotonic() - started > 60 or worker.poll() is not None:
                    raise RuntimeError("the worker did not start:\n" + read_all(log))
                time.sleep(0.2)
            done = send_imports(server, token, count)
            web = {pid: rss_mib(pid) for pid in server.workers()}
            print(f"\nResident memory after the runs and {done} of {count} imports sent to AWS:")
            print(f"  gunicorn workers: {listed(web)}  goal <= 120 MB each")
            print(f"  Celery worker and its pool of threads: {rss_mib(worker.pid):.0f} MiB")
            print("    goal <= 150 MB")
        finally:
            # TERM to the worker alone, as supervisord sends it: it finishes
            # the tasks in hand.
            worker.terminate()
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)


def read_all(log):
    log.flush()
    log.seek(0)
    return log.read()


def listed(sizes):
    values = sorted(sizes.values())
    return (
        f"{len(values)}, max {max(values):.0f} MiB (" + ", ".join(f"{v:.0f}" for v in values) + ")"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--imports", type=int, default=100)
    arguments = parser.parse_args()

    environ = production_environ(LOG_FORMAT="json", LOG_LEVEL="INFO")
    environ.setdefault("CELERY_CONCURRENCY", str(min(os.cpu_count() or 1, 8) * 2))
    environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(environ["DATA_DIR"]) / "prometheus")
    token = prepare(environ)
    pk, version, every = polled_import(environ)
    database = environ.get("DATABASE_URL", "sqlite").split(":")[0]
    cache = environ.get("CACHE_URL", "file").split(":")[0]
    print(f"Status poll on gunicorn (DEBUG off), database {database}, cache {cache}")
    server = Server(environ)
    try:
        session = sign_in(requests.Session(), server.url)
        measure_polls(server, session, pk, version, every, arguments)
        if arguments.imports:
            measure_memory(environ, server, token, arguments.imports)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
