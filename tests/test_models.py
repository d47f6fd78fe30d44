import pytest

from imports.models import AuditEvent, ClientTokenConflict, Status, VmImport

from .conftest import at_once


def test_submit_records_a_queued_import_with_its_first_event(team, user, payload):
    vm_import, created = VmImport.submit(team=team, user=user, payload=payload)
    assert created
    assert vm_import.status == Status.QUEUED
    assert vm_import.client_token == payload["clientToken"]
    assert vm_import.request == payload
    (event,) = vm_import.events.all()
    assert (event.actor, event.from_status, event.to_status) == (user, "", "queued")


def test_the_same_token_and_payload_finds_the_same_import(vm_import, team, user, payload):
    again, created = VmImport.submit(team=team, user=user, payload=dict(payload))
    assert not created
    assert again.pk == vm_import.pk
    assert VmImport.objects.count() == 1


def test_the_same_token_with_another_payload_is_a_conflict(vm_import, team, user, payload):
    with pytest.raises(ClientTokenConflict) as raised:
        VmImport.submit(team=team, user=user, payload={**payload, "name": "Other"})
    assert raised.value.existing.pk == vm_import.pk


def test_tokens_are_unique_per_team_not_globally(vm_import, other_team, outsider, payload):
    theirs, created = VmImport.submit(team=other_team, user=outsider, payload=payload)
    assert created
    assert theirs.pk != vm_import.pk


def test_a_transition_acts_only_from_the_status_it_expects(vm_import):
    assert vm_import.claim()
    assert not vm_import.claim()  # already submitting
    assert vm_import.attempts == 1
    assert vm_import.mark_failed(code="ClientException", message="no")
    assert not vm_import.mark_importing(image_arn="arn", request_id="r", client_token="t")
    vm_import.refresh_from_db()
    assert vm_import.status == Status.FAILED
    assert vm_import.is_terminal


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_let_exactly_one_worker_win(team, user, payload):
    vm_import, _ = VmImport.submit(team=team, user=user, payload=payload)

    results = at_once(lambda: VmImport.objects.get(pk=vm_import.pk).claim())

    assert sorted(results) == [False, False, False, True]
    assert AuditEvent.objects.filter(vm_import=vm_import, to_status="submitting").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_submissions_make_one_import(team, user, payload):
    def submit():
        vm_import, created = VmImport.submit(team=team, user=user, payload=dict(payload))
        return vm_import.pk, created

    outcomes = at_once(submit)

    assert VmImport.objects.count() == 1
    assert len({pk for pk, _ in outcomes}) == 1
    assert sorted(created for _, created in outcomes) == [False, False, False, True]
