"""The cache as an optional speed-up: when it is down, carry on without it.

Sessions and the VM import task list go through `ForgivingCache`: a failed
read is a miss, a failed write is skipped, and after one failure the cache
is left alone for CACHE_RETRY_SECONDS, so that a Redis that hangs costs one
timeout per process and pause, not one per call.
"""

import logging
import time

from django.core.cache import caches

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
