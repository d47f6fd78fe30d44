"""/metrics: Prometheus' text format, for a scraper holding METRICS_TOKEN.

Counters and histograms come from every process's files under
PROMETHEUS_MULTIPROC_DIR (gunicorn's workers, Celery's, beat); what the
database knows better than any one process (imports by status, the oldest
waiting import, imports in flight) is read from it at scrape time, in two
queries.
"""

import hmac

from django.conf import settings
from django.db.models import Count, Min
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from .models import ImageImport, Status

WAITING = (Status.QUEUED, Status.SUBMITTING)


@require_GET
def metrics_view(request):
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("Metrics are off: set METRICS_TOKEN to switch them on.")
    offered = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(offered.encode(), token.encode()):
        response = HttpResponse("A valid bearer token is required.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(DatabaseCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


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

        waiting = ImageImport.objects.filter(status__in=WAITING)
        oldest = waiting.aggregate(oldest=Min("created_at"))["oldest"]
        age = (timezone.now() - oldest).total_seconds() if oldest else 0
        yield GaugeMetricFamily(
            "portal_oldest_waiting_import_age_seconds",
            "Age of the oldest import still queued or submitting (0 if none).",
            value=max(age, 0),
        )
