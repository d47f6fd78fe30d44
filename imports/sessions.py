"""Sessions cached in front of the database, and still there when the cache is not.

Django's `cached_db` store already falls back to the database when a cache
read fails, but its cache writes and look-ups raise: with Redis down, every
signed-in page would answer 500. Here the cache is a `ForgivingCache`, so
the database answers alone and nobody is signed out.
"""

from django.conf import settings
from django.contrib.sessions.backends import cached_db

from .cache import ForgivingCache


class SessionStore(cached_db.SessionStore):
    def __init__(self, session_key=None):
        super().__init__(session_key)
        self._cache = ForgivingCache(settings.SESSION_CACHE_ALIAS)
