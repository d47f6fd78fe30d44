import pytest

from imports.models import AuditEvent, ClientTokenConflict, ImageImport, Status

from .helpers import at_once


def test_submit_records_a_queued_import_with_its_first_event(team, user, payload):
    image_import, created = ImageImport.submit(team=team, user=user, payload=payload)
    assert created
    assert image_import.status == Status.QUEUED
    assert image_import.client_token == payload["clientToken"]
    assert image_import.payload == payload
    (event,) = image_import.events.all()
    assert (event.actor, event.from_status, event.to_status) == (user, "", "queued")


def test_the_same_token_and_payload_finds_the_same_import(image_import, team, user, payload):
    again, created = ImageImport.submit(team=team, user=user, payload=dict(payload))
    assert not created
    assert again.pk == image_import.pk
    assert ImageImport.objects.count() == 1


def test_the_same_token_with_another_payload_is_a_conflict(image_import, team, user, payload):
    with pytest.raises(ClientTokenConflict) as raised:
        ImageImport.submit(team=team, user=user, payload={**payload, "name": "Other"})
    assert raised.value.existing.pk == image_import.pk


def test_tokens_are_unique_per_team_not_globally(image_import, other_team, outsider, payload):
    theirs, created = ImageImport.submit(team=other_team, user=outsider, payload=payload)
    assert created
    assert theirs.pk != image_import.pk


def test_a_transition_acts_only_from_the_status_it_expects(image_import):
    assert image_import.claim()
    assert not image_import.claim()  # already submitting
    assert image_import.attempts == 1
    assert image_import.mark_failed(code="ClientException", message="no")
    assert not image_import.mark_importing(image_arn="arn", request_id="r", client_token="t")
    image_import.refresh_from_db()
    assert image_import.status == Status.FAILED
    assert image_import.is_terminal


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_let_exactly_one_worker_win(team, user, payload):
    image_import, _ = ImageImport.submit(team=team, user=user, payload=payload)

    results = at_once(lambda: ImageImport.objects.get(pk=image_import.pk).claim())

    assert sorted(results) == [False, False, False, True]
    assert AuditEvent.objects.filter(image_import=image_import, to_status="submitting").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_by_key_let_exactly_one_worker_win(team, user, payload):
    image_import, _ = ImageImport.submit(team=team, user=user, payload=payload)

    results = at_once(lambda: ImageImport.claim_queued(image_import.pk))

    assert [claimed.pk for claimed in results if claimed is not None] == [image_import.pk]
    assert AuditEvent.objects.filter(image_import=image_import, to_status="submitting").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_submissions_make_one_import(team, user, payload):
    def submit():
        image_import, created = ImageImport.submit(team=team, user=user, payload=dict(payload))
        return image_import.pk, created

    outcomes = at_once(submit)

    assert ImageImport.objects.count() == 1
    assert len({pk for pk, _ in outcomes}) == 1
    assert sorted(created for _, created in outcomes) == [False, False, False, True]
