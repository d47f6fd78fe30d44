"""Benchmark: a new process's first request and first import, against the ones after.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/12 CACHE_URL=redis://127.0.0.1:6379/13 \\
      .venv/bin/python bench/first_request.py [--runs 5]

A gunicorn worker is new after every deploy and every `max_requests`, a
Celery worker after every deploy; whoever comes first meets it. The stack
is bench/stack.py's, with one gunicorn worker so that the request goes to
the new one. Each run:

- gunicorn: SIGHUP (a new worker in the old one's place), then, once the new
  worker has had 2 s (its start-up loading, config/warmup.py, takes well
  under one), the sign-in page, an API POST and the API list, each once as
  the worker's first of its kind and then again: the first's time ÷ the
  second's;
- Celery: a new worker in the old one's place, and once it answers a ping,
  one import posted: from the POST to its ARN stored, first import ÷ the
  import after it.

Prints each as the median over runs with the spread. Figures only.
"""

import argparse
import os
import signal
import statistics
import sys
import time
import urllib.request
from pathlib import Path

from stack import (
    CeleryWorker,
    Stack,
    describe_machine,
    import_request,
    median_and_spread,
    post,
    wait_until_stored,
)

from tests.processes import children


def timed(call):
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def page_requests(stack):
    """(name, the request) for each kind of request a person sends first."""
    return (
        ("sign-in page", lambda: urllib.request.urlopen(stack.url + "/accounts/login/").read()),
        ("API POST", lambda: post(stack.url, stack.token, import_request("first"))),
        ("API list", lambda: api_list(stack)),
    )


def api_list(stack):
    request = urllib.request.Request(
        stack.url + "/api/imports", headers={"Authorization": f"Bearer {stack.token}"}
    )
    urllib.request.urlopen(request).read()


def new_web_worker(stack):
    """SIGHUP: gunicorn starts a new worker and stops the old one."""
    master = stack.server.process.pid
    old = set(children(master))
    os.kill(master, signal.SIGHUP)
    deadline = time.monotonic() + 30
    while not (set(children(master)) - old) or set(children(master)) & old:
        if time.monotonic() > deadline:
            raise RuntimeError("gunicorn did not replace its worker")
        time.sleep(0.05)
    time.sleep(2)


def new_celery_worker(stack):
    from config.celery import app

    stack.worker.stop()
    data_dir = Path(stack.environ["DATA_DIR"])
    stack.worker = CeleryWorker(stack.environ, data_dir / "worker.log", concurrency=4)
    stack.parts.append(stack.worker)
    deadline = time.monotonic() + 60
    while not app.control.ping(timeout=0.5):
        if time.monotonic() > deadline:
            raise RuntimeError("the new Celery worker did not answer")


def import_time(stack, label):
    posted = time.time()
    pk = post(stack.url, stack.token, import_request(label))["id"]
    return wait_until_stored(pk).timestamp() - posted


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with Stack(web_workers=1) as stack:
        import_time(stack, "warm the emulator")  # its own first call is not the portal's
        print(f"First requests on {stack.describe()}, one gunicorn worker")
        print(f"Machine: {describe_machine()}")
        firsts = {name: [] for name, _ in page_requests(stack)}
        ratios = {name: [] for name, _ in page_requests(stack)}
        for _ in range(args.runs):
            new_web_worker(stack)
            for name, request in page_requests(stack):
                first, then = timed(request), timed(request)
                firsts[name].append(first)
                ratios[name].append(first / then)
        print("A new gunicorn worker's first request of each kind:")
        for name in firsts:
            print(
                f"  {name:13s} {median_and_spread(firsts[name], 1000, ' ms')}, "
                f"{median_and_spread(ratios[name], 1, 'x')} the next one's"
            )
        first_imports, import_ratios = [], []
        for run in range(args.runs):
            new_celery_worker(stack)
            first = import_time(stack, f"first {run}")
            then = statistics.median(import_time(stack, f"then {run}") for _ in range(3))
            first_imports.append(first)
            import_ratios.append(first / then)
        print(
            "A new Celery worker's first import, POST -> ARN stored: "
            f"{median_and_spread(first_imports, 1000, ' ms')}, "
            f"{median_and_spread(import_ratios, 1, 'x')} the next ones'"
        )


if __name__ == "__main__":
    sys.exit(main())
