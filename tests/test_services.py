"""services.py: what a request does beyond one model."""

import pytest

from imports import services, tasks
from imports.models import ClientTokenConflict, ImageImport, Status

from .factories import make_import


def test_a_new_import_is_sent_to_the_worker_once_committed(
    team, user, payload, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(tasks.submit_import, "delay", sent.append)
    with django_capture_on_commit_callbacks() as callbacks:
        image_import, created = services.submit_import(team=team, user=user, payload=payload)
        assert sent == []  # nothing leaves before the commit
    assert created and len(callbacks) == 1
    callbacks[0]()
    assert sent == [image_import.pk]


def test_the_same_request_again_queues_nothing(
    team, user, payload, django_capture_on_commit_callbacks
):
    first, _ = services.submit_import(team=team, user=user, payload=payload)
    with django_capture_on_commit_callbacks() as callbacks:
        again, created = services.submit_import(team=team, user=user, payload=dict(payload))
    assert again == first and not created
    assert callbacks == []


def test_the_same_token_for_another_request_is_a_conflict(team, user, payload):
    services.submit_import(team=team, user=user, payload=payload)
    with pytest.raises(ClientTokenConflict):
        services.submit_import(team=team, user=user, payload={**payload, "name": "Other"})
    assert ImageImport.objects.count() == 1


def test_a_queued_import_is_withdrawn(team, user):
    image_import = make_import(team, user, Status.QUEUED)
    outcome = services.cancel_import(image_import, user=user)
    assert outcome.cancelled
    assert image_import.is_cancelled


@pytest.mark.parametrize("status", [Status.AVAILABLE, Status.FAILED, Status.SUBMITTING])
def test_an_import_that_cannot_be_cancelled_says_so(team, user, status):
    image_import = make_import(team, user, status)
    outcome = services.cancel_import(image_import, user=user)
    assert not outcome.cancelled
    assert outcome.message.endswith("it cannot be cancelled now.")
    assert ImageImport.objects.get(pk=image_import.pk).status == status


def test_the_vm_import_task_list_is_cached_briefly(team, emulator):
    first = services.vm_import_tasks(team)
    again = services.vm_import_tasks(team)
    assert first == again
    assert emulator.calls()["operations"] == {"DescribeImportImageTasks": 1}
