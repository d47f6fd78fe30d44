"""A RabbitMQ that hangs: a submit's POST still answers at once, and each import is sent once.

RabbitMQ is reached through tests.test_broker_outages' proxy, which stops
forwarding (the broker's process stopped, its TCP still accepted). The
portal's web runs in a subprocess, on the test's PostgreSQL database, with
its broker behind the proxy and a queue of this test's own (no other
worker takes its messages); it POSTs /api/imports as a client would.

Seen: on a connection opened before the hang, a publish only writes to the
socket and returns at once (the message waits in the socket and goes out
when the broker answers again); a new connection gives up within
BROKER_TIMEOUT, and the process then leaves the broker alone for
BROKER_PUBLISH_PAUSE. Either way the sweeper sends what is still unsent
after IMPORT_UNSENT_AFTER, and the claim makes AWS see each import once.
"""

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from kombu import Connection

from imports import tasks
from imports.models import ImageImport, Status

from .factories import valid_payload
from .test_broker_outages import REPO, HangingProxy, listening
from .test_serve import database_url_for_tests

RABBITMQ_PORT = 5672
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:{port}//"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="the web subprocess shares the test's database: PostgreSQL",
    ),
    pytest.mark.skipif(
        not listening(RABBITMQ_PORT), reason=f"no RabbitMQ on 127.0.0.1:{RABBITMQ_PORT}"
    ),
]

# A web process: each line read is an import's JSON, POSTed to /api/imports;
# each line written its seconds, status and import id.
WEB = """
import json, sys, time
import django
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment
from config.celery import app
app.conf.task_default_queue = sys.argv[1]
setup_test_environment()
client = Client(headers={"Authorization": "Bearer " + sys.argv[2]})
for line in sys.stdin:
    started = time.monotonic()
    response = client.post("/api/imports", line, content_type="application/json")
    seconds = time.monotonic() - started
    answer = {"seconds": seconds, "status": response.status_code, "id": response.json().get("id")}
    print(json.dumps(answer), flush=True)
"""


class Web:
    def __init__(self, broker_url, queue, token, tmp_path):
        environ = {
            **os.environ,
            "CELERY_BROKER_URL": broker_url,
            "DATABASE_URL": database_url_for_tests(),
            "DATA_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PYTHONPATH": str(REPO),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-c", WEB, queue, token],
            cwd=REPO,
            env=environ,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def submit(self):
        payload = valid_payload(clientToken=str(uuid.uuid4()))
        self.process.stdin.write(json.dumps(payload) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture
def queue():
    """A queue of this test's own on the real RabbitMQ; its messages' import ids."""
    name = f"vmip-test-{uuid.uuid4()}"
    with Connection(RABBITMQ_URL.format(port=RABBITMQ_PORT)) as connection:
        simple = connection.SimpleQueue(name)

        def sent_ids():
            ids = []
            while True:
                try:
                    message = simple.get(timeout=1)
                except simple.Empty:
                    return ids
                args, _kwargs, _embed = message.decode()
                ids += args
                message.ack()

        yield name, sent_ids
        simple.close()
        connection.default_channel.queue_delete(name)


@pytest.fixture
def proxy():
    proxy = HangingProxy(RABBITMQ_PORT)
    yield proxy
    proxy.close()


@pytest.fixture
def start_web(proxy, queue, api_token, tmp_path):
    started = []

    def start():
        web = Web(RABBITMQ_URL.format(port=proxy.port), queue[0], api_token, tmp_path)
        started.append(web)
        return web

    yield start
    for web in started:
        web.close()


def resume(proxy):
    """The broker answers again: what its connections held goes through."""
    proxy.hanging.clear()
    time.sleep(1)


def sweep_after_unsent_delay():
    """The sweeper's run once IMPORT_UNSENT_AFTER has passed: the ids it sends."""
    past = timezone.now() - timedelta(seconds=settings.IMPORT_UNSENT_AFTER + 1)
    ImageImport.objects.filter(status=Status.QUEUED).update(updated_at=past)
    sent = []
    tasks.submit_import.delay = sent.append  # this process's broker is not the proxied one
    try:
        tasks.requeue_stuck_imports()
    finally:
        del tasks.submit_import.delay
    return sent


def run_every_message(ids):
    for pk in ids:
        tasks.submit_import(pk)


def test_a_post_on_an_open_connection_answers_at_once_and_its_import_goes_out_once(
    start_web, proxy, queue, emulator
):
    web = start_web()
    first = web.submit()  # the broker works: the web's connection is open
    assert first["status"] == 201, first
    proxy.hang()

    during = [web.submit() for _ in range(3)]

    assert all(answer["status"] == 201 for answer in during), during
    # Not BROKER_TIMEOUT each: the publish only writes to the open socket.
    assert all(answer["seconds"] < settings.BROKER_TIMEOUT for answer in during), during
    resume(proxy)
    _, sent_ids = queue
    delivered = sent_ids()
    imports = [first["id"], *(answer["id"] for answer in during)]
    assert sorted(delivered) == sorted(imports)  # held in the socket, then delivered

    # Had the connection died instead, the sweeper would send them: it does
    # anyway, as none was taken yet; the claim lets one message through.
    resent = sweep_after_unsent_delay()
    run_every_message(delivered + resent)

    assert set(ImageImport.objects.values_list("status", flat=True)) == {Status.IMPORTING}
    assert emulator.calls()["operations"]["ImportVmImage"] == len(imports)


def test_a_post_on_a_new_connection_waits_broker_timeout_once_then_none(
    start_web, proxy, queue, emulator
):
    proxy.hang()
    web = start_web()

    answers = [web.submit() for _ in range(3)]

    assert all(answer["status"] == 201 for answer in answers), answers
    first, *following = answers
    assert first["seconds"] < settings.BROKER_TIMEOUT + 1, answers
    # The pause: none waits the timeout (one that did took at least that long;
    # a POST alone, on a loaded machine, may take a good part of a second).
    assert all(answer["seconds"] < settings.BROKER_TIMEOUT for answer in following), answers
    resume(proxy)
    _, sent_ids = queue
    assert sent_ids() == []  # nothing was published: the sweeper sends them

    resent = sweep_after_unsent_delay()
    assert sorted(resent) == sorted(answer["id"] for answer in answers)
    run_every_message(resent)
    assert emulator.calls()["operations"]["ImportVmImage"] == len(answers)
