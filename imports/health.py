"""Health endpoints for load balancers and orchestrators; no sign-in.

/healthz (liveness) answers as long as the process does and touches no
dependency. /readyz (readiness) checks the database, the broker and the
cache side by side, each within READINESS_TIMEOUT seconds, and names the
one that failed. Only the database makes a machine unready: without the
broker the web still records imports (the sweeper sends them once it is
back) and without the cache every page still works, so a machine that
lost either is "degraded", 200, and stays behind the load balancer; a
blip of a shared Redis must not take every web machine out of service at
once. Neither says where a dependency lives or what it runs: errors are
logged, not shown.
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.core.cache import cache
from django.core.exceptions import DisallowedHost
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .monitoring import metrics_view

logger = logging.getLogger(__name__)

READINESS_TIMEOUT = 2.0


@never_cache
@require_safe
def healthz(request):
    return JsonResponse({"status": "ok"})


def check_database():
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()  # this thread's own connection


def check_broker():
    from config.celery import app

    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.1)
        connection.default_channel  # noqa: B018 - opening a channel talks to the broker


def check_cache():
    cache.set("readyz", "ok", 10)
    if cache.get("readyz") != "ok":
        raise RuntimeError("the cache did not keep a value")


CHECKS = {"database": check_database, "broker": check_broker, "cache": check_cache}
REQUIRED = {"database"}  # without it no page works; the others the portal outlives


@never_cache
@require_safe
def readyz(request):
    pool = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="readyz")
    try:
        futures = {name: pool.submit(check) for name, check in CHECKS.items()}
        checks = {name: outcome(name, future) for name, future in futures.items()}
    finally:
        # A hanging check keeps its thread until its own timeout ends it.
        pool.shutdown(wait=False, cancel_futures=True)
    failed = {name for name, result in checks.items() if result != "ok"}
    if failed & REQUIRED:
        return JsonResponse({"status": "unavailable", "checks": checks}, status=503)
    return JsonResponse({"status": "degraded" if failed else "ok", "checks": checks})


def outcome(name, future):
    try:
        future.result(timeout=READINESS_TIMEOUT)
    except FutureTimeout:
        logger.warning("Readiness: %s did not answer within %ss", name, READINESS_TIMEOUT)
        return "timeout"
    except Exception as error:
        logger.warning("Readiness: %s is unavailable: %r", name, error)
        return "unavailable"
    return "ok"


PROBES = {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics_view}


class ProbesAnswerAnyHost:
    """Answer /healthz, /readyz and /metrics whatever Host header is sent.

    Load balancers and orchestrators probe a machine by its address: an
    ALB's health check sends the target's IP as its Host, a kubelet the
    pod's, and Prometheus scrapes each machine by its own name. ALLOWED_HOSTS
    names the portal's public name, so Django would answer them 400
    (CommonMiddleware reads the host): the load balancer would take every
    machine out of service, and no scrape would succeed. Their answers hold
    nothing a forged Host could poison (no link, no redirect; /metrics still
    asks for its token), so such a request to a host not allowed is answered
    here, before CommonMiddleware; every other path still refuses it, and a
    request to an allowed host takes the usual way.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        probe = PROBES.get(request.path_info)
        if probe is not None and not host_is_allowed(request):
            return probe(request)
        return self.get_response(request)


def host_is_allowed(request):
    try:
        request.get_host()
    except DisallowedHost:
        return False
    return True
