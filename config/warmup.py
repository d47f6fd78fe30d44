"""What a process loads at its start, so that its first request or task does not wait for it.

A gunicorn worker is new after every deploy and every `max_requests`; left
alone, its first request imported every view (the URLconf), Celery's broker
transport and compiled its page's templates: 200-270 ms on a slow VM where
the next request took 11. A Celery worker's first import built botocore's
service models, 130-290 ms a service. Each step here is what that first
request or task did, done before the process takes any: nothing here opens
a connection or reads the database, so a database or broker that is down at
start delays nothing.
"""

import codecs
import logging
import time
from pathlib import Path

logger = logging.getLogger(__name__)

# What the worker calls: submit (Image Builder), follow the task (EC2), and
# a team's role (STS).
WORKER_SERVICES = ("imagebuilder", "ec2", "sts")


def web_process():
    """A gunicorn worker's (deploy/gunicorn.conf.py's post_worker_init)."""
    from django.apps import apps

    if not apps.ready:  # not the portal (a test's own application), or it failed to load
        return
    _warm(
        "before the first request",
        {
            "the views": _load_url_patterns,
            "the templates": _compile_templates,
            "the stores of sessions and messages": _load_stores,
            "Celery's publisher": _prepare_publisher,
        },
    )


def worker_process():
    """A Celery worker's (config/celery.py, once the worker is ready)."""
    _warm("before the first task", {"the AWS service models": _load_service_models})


def _warm(when, steps):
    started = time.perf_counter()
    loaded = []
    for what, step in steps.items():
        # A failure here is one the first request or task would meet as well,
        # with its own error; it must not keep the process from serving.
        try:
            step()
        except Exception:
            logger.exception("Could not load %s at start; its first use will try again.", what)
        else:
            loaded.append(what)
    if loaded:
        milliseconds = (time.perf_counter() - started) * 1000
        logger.info("Loaded %s in %.0f ms, %s.", in_words(loaded), milliseconds, when)


def in_words(things):
    """Joined as a sentence lists them: a; a and b; a, b, and c."""
    if len(things) < 3:
        return " and ".join(things)
    return ", ".join(things[:-1]) + ", and " + things[-1]


def _load_url_patterns():
    from django.conf import settings
    from django.urls import get_resolver, reverse

    get_resolver().url_patterns  # noqa: B018 (imports every view module)
    reverse(settings.LOGIN_URL)  # and the names of every URL, which links are made from


def _compile_templates():
    """Every page template of the portal's own and every form widget's, into the caches."""
    import django.forms
    from django.conf import settings
    from django.forms.renderers import get_default_renderer
    from django.template import Engine
    from django.template.loader import get_template

    for folder in settings.TEMPLATES[0]["DIRS"]:
        for path in sorted(Path(folder).rglob("*.html")):
            get_template(path.relative_to(folder).as_posix())
    Engine.get_default().template_context_processors  # noqa: B018 (imports them)
    widgets = Path(django.forms.__file__).parent / "templates"
    renderer = get_default_renderer()
    for path in sorted((widgets / "django" / "forms").rglob("*.html")):
        renderer.get_template(path.relative_to(widgets).as_posix())


def _load_stores():
    from django.conf import settings
    from django.utils.module_loading import import_string

    stores = (
        settings.SESSION_ENGINE + ".SessionStore",
        settings.SESSION_SERIALIZER,
        settings.MESSAGE_STORAGE,
    )
    for name in stores:
        import_string(name)


def _prepare_publisher():
    from config.celery import app

    app.finalize(auto=True)  # its tasks, found in every app's tasks module
    app.backend  # noqa: B018 (read from the entry points of every installed package)
    app.producer_pool  # noqa: B018 (the transport's module and the pool; no connection yet)
    app.events.Dispatcher  # noqa: B018 (its module, which the first publish loads)
    codecs.lookup("idna")  # what the first connection to a host by name encodes it with


def _load_service_models():
    """Clients made and dropped: the process's one loader keeps what they loaded."""
    from imports import aws

    session = aws.new_session()
    for service in WORKER_SERVICES:
        # Keys of its own, so that no credential chain (an instance's
        # metadata service) is asked: nothing is called.
        session.create_client(
            service,
            region_name="us-east-1",
            aws_access_key_id="warm-up",
            aws_secret_access_key="warm-up",
        )
