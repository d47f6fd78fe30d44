"""`make run`'s filesystem broker: a message is taken whole or not at all (config/broker.py)."""

import os
import socket
import threading

import pytest
from kombu import Connection, Consumer, Queue

from config.broker import BEING_WRITTEN

TRANSPORT = "config.broker:Transport"


@pytest.fixture
def folder(tmp_path):
    control = tmp_path.parent / (tmp_path.name + "-control")  # exchanges, not messages
    control.mkdir()
    return {
        "queue": tmp_path.name,
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "control_folder": str(control),
    }


def queue_in(folder):
    # A queue of each test's own: kombu keeps exchanges and bindings per process.
    options = {name: value for name, value in folder.items() if name != "queue"}
    connection = Connection("filesystem://", transport=TRANSPORT, transport_options=options)
    return connection, connection.SimpleQueue(folder["queue"])


def test_the_portal_uses_it_whenever_the_broker_is_the_filesystem(settings):
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        assert settings.CELERY_BROKER_TRANSPORT == TRANSPORT


def test_a_message_still_being_written_is_left_where_it_is(folder, tmp_path):
    connection, queue = queue_in(folder)
    with connection:
        queue.put({"n": 1})
        (written,) = os.listdir(tmp_path)
        # What a consumer lists while a message is written: kombu's own
        # transport would have created the final name, empty, at this point.
        os.rename(tmp_path / written, tmp_path / (written + BEING_WRITTEN))
        with pytest.raises(queue.Empty):
            queue.get(timeout=0.3)
        os.rename(tmp_path / (written + BEING_WRITTEN), tmp_path / written)
        assert queue.get(timeout=1).payload == {"n": 1}


def test_a_consumer_racing_a_producer_gets_every_message_whole(folder):
    count, received, errors = 500, [], []

    def produce():
        declared.wait(timeout=30)
        connection, queue = queue_in(folder)
        with connection:
            for number in range(count):
                queue.put({"n": number, "padding": "x" * 20_000})

    declared = threading.Event()

    def consume():
        connection, queue = queue_in(folder)
        with connection:
            # The queue and its binding exist before the first put: kombu
            # drops a message sent to an exchange with no queue bound yet.
            declared.set()
            while len(received) < count:
                try:
                    message = queue.get(timeout=5)
                except queue.Empty:
                    return
                except Exception as error:  # kombu's own transport: JSONDecodeError
                    errors.append(error)
                    continue
                message.ack()
                received.append(message.payload["n"])

    threads = [threading.Thread(target=consume), threading.Thread(target=produce)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(received) == list(range(count))


# -- Redis: one redis.Redis per connection pool ------------------------------------

REDIS_TRANSPORT = "config.broker:RedisTransport"


def test_the_portal_uses_it_whenever_the_broker_is_plain_redis(settings):
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        assert settings.CELERY_BROKER_TRANSPORT == REDIS_TRANSPORT


def redis_channel():
    # No command is sent: redis-py connects on a client's first command.
    connection = Connection("redis://127.0.0.1:6379/15", transport=REDIS_TRANSPORT)
    return connection, connection.default_channel


def test_every_publish_and_ack_shares_one_client_per_pool():
    connection, channel = redis_channel()
    with connection:
        client = channel._create_client()
        with channel.conn_or_acquire() as publishing, channel.qos.pipe_or_acquire() as pipe:
            assert publishing is client
            assert pipe.connection_pool is client.connection_pool
        assert channel._create_client() is client
        # The worker's blocking reads keep a client of their own, on their own pool.
        assert channel.client is not client


def test_a_new_pool_gets_a_new_client():
    connection, channel = redis_channel()
    with connection:
        client = channel._create_client()
        channel._pool = None  # as kombu leaves it after losing the connection
        replacement = channel._create_client()
        assert replacement is not client
        assert replacement.connection_pool is channel.pool is not client.connection_pool


class FakeClock:
    """kombu's waits on a clock of the test's own: asleep, it moves on at once."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("kombu.transport.virtual.base.monotonic", clock.monotonic)
    monkeypatch.setattr("kombu.transport.virtual.base.sleep", clock.sleep)
    return clock


def test_a_worker_with_its_prefetch_in_hand_waits_one_interval_so_it_can_ack(folder, clock):
    options = {name: value for name, value in folder.items() if name != "queue"}
    options["polling_interval"] = 0.1
    in_hand = []
    with Connection("filesystem://", transport=TRANSPORT, transport_options=options) as connection:
        queue = Queue(folder["queue"])
        connection.SimpleQueue(folder["queue"]).put({"n": 1})
        channel = connection.channel()
        consumer = Consumer(
            channel, [queue], callbacks=[lambda body, message: in_hand.append(message)]
        )
        consumer.qos(prefetch_count=1)
        consumer.consume()
        connection.drain_events(timeout=2.0)
        assert len(in_hand) == 1  # taken, not acked: the prefetch is in hand

        # Celery's synloop waits 2 s, and acks only after: the wait ends early.
        with pytest.raises(socket.timeout):
            connection.drain_events(timeout=2.0)
        assert clock.now <= 0.2

        in_hand[0].ack()
        connection.SimpleQueue(folder["queue"]).put({"n": 2})
        connection.drain_events(timeout=2.0)
        assert [message.payload for message in in_hand] == [{"n": 1}, {"n": 2}]


def test_a_consumer_that_may_take_more_waits_as_long_as_it_asked(folder, clock):
    connection, queue = queue_in(folder)
    with connection, pytest.raises(queue.Empty):
        queue.get(timeout=2.0)
    assert clock.now >= 2.0
