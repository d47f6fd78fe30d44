import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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
