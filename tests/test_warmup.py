"""config/warmup.py: a new process loads, before its first request or task, what that would load.

Each check runs in a fresh Python (this test process has long loaded
everything), with the database and the broker on ports nothing listens on:
loading must never connect. What a first request would still do is seen
through Python's audit hooks: the files it opens and the modules it imports.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from config.warmup import in_words

ROOT = Path(__file__).resolve().parent.parent

# Prints what a first use opened and imported after the warm-up (or none, with "cold").
PROBE = """
import json, sys
import django
django.setup()
from django.core.wsgi import get_wsgi_application
get_wsgi_application()
from django.test import Client
from config import warmup
from imports import aws
if sys.argv[1] == "warm":
    warmup.web_process()
    warmup.worker_process()
opened, imported = [], []
def watch(event, args):
    if event == "open" and isinstance(args[0], str):
        opened.append(args[0])
    elif event == "import":
        imported.append(args[0])
sys.addaudithook(watch)
page = Client().get("/accounts/login/")
aws.client("ec2", aws.Target("us-east-1"))
print(json.dumps({"status": page.status_code, "opened": opened, "imported": imported}))
"""


def first_use(state, tmp_path):
    environ = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": "postgres://nobody@127.0.0.1:9/nothing",
        "CELERY_BROKER_URL": "redis://127.0.0.1:9/0",
        "CACHE_URL": "locmem://",
        "SESSION_ENGINE": "django.contrib.sessions.backends.signed_cookies",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "ALLOWED_HOSTS": "testserver",
        "LOG_LEVEL": "INFO",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE, state],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1]), result.stderr


@pytest.fixture(scope="module")
def cold(tmp_path_factory):
    return first_use("cold", tmp_path_factory.mktemp("cold"))[0]


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    return first_use("warm", tmp_path_factory.mktemp("warm"))


def templates(opened):
    return [path for path in opened if path.endswith(".html")]


def ec2_models(opened):
    return [path for path in opened if "/botocore/data/ec2/" in path]


def test_left_alone_a_first_request_compiles_templates_and_a_first_client_loads_models(cold):
    # The control: what the warm-up saves is really there to save.
    assert cold["status"] == 200
    assert templates(cold["opened"])
    assert ec2_models(cold["opened"])
    assert cold["imported"]


def test_after_the_warm_up_a_first_page_and_client_open_no_template_and_no_model(warm):
    first, _ = warm
    assert first["status"] == 200  # the sign-in page, its form's widgets included
    assert templates(first["opened"]) == []
    assert ec2_models(first["opened"]) == []
    assert first["imported"] == []


def test_the_warm_up_says_what_it_loaded_and_connected_to_nothing(warm):
    _, log = warm
    assert (
        "Loaded the views, the templates, the stores of sessions and messages, and "
        "Celery's publisher in "
    ) in log
    assert "ms, before the first request." in log
    assert "Loaded the AWS service models in " in log
    assert "ms, before the first task." in log
    # The database and the broker listen nowhere, and nothing failed.
    assert "Could not load" not in log


def test_a_process_that_is_not_the_portal_is_left_alone():
    # The gunicorn configuration also serves the tests' own tiny applications.
    result = subprocess.run(
        [sys.executable, "-c", "from config import warmup; warmup.web_process(); print('ok')"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "ok", "")


@pytest.mark.parametrize(
    ("things", "words"),
    [
        (["the views"], "the views"),
        (["the views", "the templates"], "the views and the templates"),
        (["a", "b", "c"], "a, b, and c"),
    ],
)
def test_what_was_loaded_reads_as_a_sentence(things, words):
    assert in_words(things) == words
