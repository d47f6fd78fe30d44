"""/metrics: Prometheus' text format, for a scraper holding METRICS_TOKEN.

Counters and histograms come from every process's files under
PROMETHEUS_MULTIPROC_DIR (gunicorn's workers, Celery's, beat); what the
database knows better than any one process (imports by status, the oldest
waiting import, imports in flight) is read from it at scrape time, in two
queries.
"""

import hmac
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.conf import settings
from django.db.models import Count, Min
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from .models import ImageImport, Status

WAITING = (Status.QUEUED, Status.SUBMITTING)


@require_GET
def metrics_view(request):
    if not settings.METRICS_TOKEN:
        raise Http404("Metrics are off: set METRICS_TOKEN to switch them on.")
    if not bearer_ok(request.headers.get("Authorization", "")):
        response = HttpResponse(UNAUTHORIZED, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = process_registry()
    registry.register(DatabaseCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


UNAUTHORIZED = "A valid bearer token is required.\n"


def bearer_ok(authorization):
    token = settings.METRICS_TOKEN
    offered = authorization.removeprefix("Bearer ").strip()
    return bool(token) and hmac.compare_digest(offered.encode(), token.encode())


def process_registry():
    """What every process of this machine counted (PROMETHEUS_MULTIPROC_DIR)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def serve_worker_metrics(port, host="0.0.0.0"):
    """This machine's counters on http://host:port/metrics, for a worker machine.

    A worker machine runs no web process to answer /metrics, so its Celery
    worker serves its processes' counters itself (WORKER_METRICS_PORT), to the
    same bearer token. The database's gauges are left to the web machines,
    so that no series is scraped twice.
    """

    def metrics_app(environ, start_response):
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not found\n"]
        if not bearer_ok(environ.get("HTTP_AUTHORIZATION", "")):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')],
            )
            return [UNAUTHORIZED.encode()]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [generate_latest(process_registry())]

    server = make_server(host, port, metrics_app, handler_class=QuietHandler)
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    return server


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # each scrape is not news
        pass


class DatabaseCollector:
    """Gauges read from the database when scraped: one truth for every process."""

    def collect(self):
        by_status = GaugeMetricFamily(
            "portal_imports", "Imports by their current status.", labels=["status"]
        )
        counts = dict(
            ImageImport.objects.order_by()
            .values_list("status")
            .annotate(count=Count("id"))
            .values_list("status", "count")
        )
        for status in Status.values:
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status

        yield GaugeMetricFamily(
            "portal_imports_in_flight",
            "Imports AWS is working on (importing), which the refresher follows.",
            value=counts.get(Status.IMPORTING, 0),
        )

        # Waiting since it was ready to send: a browser upload's import, since
        # its upload completed. From created_at, an upload of some hours
        # would trip an age alert the moment it was queued.
        waiting = ImageImport.objects.filter(status__in=WAITING)
        oldest = waiting.aggregate(oldest=Min(Coalesce("uploaded_at", "created_at")))["oldest"]
        age = (timezone.now() - oldest).total_seconds() if oldest else 0
        yield GaugeMetricFamily(
            "portal_oldest_waiting_import_age_seconds",
            "Seconds the longest-waiting import has been queued or submitting, since it was "
            "recorded or, for a browser upload, since the upload completed (0 if none).",
            value=max(age, 0),
        )
