"""Benchmark: planned outages against the portal on gunicorn, DEBUG off.

    .venv/bin/python bench/outages.py [--restarts 3]

1. PostgreSQL refusing connections (a closed port);
2. PostgreSQL accepting connections and never answering (a silent listener);
3. Redis (the cache) down while people are signed in;
4. Redis (cache and broker) restarted under load, with a Celery worker and
   the AWS emulator: answers of 500, how often the worker exited (it is
   started again at once, as the production supervisor does), and whether
   every import posted reached AWS.

Each outage uses its own throwaway servers, never the shared ones. The
database for 3 and 4 is DATABASE_URL if set, else SQLite. Prints status
codes and times; figures only, nothing is asserted.
"""

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from serving import (
    ROOT,
    Gunicorn,
    RedisServer,
    prepare,
    production_environ,
    run_manage,
    sign_in,
)

from tests.sockets import closed_port, hanging_server

PAGES = ["/healthz", "/readyz", "/accounts/login/", "/", "/api/imports"]


def probe(url, path, **headers):
    started = time.perf_counter()
    try:
        response = requests.get(url + path, headers=headers, timeout=60, allow_redirects=False)
        status = response.status_code
        retry = response.headers.get("Retry-After", "")
    except requests.RequestException as error:
        status, retry = type(error).__name__, ""
    return status, time.perf_counter() - started, retry


def database_down(title, port):
    environ = production_environ(DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/portal")
    run_manage(environ, "collectstatic", "--noinput", "-v", "0")  # needs no database
    print(f"\n{title}")
    with Gunicorn(environ) as server:
        for path in PAGES:
            headers = {"Cookie": f"sessionid={uuid.uuid4().hex}"} if path == "/" else {}
            if path.startswith("/api/"):
                headers["Authorization"] = "Bearer vmip_not-a-real-token"
            status, seconds, retry = probe(server.url, path, **headers)
            note = f" Retry-After: {retry}" if retry else ""
            print(f"  {path:<18} {status} in {seconds:5.2f} s{note}")


def cache_down():
    print("\n3. Redis (the cache) down while signed in")
    with RedisServer() as redis:
        environ = production_environ(CACHE_URL=redis.url + "/1")
        token = prepare(environ)
        with Gunicorn(environ) as server:
            person = sign_in(requests.Session(), server.url)
            redis.stop()
            for path in ["/", "/imports/new", "/imports/new/vm-import-tasks", "/readyz"]:
                started = time.perf_counter()
                status = person.get(server.url + path, timeout=60).status_code
                print(f"  {path:<30} {status} in {time.perf_counter() - started:5.2f} s")
            started = time.perf_counter()
            body = {
                "clientToken": str(uuid.uuid4()),
                "name": "during the outage",
                "semanticVersion": "1.0.0",
                "platform": "Linux",
                "vmImportTaskId": "import-ami-0123456789abcdef0",
            }
            response = requests.post(
                server.url + "/api/imports",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
            seconds = time.perf_counter() - started
            print(f"  {'POST /api/imports':<30} {response.status_code} in {seconds:5.2f} s")


def redis_restarts(restarts):
    print(f"\n4. Redis (cache and broker) restarted {restarts} times under load")
    from fakeaws.testing import running_emulator

    with RedisServer() as redis, running_emulator(step_seconds=1) as emulator:
        environ = production_environ(
            CACHE_URL=redis.url + "/1",
            CELERY_BROKER_URL=redis.url + "/0",
            IMPORT_SWEEP_INTERVAL=5,
            **emulator.environ(),
        )
        token = prepare(environ)
        worker_log = Path(environ["DATA_DIR"]) / "worker.log"
        supervisor = Supervisor(environ, worker_log)
        statuses = collections.Counter()
        posted = []
        stop = threading.Event()
        with Gunicorn(environ) as server:
            person = sign_in(requests.Session(), server.url)

            def load():
                while not stop.is_set():
                    for path in ["/", "/api/imports", "/imports/new"]:
                        session = person if not path.startswith("/api/") else requests
                        headers = {"Authorization": f"Bearer {token}"}
                        try:
                            response = session.get(server.url + path, headers=headers, timeout=60)
                            statuses[response.status_code] += 1
                        except requests.RequestException as error:
                            statuses[type(error).__name__] += 1
                    body = {
                        "clientToken": str(uuid.uuid4()),
                        "name": "under load",
                        "semanticVersion": "1.0.0",
                        "platform": "Linux",
                        "vmImportTaskId": "import-ami-0123456789abcdef0",
                    }
                    try:
                        response = requests.post(
                            server.url + "/api/imports",
                            json=body,
                            headers={"Authorization": f"Bearer {token}"},
                            timeout=60,
                        )
                        statuses[response.status_code] += 1
                        if response.status_code == 201:
                            posted.append(response.json()["id"])
                    except requests.RequestException as error:
                        statuses[type(error).__name__] += 1

            threads = [threading.Thread(target=load) for _ in range(4)]
            for thread in threads:
                thread.start()
            for _ in range(restarts):
                time.sleep(3)
                redis.stop()
                time.sleep(1)
                redis.start()
            time.sleep(3)
            stop.set()
            for thread in threads:
                thread.join()
            waited = wait_until_sent(server.url, token, posted, seconds=180)
        supervisor.stop()
        errors = worker_log.read_text()
    server_errors = sum(n for s, n in statuses.items() if not isinstance(s, int) or s >= 500)
    print(f"  answers:                  {dict(sorted(statuses.items(), key=str))}")
    print(f"  answers >= 500:           {server_errors}")
    print(f"  worker exits (restarted as a supervisor would): {supervisor.restarts}")
    print(f"  unrecoverable errors:     {errors.count('Unrecoverable error')}")
    lines = errors.splitlines()
    for number, line in enumerate(lines):
        if "Unrecoverable error" in line:
            print(f"    {line.strip()[:300]}")
            frames = [f for f in lines[number : number + 80] if f.strip().startswith("File ")]
            for frame in frames[-6:]:
                print(f"      {frame.strip().split('site-packages/')[-1][:160]}")
    print(f"  imports posted:           {len(posted)}; {waited}")


class Supervisor:
    """Runs the Celery worker (with beat) and starts it again when it exits."""

    def __init__(self, environ, log_path):
        self.environ, self.log = environ, open(log_path, "a")  # noqa: SIM115
        self.restarts = 0
        self.stopping = threading.Event()
        self.process = self.start()
        self.thread = threading.Thread(target=self.watch, daemon=True)
        self.thread.start()

    def start(self):
        return subprocess.Popen(
            [
                str(ROOT / ".venv/bin/celery"),
                "-A",
                "config",
                "worker",
                "--beat",
                "--concurrency",
                "4",
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=self.environ,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )

    def watch(self):
        while not self.stopping.wait(0.5):
            if self.process.poll() is not None:
                self.restarts += 1
                self.process = self.start()

    def stop(self):
        self.stopping.set()
        self.thread.join()
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def wait_until_sent(url, token, ids, seconds):
    """How many of the posted imports left `queued`/`submitting` within `seconds`."""
    deadline = time.monotonic() + seconds
    pending = set(ids)
    while pending and time.monotonic() < deadline:
        for pk in list(pending):
            response = requests.get(
                f"{url}/api/imports/{pk}", headers={"Authorization": f"Bearer {token}"}, timeout=10
            )
            if response.ok and response.json()["status"] not in ("queued", "submitting"):
                pending.discard(pk)
        time.sleep(1)
    return f"{len(ids) - len(pending)} sent to AWS within {seconds} s, {len(pending)} still waiting"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--only", default="1234", help="which outages to run, e.g. 4")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="vmip-bench-"))
    import django

    django.setup()
    if "1" in args.only:
        database_down("1. PostgreSQL refusing connections", closed_port())
    if "2" in args.only:
        with hanging_server() as port:
            database_down("2. PostgreSQL accepting connections and never answering", port)
    if "3" in args.only:
        cache_down()
    if "4" in args.only:
        redis_restarts(args.restarts)


if __name__ == "__main__":
    sys.exit(main())
