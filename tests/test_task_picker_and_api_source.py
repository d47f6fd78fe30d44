"""Which VM import tasks the picker offers to import, and the API's word for a missing source.

The task picker offered "Use" for a task EC2 had deleted; ImportVmImage
takes only a task still converting or completed. And `POST /api/imports {}`
asked for a VM import task ID alone, though a diskContainer does as well.
The emulator makes the tasks: one deleted over its disk (a RAW file of
zeros has no partition, as EC2 says), one deleting (cancelled a moment ago).
"""

import json

import pytest
from django.urls import reverse

from fakeaws import disks
from imports.aws import Ec2ImportTask
from imports.forms import tag_formset_data

from .factories import CONVERTING_TASK, SEEDED_TASK, valid_payload
from .helpers import deleted_over_its_disk, emulator_client

EITHER_SOURCE = (
    "A source is required: give vmImportTaskId for an existing VM import task, "
    "or diskContainer for a disk file in the team's import bucket."
)


def task(status):
    return Ec2ImportTask("import-ami-0123456789abcdef0", status, "", None, "", "")


# -- which tasks can be imported: one rule ------------------------------------


@pytest.mark.parametrize("status", ["active", "completed"])
def test_a_converting_or_completed_task_can_be_imported(status):
    assert task(status).can_be_imported
    assert task(status).not_importable_reason == ""


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("deleted", "EC2 deleted this task: it cannot be imported."),
        ("deleting", "EC2 is deleting this task: it cannot be imported."),
        # A state EC2 might add one day is not taken for one it can import.
        ("failed", "EC2 reports this task as failed: it cannot be imported."),
        ("", "EC2 reports no state for this task: it cannot be imported."),
    ],
)
def test_any_other_task_cannot_and_says_why_naming_its_state(status, reason):
    assert not task(status).can_be_imported
    assert task(status).not_importable_reason == reason


# -- the picker ----------------------------------------------------------------


def picker(user_client):
    response = user_client.get(reverse("imports:vm_import_tasks"), headers={"HX-Request": "1"})
    assert response.status_code == 200
    return response.content.decode()


def row_of(content, task_id):
    start = content.index(f'<td data-label="Task"><code>{task_id}</code>')
    return content[start : content.index("</tr>", start)]


def test_a_task_ec2_deleted_is_listed_without_use_and_says_why(user_client, s3_set_up):
    deleted = deleted_over_its_disk(s3_set_up)

    content = picker(user_client)

    row = row_of(content, deleted)
    assert disks.NO_PARTITIONS in row  # EC2's own reason, in the status column
    assert "<button" not in row
    said = "EC2 deleted this task: it cannot be imported."
    assert f'<span class="not-importable">{said}</span>' in row
    assert f'data-value="{deleted}"' not in content
    assert f'<option value="{deleted}"' not in content  # nor suggested for typing
    # The tasks that can be imported keep their button, and come first.
    assert 'data-value="import-ami-0123456789abcdef0"' in row_of(content, SEEDED_TASK)
    assert f'data-value="{CONVERTING_TASK}"' in row_of(content, CONVERTING_TASK)
    assert content.index(CONVERTING_TASK) < content.index(deleted)


def test_a_task_being_deleted_is_listed_without_use_and_says_why(user_client, slow_emulator):
    emulator_client("ec2", slow_emulator.url).cancel_import_task(ImportTaskId=CONVERTING_TASK)

    row = row_of(picker(user_client), CONVERTING_TASK)

    assert "Deleting" in row
    assert "<button" not in row
    assert "EC2 is deleting this task: it cannot be imported." in row


# -- the API: neither source --------------------------------------------------


def post(client, body, headers):
    return client.post(
        "/api/imports", data=json.dumps(body), content_type="application/json", headers=headers
    )


def test_an_api_request_with_neither_source_asks_for_either(client, api_headers):
    response = post(client, {}, api_headers)

    assert response.status_code == 400
    assert response.json()["errors"]["vmImportTaskId"] == [EITHER_SOURCE]


def test_an_api_request_with_an_empty_task_id_and_no_disk_asks_for_either(client, api_headers):
    response = post(client, valid_payload(vmImportTaskId=""), api_headers)

    assert response.status_code == 400
    assert response.json()["errors"] == {"vmImportTaskId": [EITHER_SOURCE]}


def test_the_page_still_asks_for_the_task_of_the_source_chosen(user_client):
    data = {**valid_payload(vmImportTaskId=""), **tag_formset_data([]), "source": "vm_import_task"}
    content = user_client.post("/imports/new", data).content.decode()

    assert '<a href="#id_vmImportTaskId">VM import task ID is required.</a>' in content
    assert "diskContainer" not in content
