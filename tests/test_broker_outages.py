"""A broker that hangs costs a submit a second or two, not the 20-70 s it did.

The broker is real (Redis, or RabbitMQ when one listens on 5672), reached
through a proxy of the test's own that can stop forwarding: the broker's
process stopped (SIGSTOP), its TCP connections still open, nothing coming
back. The portal runs in a subprocess with its own settings for that broker,
as a web process does (this test process keeps the configured broker).
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .sockets import free_port

REPO = Path(__file__).resolve().parent.parent
NO_SUCH_IMPORT = 987654  # the submit task finds nothing to do, should it ever run

# The portal's publishing, in a process of its own: each line read is a
# submit's publish, answered with its seconds and whether it was queued.
PUBLISHER = """
import json, sys, time
import django
django.setup()
from imports import tasks
for line in sys.stdin:
    started = time.monotonic()
    queued = tasks.send_to_worker(int(line))
    print(json.dumps({"seconds": time.monotonic() - started, "queued": queued}), flush=True)
"""


def listening(port):
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class HangingProxy:
    """Forwards to a real server until hang(); then forwards nothing, either way.

    Like the server's process stopped: connections, old and new, are
    accepted and kept open, and no byte comes back.
    """

    def __init__(self, target_port):
        self.target_port = target_port
        self.port = free_port()
        self.hanging = threading.Event()
        self.stopped = threading.Event()
        self.sockets = []
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.listener.settimeout(0.1)
        threading.Thread(target=self.accept, daemon=True).start()

    def hang(self):
        self.hanging.set()
        time.sleep(0.3)  # each pump's recv in hand has timed out: nothing more goes through

    def restart(self):
        """Close every connection, as a broker that restarts does; new ones go through."""
        sockets, self.sockets = self.sockets, []
        for sock in sockets:
            sock.close()

    def close(self):
        self.stopped.set()
        self.listener.close()
        for sock in self.sockets:
            sock.close()

    def accept(self):
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            self.sockets.append(client)
            if self.hanging.is_set():
                continue  # accepted, never answered
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets.append(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pump, args=(source, sink), daemon=True).start()

    def pump(self, source, sink):
        source.settimeout(0.1)
        while not self.stopped.is_set():
            if self.hanging.is_set():
                time.sleep(0.1)  # holds what was sent: it is never read
                continue
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            sink.sendall(data)


class Publisher:
    """The portal's send_to_worker in a subprocess configured for `broker_url`."""

    def __init__(self, broker_url, tmp_path):
        environ = {
            **os.environ,
            "CELERY_BROKER_URL": broker_url,
            "DATA_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PYTHONPATH": str(REPO),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-c", PUBLISHER],
            cwd=REPO,
            env=environ,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def send(self):
        self.process.stdin.write(f"{NO_SUCH_IMPORT}\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=30)


BROKERS = {
    "redis": (6379, "redis://127.0.0.1:{port}/14"),
    "rabbitmq": (5672, "amqp://guest:guest@127.0.0.1:{port}//"),
}


@pytest.fixture(params=sorted(BROKERS))
def broker(request, tmp_path):
    """(its name, the proxy, a publisher through it) for a broker listening here."""
    port, url = BROKERS[request.param]
    if not listening(port):
        pytest.skip(f"no {request.param} on 127.0.0.1:{port}")
    proxy = HangingProxy(port)
    publisher = Publisher(url.format(port=proxy.port), tmp_path)
    yield request.param, proxy, publisher
    publisher.close()
    proxy.close()
    if request.param == "redis":
        import redis

        redis.Redis(port=port, db=14).flushdb()  # the message the healthy broker took


def test_a_hanging_broker_costs_a_submit_a_second_or_two_then_nothing(broker):
    name, proxy, publisher = broker
    assert publisher.send()["queued"]  # the broker works: a connection is open
    proxy.hang()

    sends = [publisher.send() for _ in range(4)]

    # Before, on Redis: 20 s for each (two 5 s timeouts, each retried once by
    # redis-py, on the health check's PING and on the command), 70 s for the
    # first on an open connection.
    assert all(sent["seconds"] < 3 for sent in sends), sends
    assert sum(sent["seconds"] for sent in sends) < 4, sends
    if name == "redis":
        # The first waits for its answer and fails; the next ones are left
        # for the sweeper at once, not after a timeout each.
        first, *following = sends
        assert not first["queued"], sends
        assert all(not sent["queued"] and sent["seconds"] < 0.1 for sent in following), sends
    # (RabbitMQ's publish only writes to the socket: it waits for nothing.)


def test_a_restarted_broker_is_published_to_at_once(broker):
    # The tries after a failure are kept for this: a connection the broker
    # closed is opened again, and the import goes out with no pause.
    _, proxy, publisher = broker
    assert publisher.send()["queued"]
    proxy.restart()

    sent = publisher.send()

    assert sent["queued"] and sent["seconds"] < 3, sent


def test_the_publish_timeouts_are_short_and_the_worker_s_reconnects_unbounded(settings):
    assert settings.BROKER_TIMEOUT <= 2
    assert settings.CELERY_BROKER_CONNECTION_TIMEOUT <= 2
    assert settings.BROKER_PUBLISH_PAUSE >= 5
    assert settings.CELERY_BROKER_CONNECTION_MAX_RETRIES is None
