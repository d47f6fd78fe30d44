"""The portal's two brokers: kombu's transports, with the portal's fixes.

`make run`'s filesystem broker: messages that appear whole or not at all.

kombu's filesystem transport creates a message's file in the queue folder
and only then writes it. A worker listing the folder in between takes an
empty file, and its consumer dies on the JSON error ("Unrecoverable error:
JSONDecodeError", kombu issue #1551), which stops all of `make run`; beat's
messages every few seconds made it happen within minutes under load. Here a
message is written under a name no consumer reads, then renamed into place:
a rename within a folder is atomic, so a consumer finds the whole message or
nothing. Messages and folders are kombu's own otherwise. And a worker
whose prefetched messages are all in hand waits for more in short turns,
so that it acks what it has finished (Transport.drain_events).

Redis (production): one redis.Redis per connection pool, not one per call.
"""

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, redis
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

# A consumer takes only files named <...>.<queue>.msg.
BEING_WRITTEN = ".writing"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put `payload` onto `queue`, under kombu's file name, in one rename."""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        try:
            with open(path + BEING_WRITTEN, "wb") as message:
                message.write(str_to_bytes(dumps(payload)))
            os.replace(path + BEING_WRITTEN, path)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {path!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel

    def drain_events(self, connection, timeout=None):
        """kombu's, but with a consumer's prefetched messages all in hand, one interval at most.

        Celery's loop for a transport without a file descriptor (`synloop`)
        acks the tasks its pool has finished only between two waits for a
        message, of 2 s each. With every prefetched message in hand, none
        can come to end the wait: a backlog drained at `--concurrency`
        imports per 2 s however fast each one ran, and a new import could
        wait behind refreshes beat had sent, long finished. Such a wait now
        ends after one polling interval, and the acks follow at once; a
        consumer that may take more (a SimpleQueue) waits as long as asked.
        """
        if timeout is not None and self.polling_interval and self.prefetch_in_hand():
            timeout = min(timeout, self.polling_interval)
        return super().drain_events(connection, timeout=timeout)

    def prefetch_in_hand(self):
        """Whether a consumer holds as many unacked messages as its prefetch allows.

        Any one: the worker's connection also has channels of other kinds
        (remote control's), which may always take more.
        """
        return any(c._consumers and not c.qos.can_consume() for c in self.channels)


class RedisChannel(redis.Channel):
    """kombu's Redis channel, keeping one redis.Redis per connection pool.

    kombu builds a new redis.Redis for every publish, and the worker one
    for every message it takes and every ack; redis-py 8's constructor
    fills a table of some 170 response callbacks each time, about 70 us of
    CPU, half a publish's round trip. A redis.Redis over a pool
    is safe to share between threads: each command takes its own
    connection from the pool. The worker's blocking reads keep kombu's own
    asynchronous client.
    """

    _reused = (None, None)  # (the pool, its client)

    def _create_client(self, asynchronous=False):
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        if self._reused[0] is not pool:  # first use, or kombu replaced the pool (a reconnection)
            self._reused = (pool, super()._create_client())
        return self._reused[1]


class RedisTransport(redis.Transport):
    Channel = RedisChannel
