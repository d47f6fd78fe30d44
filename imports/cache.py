"""The cache as an optional speed-up: when it is down, carry on without it.

Sessions and the VM import task list go through `ForgivingCache`: a failed
read is a miss, a failed write is skipped, and after one failure the cache
is left alone for CACHE_RETRY_SECONDS, so that a Redis that hangs costs one
timeout per process and pause, not one per call.
"""

import logging
import time

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache, RedisCacheClient

logger = logging.getLogger(__name__)

CACHE_RETRY_SECONDS = 10

# alias -> time.monotonic() before which the cache is not asked
_skip_until = {}


class ForgivingCache:
    def __init__(self, alias="default"):
        self.alias = alias

    def _try(self, operation, default, *args):
        if time.monotonic() < _skip_until.get(self.alias, 0):
            return default
        try:
            return getattr(caches[self.alias], operation)(*args)
        except Exception as error:
            _skip_until[self.alias] = time.monotonic() + CACHE_RETRY_SECONDS
            logger.warning(
                "Cache %s failed (%r); going without it for %ss",
                operation,
                error,
                CACHE_RETRY_SECONDS,
            )
            return default

    def get(self, key, default=None):
        return self._try("get", default, key, default)

    def set(self, key, value, timeout=None):
        self._try("set", None, key, value, timeout)

    def delete(self, key):
        self._try("delete", None, key)

    def __contains__(self, key):
        return self._try("has_key", False, key)


def forget_failures():
    """Ask the cache again at once (tests, and after a configuration change)."""
    _skip_until.clear()


class ReusingRedisCacheClient(RedisCacheClient):
    """Django's Redis client, keeping one redis.Redis per connection pool.

    Django builds a new redis.Redis on every cache call, and redis-py 8's
    constructor fills a table of some 170 response callbacks each time:
    about 130 us of CPU, more than the round trip to Redis, on every
    unchanged status poll. A redis.Redis over a pool is safe to share
    between threads; each command takes its own connection from the pool.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(pool)
        if client is None:
            client = self._clients[pool] = self._client(connection_pool=pool)
        return client


class ReusingRedisCache(RedisCache):
    """Django's RedisCache (CACHE_URL=redis://...) on ReusingRedisCacheClient."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
