import os

from celery import Celery
from celery.signals import (
    before_task_publish,
    celeryd_init,
    task_postrun,
    task_prerun,
    worker_ready,
)

from config import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@celeryd_init.connect
def log_as_the_portal_from_the_start(**kwargs):
    # Django configures logging in django.setup(), which a worker reaches only
    # after its start-up checks: a warning from those (a worker run as root)
    # would be plain text among the JSON lines a log shipper reads.
    from django.conf import settings
    from django.utils.log import configure_logging

    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)


# The request ID travels with every task as a message header: queued from a
# web request, the task's log lines carry that request's ID; queued from a
# task (a retry), it keeps the ID it ran under.
REQUEST_ID_HEADER = "request_id"


@before_task_publish.connect
def send_request_id(headers=None, **kwargs):
    request_id = logs.current_request_id()
    if request_id and headers is not None and not headers.get(REQUEST_ID_HEADER):
        headers[REQUEST_ID_HEADER] = request_id


@task_prerun.connect
def take_request_id(task=None, task_id=None, **kwargs):
    # Work no request started (beat's sweeps and refreshes) goes by its task's
    # ID, which then follows what it queues (a sweep's re-sends).
    request_id = getattr(task.request, REQUEST_ID_HEADER, None) or task_id or ""
    task.request._request_id_token = logs.set_request_id(request_id)


@task_postrun.connect
def drop_request_id(task=None, **kwargs):
    token = getattr(task.request, "_request_id_token", None)
    if token is not None:
        try:
            logs.reset_request_id(token)
        except ValueError:  # set in another context (a pool that switched threads)
            logs.set_request_id("")


@worker_ready.connect
def load_what_tasks_use(**kwargs):
    # Before the first task: what it would load on a person's time.
    from config import warmup

    warmup.worker_process()


@worker_ready.connect
def serve_metrics(**kwargs):
    """A worker machine's own /metrics, when WORKER_METRICS_PORT is set."""
    from django.conf import settings

    if settings.WORKER_METRICS_PORT and settings.METRICS_TOKEN:
        from imports.monitoring import serve_worker_metrics

        serve_worker_metrics(settings.WORKER_METRICS_PORT)


@task_prerun.connect
@task_postrun.connect
def close_unusable_or_obsolete_connections(task=None, **kwargs):
    """What Django does around each request: drop a broken or too old connection.

    CELERY_DB_REUSE_MAX keeps Celery from closing every connection around
    every task; this keeps a connection that broke (a database restart) from
    failing the next task.
    """
    from django.db import close_old_connections

    if task is not None and getattr(task.request, "is_eager", False):
        return  # run in the caller's thread, whose connection is the caller's
    close_old_connections()
