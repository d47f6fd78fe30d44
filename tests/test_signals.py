"""imports.signals.import_ended: sent once, inside the transition's transaction."""

import pytest
from django.db import transaction

from imports import signals
from imports.models import ImageImport, Status

from .factories import make_import


@pytest.fixture
def ended():
    received = []

    def receiver(sender, image_import, event, **kwargs):
        received.append((image_import.pk, event, transaction.get_connection().in_atomic_block))

    signals.import_ended.connect(receiver)
    yield received
    signals.import_ended.disconnect(receiver)


def test_an_available_import_is_announced_inside_the_transition(db, team, user, ended):
    image_import = make_import(team, user, Status.IMPORTING)

    assert image_import.mark_available(amis=[])

    assert ended == [(image_import.pk, signals.AVAILABLE, True)]


def test_a_failure_and_a_cancel_are_told_apart(db, team, user, ended):
    failing = make_import(team, user, Status.IMPORTING)
    queued = make_import(team, user, Status.QUEUED)

    failing.mark_failed(code="ImageFailed", message="broken")
    queued.withdraw(user=user)

    assert [(pk, event) for pk, event, _ in ended] == [
        (failing.pk, signals.FAILED),
        (queued.pk, signals.CANCELLED),
    ]


def test_progress_and_a_lost_race_announce_nothing(db, team, user, ended):
    image_import = make_import(team, user, Status.IMPORTING)
    ImageImport.objects.filter(pk=image_import.pk).update(status=Status.AVAILABLE)

    image_import.claim()
    assert not make_import(team, user, Status.AVAILABLE).mark_failed(code="X", message="late")

    assert ended == []


def test_a_receiver_that_fails_rolls_the_transition_back(db, team, user):
    image_import = make_import(team, user, Status.IMPORTING)

    def broken(sender, **kwargs):
        raise RuntimeError("receiver failed")

    signals.import_ended.connect(broken)
    try:
        with pytest.raises(RuntimeError):
            image_import.mark_available(amis=[])
    finally:
        signals.import_ended.disconnect(broken)

    image_import.refresh_from_db()
    assert image_import.status == Status.IMPORTING
    assert not image_import.events.exists()
