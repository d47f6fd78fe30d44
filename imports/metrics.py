"""The portal's Prometheus counters and histograms, counted where things happen.

A leaf (it imports nothing of the portal), so the models and aws.py can count.
Every gunicorn and Celery process writes its own files under
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode, switched on
in settings.py before this module is imported); /metrics adds them up, and
reads what is best counted at scrape time (imports by status, the oldest
waiting import, imports in flight) from the database (monitoring.py).
"""

from prometheus_client import Counter, Histogram

TRANSITIONS = Counter(
    "portal_import_transitions_total",
    "Imports moved from one status to another ('' for a new import).",
    ["from_status", "to_status"],
)
AWS_CALLS = Counter(
    "portal_aws_calls_total",
    "AWS calls by operation and error code ('' when the call succeeded).",
    ["operation", "error_code"],
)
AWS_CALL_SECONDS = Histogram(
    "portal_aws_call_duration_seconds",
    "AWS call latency, errors included.",
    ["operation"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RETRIES = Counter(
    "portal_import_retries_total",
    "ImportVmImage attempts that failed retryably and were queued again.",
    ["error_code"],
)
SWEEPER_RESENDS = Counter(
    "portal_sweeper_resends_total",
    "Imports the sweeper sent again, by the status they were stuck in.",
    ["stuck_status"],
)
REFRESH_CYCLE_SECONDS = Histogram(
    "portal_refresh_cycle_duration_seconds",
    "How long one refresher cycle took.",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
REFRESHED_IMPORTS = Counter(
    "portal_refreshed_imports_total",
    "Imports the refresher asked AWS about.",
)
