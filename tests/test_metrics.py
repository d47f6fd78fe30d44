"""/metrics: off without METRICS_TOKEN, bearer-only with it, and what it counts."""

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from django.utils import timezone

from imports import metrics, services, tasks
from imports.models import ImageImport, Status
from imports.monitoring import serve_worker_metrics

from .factories import disk_submission, make_import, set_up_disk_imports

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-metrics-token"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
ARN = "arn:aws:imagebuilder:us-east-1:123456789012:image/web-server-base/1.0.0/1"


@pytest.fixture
def scrape(client, settings):
    settings.METRICS_TOKEN = TOKEN

    def scrape():
        response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain")
        return response.content.decode()

    return scrape


def value(text, name, **labels):
    """The sample's value in Prometheus' text format (0 when absent)."""
    wanted = ",".join(f'{key}="{val}"' for key, val in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if match and match[1] == name:
            found = ",".join(sorted((match[2] or "").split(","))) if match[2] else ""
            if found == wanted:
                return float(match[3])
    return 0.0


def test_it_is_off_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404


def test_it_refuses_a_missing_or_wrong_bearer(client, settings):
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401
    response = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_refuses_other_methods(scrape, client):
    response = client.post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405


def test_it_reads_imports_by_status_in_flight_and_the_oldest_waiting_from_the_database(
    scrape, team, user
):
    make_import(team, user, Status.QUEUED)
    make_import(team, user, Status.IMPORTING)
    make_import(team, user, Status.IMPORTING)

    text = scrape()

    assert value(text, "portal_imports", status="queued") == 1
    assert value(text, "portal_imports", status="importing") == 2
    assert value(text, "portal_imports", status="available") == 0
    assert value(text, "portal_imports_in_flight") == 2
    assert value(text, "portal_oldest_waiting_import_age_seconds") >= 0


def test_the_oldest_waiting_counts_an_upload_from_its_end(scrape, team, user):
    # An upload of hours is not hours of waiting for the worker.
    set_up_disk_imports(team)
    upload, _ = services.submit_import(
        team=team, user=user, **disk_submission(source="upload", upload_size=1024)
    )
    hours_ago = timezone.now() - timedelta(hours=3)
    ImageImport.objects.filter(pk=upload.pk).update(created_at=hours_ago, updated_at=hours_ago)
    upload.mark_uploaded(user=user)
    assert value(scrape(), "portal_oldest_waiting_import_age_seconds") < 60

    make_import(team, user, Status.QUEUED, created_at=timezone.now() - timedelta(minutes=10))
    assert 590 < value(scrape(), "portal_oldest_waiting_import_age_seconds") < 700


def test_a_new_import_counts_as_a_transition_to_the_status_it_starts_in(scrape, team, user):
    set_up_disk_imports(team)
    before = scrape()
    upload = disk_submission(source="upload", upload_size=1)
    s3_object = disk_submission(key="vm-imports/other.vmdk")
    s3_object["payload"]["clientToken"] = "7f3e2d1c-0b9a-4876-a5b4-c3d2e1f0a9b8"
    for submission in (upload, s3_object):
        services.submit_import(team=team, user=user, **submission)
    after = scrape()

    def new(to_status):
        labels = {"from_status": "", "to_status": to_status}
        return value(after, "portal_import_transitions_total", **labels) - value(
            before, "portal_import_transitions_total", **labels
        )

    assert (new("uploading"), new("queued")) == (1, 1)


def test_it_counts_transitions_aws_calls_and_retries(
    scrape, django_capture_on_commit_callbacks, image_import, imagebuilder_stub, payload
):
    before = scrape()
    imagebuilder_stub.add_client_error(
        "import_vm_image",
        service_error_code="ServiceUnavailableException",
        http_status_code=503,
        expected_params=image_import.payload,
    )
    with django_capture_on_commit_callbacks(execute=True):
        tasks.submit_import.apply(args=[image_import.pk])  # eager: one attempt

    after = scrape()

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("portal_import_transitions_total", from_status="queued", to_status="submitting")
    assert delta("portal_import_transitions_total", from_status="submitting", to_status="queued")
    assert (
        delta(
            "portal_aws_calls_total",
            operation="ImportVmImage",
            error_code="ServiceUnavailableException",
        )
        == 1
    )
    assert delta("portal_aws_call_duration_seconds_count", operation="ImportVmImage") == 1
    assert delta("portal_import_retries_total", error_code="ServiceUnavailableException") == 1


def test_it_counts_sweeper_resends_and_refresher_cycles(scrape, team, user, settings):
    settings.IMPORT_STUCK_AFTER = 0
    make_import(team, user, Status.SUBMITTING)
    before = scrape()

    tasks.refresh_imports()  # nothing due: no AWS call, one cycle
    requeued = tasks.requeue_stuck_imports.apply().get()

    after = scrape()
    assert requeued == 1
    assert (
        value(after, "portal_sweeper_resends_total", stuck_status="submitting")
        - value(before, "portal_sweeper_resends_total", stuck_status="submitting")
        == 1
    )
    assert value(after, "portal_refresh_cycle_duration_seconds_count") > value(
        before, "portal_refresh_cycle_duration_seconds_count"
    )


def test_it_adds_up_what_other_processes_counted(scrape):
    # A gunicorn or Celery worker is another process: it writes its own file
    # under PROMETHEUS_MULTIPROC_DIR, and any web process's scrape reads it.
    before = value(scrape(), "portal_import_retries_total", error_code="FromElsewhere")
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from imports import metrics; "
            "metrics.RETRIES.labels('FromElsewhere').inc(3)",
        ],
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
    )
    after = value(scrape(), "portal_import_retries_total", error_code="FromElsewhere")
    assert after - before == 3


def test_a_worker_machine_serves_its_own_counters_to_the_bearer(settings):
    settings.METRICS_TOKEN = TOKEN
    metrics.RETRIES.labels("OnTheWorker").inc()
    server = serve_worker_metrics(0, host="127.0.0.1")
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            OPENER.open(url, timeout=5)
        assert refused.value.code == 401
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
        with OPENER.open(request, timeout=5) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert value(text, "portal_import_retries_total", error_code="OnTheWorker") >= 1
    assert "portal_imports{" not in text  # the database's gauges are the web's to give
