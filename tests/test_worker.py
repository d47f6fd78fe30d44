"""A real Celery worker consuming from the configured broker.

The filesystem broker on the embedded defaults; Redis in CI's second pass
(CELERY_BROKER_URL). AWS is botocore's Stubber here; over real HTTP, see
test_integration.py.
"""

import pytest
from django.test import Client

from imports.models import ApiToken, Status

from .factories import sent_to_aws
from .helpers import wait_for_status

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ARN = "arn:aws:imagebuilder:us-east-1:123456789012:image/web-server-base/1.0.0/1"


def test_an_api_submission_reaches_aws_through_the_worker(
    team, user, payload, imagebuilder_stub, worker
):
    imagebuilder_stub.add_client_error(
        "import_vm_image",
        service_error_code="ServiceUnavailableException",
        http_status_code=503,
        service_message="busy",
        expected_params=sent_to_aws(team, payload),
    )
    imagebuilder_stub.add_response(
        "import_vm_image",
        {"requestId": "req-1", "clientToken": payload["clientToken"], "imageArn": ARN},
        expected_params=sent_to_aws(team, payload),
    )
    _, raw_token = ApiToken.issue(user=user, team=team)

    response = Client().post(
        "/api/imports",
        data=payload,
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw_token}"},
    )
    assert response.status_code == 201

    image_import = wait_for_status(team.imports.get(pk=response.json()["id"]), Status.IMPORTING)
    assert image_import.image_arn == ARN
    assert image_import.attempts == 2  # the 503, then the success, with the same token
