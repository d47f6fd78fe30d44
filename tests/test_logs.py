"""Request IDs and JSON lines: one value follows an import from the click to AWS."""

import json
import logging
import time

import pytest
from django.test import Client

from config.logs import (
    JsonFormatter,
    RequestIdFilter,
    TextFormatter,
    reset_request_id,
    set_request_id,
)
from imports import tasks
from imports.models import ApiToken, Status

from .factories import make_import, sent_to_aws
from .helpers import wait_for_status

ARN = "arn:aws:imagebuilder:us-east-1:123456789012:image/web-server-base/1.0.0/1"


class Records(logging.Handler):
    """Keeps records as the console handler would see them (request ID filled in)."""

    def __init__(self):
        super().__init__()
        self.addFilter(RequestIdFilter())
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def records():
    # Celery's test worker may have set the root logger's level (to ERROR).
    root = logging.getLogger()
    handler, level = Records(), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler.records
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.django_db
def test_every_response_carries_a_new_request_id(client, records):
    first = client.get("/accounts/login/")["X-Request-ID"]
    second = client.get("/accounts/login/")["X-Request-ID"]
    assert len(first) == 32 and first != second
    line = next(r for r in records if r.name == "portal.request" and r.request_id == second)
    assert (line.method, line.path, line.status) == ("GET", "/accounts/login/", 200)


@pytest.mark.django_db
def test_a_proxys_sane_request_id_is_kept_and_a_forged_one_replaced(client):
    kept = client.get("/accounts/login/", headers={"X-Request-ID": "lb-0123456789abcdef"})
    assert kept["X-Request-ID"] == "lb-0123456789abcdef"
    forged = client.get("/accounts/login/", headers={"X-Request-ID": 'x" level=ERROR\nfake'})
    assert forged["X-Request-ID"] != 'x" level=ERROR\nfake'
    assert len(forged["X-Request-ID"]) == 32


def test_json_lines_carry_the_request_id_and_the_extras():
    token = set_request_id("abc123abc123")
    try:
        record = logging.LogRecord("imports.aws", logging.INFO, __file__, 1, "AWS %s", ("x",), None)
        record.aws_request_id = "aws-1"
        RequestIdFilter().filter(record)
    finally:
        reset_request_id(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "AWS x"
    assert line["level"] == "INFO"
    assert line["request_id"] == "abc123abc123"
    assert line["aws_request_id"] == "aws-1"
    assert line["time"].endswith("+00:00")


def test_a_text_line_cannot_be_split_by_what_a_request_carried():
    # GET /healthz%0a01:50:00 ... FORGED: the path's newline would start a line of its own.
    path = "/healthz\n2026-11-30 01:50:00 INFO portal.request [x] admin signed in\r"
    record = logging.LogRecord("portal.request", logging.INFO, __file__, 1, "GET %s", (path,), None)
    RequestIdFilter().filter(record)
    line = TextFormatter().format(record)
    assert "\n" not in line and "\r" not in line
    assert line.endswith(
        "GET /healthz\\x0a2026-11-30 01:50:00 INFO portal.request [x] admin signed in\\x0d"
    )


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_click_s_request_id_reaches_the_worker_s_line_with_aws_request_id(
    team, user, payload, imagebuilder_stub, worker, records
):
    imagebuilder_stub.add_response(
        "import_vm_image",
        {"requestId": "aws-req-42", "clientToken": payload["clientToken"], "imageArn": ARN},
        expected_params=sent_to_aws(team, payload),
    )
    _, raw_token = ApiToken.issue(user=user, team=team)

    response = Client().post(
        "/api/imports",
        data=payload,
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw_token}", "X-Request-ID": "click-000000000042"},
    )
    assert response["X-Request-ID"] == "click-000000000042"
    wait_for_status(team.imports.get(pk=response.json()["id"]), Status.IMPORTING)

    def traced(logger):
        return [
            r.getMessage()
            for r in records
            if r.name == logger and r.request_id == "click-000000000042"
        ]

    # The task says "accepted" just after it stored the ARN: wait for that too.
    deadline = time.monotonic() + 10
    while not traced("imports.tasks") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any("accepted by AWS" in line for line in traced("imports.tasks"))
    aws_line = next(r for r in records if r.name == "imports.aws")
    assert aws_line.request_id == "click-000000000042"
    assert aws_line.aws_request_id == "aws-req-42"
    assert aws_line.aws_operation == "ImportVmImage"


@pytest.mark.django_db
def test_work_beat_started_goes_by_its_task_id(team, user, settings, records):
    settings.IMPORT_STUCK_AFTER = 0
    stuck = make_import(team, user, Status.SUBMITTING)

    result = tasks.requeue_stuck_imports.apply()

    line = next(r for r in records if r.name == "imports.tasks" and "stuck" in r.getMessage())
    assert line.request_id == result.id
    assert line.import_id == stuck.pk
