"""Benchmark: `make run`'s web process, runserver (before issue 14) against gunicorn (now).

    .venv/bin/python bench/dev_server.py [--requests 100] [--rounds 5] [--idle-clients 30]

Starts each server as the Procfile does (DEBUG on, a DATA_DIR of its own,
the database DATABASE_URL names or else SQLite): runserver, the old `web`
line, and gunicorn with config/gunicorn_run.py, the new one, side by side.
They take the rounds in turn, so that the machine's drift hits both alike.
In each round a server gets `--requests` requests over one kept-alive
connection, then as many on a new connection each, to /healthz (no
database) and to /api/imports (a bearer token and two queries); each
series gives its p50. It prints, per server, the median of the rounds' p50s
with their spread (min-max), the kept-alive p50 over the new-connection p50
(a server that stalls on kept-alive connections is well above 1), and
gunicorn's p50 over runserver's.

On PostgreSQL it also counts the connections each web process holds
(pg_stat_activity, by application_name) with `--idle-clients` client
connections left open after one request each, then after they close.

Figures only; nothing passes or fails on time (shared, noisy machines).
"""

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from serving import ROOT, free_port, prepare

BIN = Path(sys.executable).parent
PATHS = ("/healthz", "/api/imports")
SERVERS = {
    # The Procfile's `web` line before issue 14, and now.
    "runserver": "python manage.py runserver 127.0.0.1:$PORT",
    "gunicorn": "gunicorn config.wsgi_run --config config/gunicorn_run.py",
}


def dev_environ():
    environ = dict(os.environ)
    environ.update(
        DATA_DIR=tempfile.mkdtemp(prefix="vmip-bench-dev-"),
        DEBUG="1",
        LOG_LEVEL="WARNING",
        PATH=f"{BIN}{os.pathsep}{environ.get('PATH', '')}",
    )
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return environ


class WebProcess:
    """One Procfile `web` command, as honcho runs it: through a shell, with PORT set."""

    def __init__(self, command, environ):
        self.port = free_port()
        self.log = open(Path(environ["DATA_DIR"]) / "web.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=ROOT,
            env={**environ, "PORT": str(self.port)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if get(self.connection(), "/healthz") == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"{command} did not start; see {self.log.name}")
            time.sleep(0.2)

    def connection(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def stop(self):
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except ProcessLookupError:
            pass
        self.log.close()


def get(connection, path, headers=None):
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.read()
    return response.status


def timed(send, count):
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        status = send()
        timings.append(time.perf_counter() - started)
        if status != 200:
            raise RuntimeError(f"answered {status}")
    return statistics.median(timings)


def kept_alive_p50(web, path, headers, count):
    connection = web.connection()
    get(connection, path, headers)
    socket_before = connection.sock
    p50 = timed(lambda: get(connection, path, headers), count)
    if connection.sock is not socket_before:
        raise RuntimeError("the server closed the kept-alive connection")
    connection.close()
    return p50


def new_connection_p50(web, path, headers, count):
    def send():
        connection = web.connection()
        try:
            return get(connection, path, headers)
        finally:
            connection.close()

    return timed(send, count)


def named_database(environ, name):
    """The environment with PostgreSQL sessions named `name`, to count them apart."""
    url = environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return environ
    separator = "&" if "?" in url else "?"
    return {**environ, "DATABASE_URL": f"{url}{separator}application_name=bench-{name}"}


def database_connections(environ, name=None):
    """Sessions on the bench's PostgreSQL database (of `name`'s server); None elsewhere."""
    url = environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as connection:
        return connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() "
            "AND (%(name)s::text IS NULL OR application_name = %(name)s)",
            {"name": name and f"bench-{name}"},
        ).fetchone()[0]


def idle_clients(web, environ, name, headers, count):
    """Connections `name`'s server holds with `count` idle clients open, then once they close."""
    clients = []
    for _ in range(count):
        connection = web.connection()
        get(connection, "/api/imports", headers)
        clients.append(connection)
    time.sleep(1)
    open_ = database_connections(environ, name)
    for connection in clients:
        connection.close()
    time.sleep(2)
    return open_, database_connections(environ, name)


def measure(servers, headers, arguments):
    """Rounds taken in turn on each server, so that the machine's drift hits both alike."""
    for web in servers.values():
        for path in PATHS:  # warm: imports, templates, connections
            timed(lambda web=web, path=path: get(web.connection(), path, headers), 10)
    results = {name: {path: ([], []) for path in PATHS} for name in servers}
    for _ in range(arguments.rounds):
        for name, web in servers.items():
            for path in PATHS:
                kept, new = results[name][path]
                kept.append(kept_alive_p50(web, path, headers, arguments.requests))
                new.append(new_connection_p50(web, path, headers, arguments.requests))
    return results


def describe(values):
    return (
        f"{statistics.median(values) * 1000:6.1f} ms "
        f"({min(values) * 1000:5.1f}-{max(values) * 1000:5.1f})"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100, help="per round and mode")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--idle-clients", type=int, default=30)
    arguments = parser.parse_args()

    environ = dev_environ()
    headers = {"Authorization": f"Bearer {prepare(environ)}"}
    engine = "PostgreSQL" if database_connections(environ) is not None else "SQLite"
    print(
        f"make run's web process on {engine}, DEBUG on, {os.cpu_count()} cores: "
        f"{arguments.rounds} rounds of {arguments.requests} requests per mode; "
        "median of the rounds' p50s (min-max)"
    )
    servers = {}
    try:
        for name, command in SERVERS.items():
            servers[name] = WebProcess(command, named_database(environ, name))
        results = measure(servers, headers, arguments)
        held = {
            name: idle_clients(web, environ, name, headers, arguments.idle_clients)
            for name, web in servers.items()
        }
    finally:
        for web in servers.values():
            web.stop()
    for path in PATHS:
        print(f"\nGET {path}")
        for name in SERVERS:
            kept, new = results[name][path]
            ratio = statistics.median(kept) / statistics.median(new)
            print(
                f"  {name:<10} kept alive {describe(kept)}   new connection {describe(new)}"
                f"   kept/new {ratio:4.2f}x"
            )
        old, now = results["runserver"][path], results["gunicorn"][path]
        print(
            "  gunicorn/runserver: kept alive "
            f"{statistics.median(now[0]) / statistics.median(old[0]):4.2f}x, new connection "
            f"{statistics.median(now[1]) / statistics.median(old[1]):4.2f}x"
        )
    if engine == "PostgreSQL":
        print(f"\nPostgreSQL connections held, {arguments.idle_clients} idle clients open / closed")
        for name, (open_, closed) in held.items():
            print(f"  {name:<10} {open_:3d} / {closed:3d}")


if __name__ == "__main__":
    sys.exit(main())
