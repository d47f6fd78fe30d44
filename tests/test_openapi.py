"""The API's OpenAPI 3.1 description, checked against the real answers.

schemathesis generates requests from the description (valid and invalid
ones), sends them through Django's WSGI application in-process, and checks
every answer: no 5xx, a documented status and content type, and a body
that matches the documented schema. The run is bounded (max_examples).
"""

import jsonschema
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from imports import api, api_urls, services
from imports.api import OPENAPI
from imports.models import ApiToken, Source, Status

from .factories import (
    disk_request,
    disk_submission,
    make_import,
    set_up_disk_imports,
    valid_payload,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_dict(OPENAPI)
schema.app = get_wsgi_application()


def test_the_description_is_served_as_json(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.json()["openapi"] == "3.1.0"
    assert client.post("/api/openapi.json").json()["status"] == 405


def test_every_routed_api_url_is_described():
    routed = {
        "/api/" + str(pattern.pattern)
        for pattern in api_urls.urlpatterns
        if pattern is not api_urls.unknown_url
    }
    described = {path.replace("{id}", "<int:pk>") for path in OPENAPI["paths"]}
    assert described == routed


REQUEST_SCHEMA = {**OPENAPI["components"]["schemas"]["ImportRequest"]}


@pytest.mark.parametrize(
    "body",
    [
        valid_payload(),
        disk_request(),
        disk_request(
            importImageOptions={"architecture": "arm64", "bootMode": "uefi", "encrypted": True},
            loggingConfiguration={"logGroupName": "/aws/imagebuilder/imports"},
        ),
    ],
    ids=["vm import task", "disk file", "disk file with options"],
)
def test_what_the_api_takes_is_what_its_description_says(body):
    jsonschema.Draft202012Validator(REQUEST_SCHEMA).validate(body)


@pytest.mark.parametrize(
    "body",
    [
        {**disk_request(), "vmImportTaskId": "import-ami-0123456789abcdef0"},  # two sources
        valid_payload(importImageOptions={"encrypted": True}),  # options without a disk
        disk_request(diskContainer={"format": "qcow2", "userBucket": {"s3Key": "a"}}),
    ],
    ids=["both sources", "options for a task", "unknown format"],
)
def test_what_the_api_refuses_the_description_refuses(client, api_headers, body):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(REQUEST_SCHEMA).validate(body)
    assert (
        client.post("/api/imports", body, "application/json", headers=api_headers).status_code
        == 400
    )


def test_the_list_describes_each_query_parameter_it_takes():
    described = [
        parameter["name"] for parameter in OPENAPI["paths"]["/api/imports"]["get"]["parameters"]
    ]
    assert described == list(api.LIST_PARAMETERS)
    statuses = OPENAPI["components"]["schemas"]["Import"]["properties"]["status"]["enum"]
    assert statuses == Status.values


@pytest.fixture
def in_process_wsgi():
    """As Django's test client does: keep the test's connection (and transaction) open."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(team, user, emulator, in_process_wsgi):
    # Something to list and to read, from each source.
    make_import(team, user)
    submission = disk_submission(source="upload", upload_size=1024)
    make_import(
        team,
        user,
        Status.FAILED,
        source=Source.S3_OBJECT,
        import_image_payload=submission["import_image_payload"],
        error_code="ClientError",
        error_message="The disk is not a VMDK.",
    )
    services.submit_import(team=set_up_disk_imports(team), user=user, **submission)
    _, raw_token = ApiToken.issue(user=user, team=team, name="schemathesis")
    return {"Authorization": f"Bearer {raw_token}"}


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_answers_as_described(case, bearer):
    case.call_and_validate(headers=bearer, checks=CHECKS)
