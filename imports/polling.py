"""An import page's status poll, answered from the cache while nothing changed.

Every open import page asks for its status every quarter of a second to ten
seconds, and nearly every answer is "nothing changed". Such a poll carries
the import's version it last saw (`seen`) and its interval (`every`); it is
answered 204 from one round trip to the cache, with no database work, when:

- the session is still in the cache (sessions are cached_db: signing out or
  expiring removes it), so a session that ended is never answered here;
- a full answer granted this session this import lately
  (`remember_poll_access`, after the team rules allowed it);
- the import's version in the cache, which each transition publishes, is
  the one the page saw;
- the page polls at the interval its import's age calls for (else a full
  answer sets the new one).

Any other poll gets the full answer from the view (`views.status`).

`UnchangedPollMiddleware` gives that 204 in the middle of the middleware
stack (config/settings.py): after the request ID, the security headers, the
malformed-text check, the session, the host check, X-Frame-Options and the
Content-Security-Policy, and before CSRF (a GET has nothing to check),
authentication (the grant above stands for it), messages, htmx, the audit's
client address and django-axes, none of which has anything to do for an
empty answer. Answering there rather than in the view spares every poll
those middleware and the URL's view machinery: a quarter of its CPU in one
process (docs/speed.md, `bench/status_poll.py`).
"""

import contextlib
import math

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from django.urls import Resolver404, resolve

from .models import version_cache_key
from .sessions import SessionStore

# How long a full answer lets the session's unchanged polls skip the database.
POLL_ACCESS_SECONDS = 60

# Every status URL ends so (imports/urls.py): any other path is let through
# without asking the resolver.
STATUS_PATH_END = "/status"


class UnchangedPollMiddleware:
    """A 204 for an unchanged status poll, before the middleware it does not need."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        pk = polled_import(request)
        if pk is not None and unchanged_since_seen(request, pk):
            return HttpResponse(status=204)
        return self.get_response(request)


def polled_import(request):
    """The import's primary key when the request polls its status, else None."""
    if request.method != "GET" or not request.path_info.endswith(STATUS_PATH_END):
        return None
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None
    return match.kwargs["pk"] if match.view_name == "imports:status" else None


def poll_access_key(session_key, pk):
    return f"imports:poll-access:{session_key}:{pk}"


def session_cache_key(session_key):
    """Where the session store keeps this session in the cache while it lasts."""
    return SessionStore.cache_key_prefix + session_key


def unchanged_since_seen(request, pk):
    """True when this session was allowed this import lately and it has not changed.

    One round trip to the cache: the import's version, this session's grant
    and the session itself (the module's docstring says why each).
    """
    seen, every = request.GET.get("seen"), request.GET.get("every")
    session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not (seen and every and session_key):
        return False
    keys = [version_cache_key(pk), poll_access_key(session_key, pk), session_cache_key(session_key)]
    try:
        version, access, session = map(cache.get_many(keys).get, keys)
    except Exception:
        return False  # the cache is down: answer in full
    return (
        session is not None and access is not None and (version, access["every"]) == (seen, every)
    )


def remember_poll_access(request, image_import):
    """Let this session's next unchanged polls of this import skip the database."""
    session_key = request.session.session_key
    if image_import.is_terminal or not session_key:
        return
    access = {"every": str(image_import.poll_milliseconds)}
    # The access ends when the interval steps down, so that the next poll is
    # answered in full and sets the slower interval: else a page would go on
    # asking every 250 ms from the cache for as long as the access lasts.
    lasts = POLL_ACCESS_SECONDS
    step_down = image_import.seconds_until_poll_changes()
    if step_down is not None:
        lasts = max(1, min(lasts, math.ceil(step_down)))
    # A cache that is down only means the next poll is answered in full.
    with contextlib.suppress(Exception):
        cache.set(poll_access_key(session_key, image_import.pk), access, lasts)
        # add, never set: a transition that committed since this answer read
        # the row has published a newer version, which must not be undone.
        cache.add(version_cache_key(image_import.pk), image_import.version, POLL_ACCESS_SECONDS)
