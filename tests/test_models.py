import uuid
from contextlib import contextmanager

import pytest
from django.db import connection, transaction
from django.db.models import Value

from imports import audit, models, returning
from imports.models import (
    Action,
    AuditEvent,
    ClientTokenConflict,
    ImageImport,
    Status,
    aws_client_token,
)
from imports.returning import RowText

from .helpers import at_once


def test_submit_records_a_queued_import_with_its_first_event(team, user, payload):
    image_import, created = ImageImport.submit(team=team, user=user, payload=payload)
    assert created
    assert image_import.status == Status.QUEUED
    assert image_import.client_token == payload["clientToken"]
    assert image_import.payload == {
        **payload,
        "clientToken": aws_client_token(team.pk, payload["clientToken"]),
    }
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


# -- a transition and its event in one statement (PostgreSQL) ---------------------


@contextmanager
def serving_client(address):
    """As AuditMiddleware does while it serves a request from `address`."""
    token = audit._client_ip.set(address)
    try:
        yield
    finally:
        audit._client_ip.reset(token)


def both_ways(monkeypatch, team, user, payload, move):
    """The imports `move` leaves, and their last events, done each way.

    In one statement twice, first with its SQL compiled by the ORM and then
    with that SQL kept (MoveStatement, insert_returning_pk), then in a
    transaction.
    """
    monkeypatch.setattr(returning.MoveStatement, "_by_shape", {})
    monkeypatch.setattr(returning, "_INSERT_SQL", {})
    results = []
    for one_statement in (True, True, False):
        way = (lambda: True) if one_statement else (lambda: False)
        monkeypatch.setattr(models, "can_write_event_in_one_statement", way)
        with serving_client("192.0.2.7"):
            image_import, _ = ImageImport.submit(
                team=team, user=user, payload={**payload, "clientToken": str(uuid.uuid4())}
            )
            assert move(image_import, user)
        image_import.refresh_from_db()
        results.append((image_import, image_import.events.order_by("id").last()))
    return results


FIELDS_OF_AN_EVENT = [
    field.attname
    for field in AuditEvent._meta.concrete_fields
    if field.name not in ("id", "created_at", "image_import")
]
# What differs between two imports of the same request made one after another.
FIELDS_OF_AN_IMPORT = [
    field.attname
    for field in ImageImport._meta.concrete_fields
    if field.name
    not in ("id", "client_token", "payload", "created_at", "updated_at", "lease_expires_at")
    and not field.name.endswith("_at")
]


@pytest.mark.parametrize(
    ("move", "shapes"),
    [
        (lambda image_import, user: True, 0),  # the submission's own event
        (lambda image_import, user: image_import.claim(), 1),
        (lambda image_import, user: ImageImport.claim_queued(image_import.pk), 1),
        (
            lambda image_import, user: (
                image_import.claim()
                and image_import.mark_importing(
                    image_arn="arn:x", request_id="r-1", client_token="t"
                )
            ),
            2,
        ),
        (
            lambda image_import, user: (
                image_import.claim()
                and image_import.mark_retrying(code="Throttling", message="Slow down", delay=5)
            ),
            2,  # a NULL among its values
        ),
    ],
    ids=["submit", "claim", "claim_queued", "mark_importing", "mark_retrying"],
)
def test_the_one_statement_move_writes_what_the_transaction_writes(
    monkeypatch, team, user, payload, move, shapes
):
    if connection.vendor != "postgresql":
        pytest.skip("data-modifying WITH is PostgreSQL's; the PostgreSQL pass runs this")
    compiled, kept, in_a_transaction = both_ways(monkeypatch, team, user, payload, move)
    assert len(returning.MoveStatement._by_shape) == shapes
    assert len(returning._INSERT_SQL) == 1
    for field in FIELDS_OF_AN_IMPORT:
        expected = getattr(in_a_transaction[0], field)
        assert getattr(compiled[0], field) == getattr(kept[0], field) == expected, field
    for field in FIELDS_OF_AN_EVENT:
        expected = getattr(in_a_transaction[1], field)
        assert getattr(compiled[1], field) == getattr(kept[1], field) == expected, field
    for _, event in (compiled, kept):
        assert event.client_ip == "192.0.2.7"
        assert event.team_id == team.pk
        assert event.created_at.tzinfo is not None


def test_a_move_whose_parameters_the_orm_would_place_otherwise_is_not_kept(
    monkeypatch, image_import
):
    if connection.vendor != "postgresql":
        pytest.skip("data-modifying WITH is PostgreSQL's; the PostgreSQL pass runs this")
    monkeypatch.setattr(returning.MoveStatement, "_by_shape", {})
    monkeypatch.setattr(returning.MoveStatement, "params", lambda *args: ["not", "the", "orm's"])
    assert image_import.claim()  # sent as the ORM compiled it
    assert image_import.attempts == 1
    assert image_import.events.last().detail == "Attempt 1 sending to AWS"
    assert returning.MoveStatement._by_shape == {}


def test_shapes_are_kept_up_to_a_limit(monkeypatch, image_import):
    if connection.vendor != "postgresql":
        pytest.skip("data-modifying WITH is PostgreSQL's; the PostgreSQL pass runs this")
    monkeypatch.setattr(returning.MoveStatement, "_by_shape", {})
    monkeypatch.setattr(returning.MoveStatement, "KEPT_SHAPES", 0)
    assert image_import.claim()
    assert returning.MoveStatement._by_shape == {}


def test_a_move_to_an_unhashable_value_is_compiled_by_the_orm(monkeypatch, image_import):
    if connection.vendor != "postgresql":
        pytest.skip("data-modifying WITH is PostgreSQL's; the PostgreSQL pass runs this")

    class Unhashable(Value):
        __hash__ = None

    monkeypatch.setattr(returning.MoveStatement, "_by_shape", {})
    event = AuditEvent.new(Action.STATUS, to_status=Status.SUBMITTING, from_status="queued")
    values = {"status": Status.SUBMITTING, "error_code": Unhashable("E")}
    (moved,) = returning.MoveStatement.run(
        ImageImport, image_import.pk, Status.QUEUED, values, event
    )
    assert (moved.status, moved.error_code) == (Status.SUBMITTING, "E")
    assert returning.MoveStatement._by_shape == {}


def test_a_new_import_holding_an_expression_is_compiled_by_the_orm(
    monkeypatch, team, user, payload
):
    if connection.vendor != "postgresql":
        pytest.skip("data-modifying WITH is PostgreSQL's; the PostgreSQL pass runs this")
    from django.db.models.functions import Now

    monkeypatch.setattr(returning, "_INSERT_SQL", {})
    image_import = ImageImport(
        team=team,
        submitted_by=user,
        payload=payload,
        client_token=payload["clientToken"],
        name=payload["name"],
        platform=payload["platform"],
        created_at=Now(),
    )
    event = AuditEvent.new(Action.SUBMITTED, actor=user, to_status=Status.QUEUED, detail="x")
    returning.insert_returning_pk(image_import, event=event)
    assert returning._INSERT_SQL == {}
    image_import.refresh_from_db()
    assert image_import.created_at.tzinfo is not None
    assert image_import.events.get().detail == "x"


def test_parameters_compare_by_value_json_adapters_by_what_they_hold():
    from psycopg.types.json import Jsonb

    same = returning.same_params
    assert same([1, "queued", Jsonb({"a": 1})], [1, "queued", Jsonb({"a": 1})])
    assert not same([Jsonb({"a": 1})], [Jsonb({"a": 2})])
    assert not same([1], [1, None])
    assert not same([1], [True])  # equal in Python, not the same parameter


@pytest.mark.django_db(transaction=True)
def test_a_repeated_token_outside_any_transaction_finds_the_first_import(team, user, payload):
    # Production's case (autocommit): the one-statement INSERT fails alone,
    # and the connection goes on to find the import the token made.
    first, created = ImageImport.submit(team=team, user=user, payload=payload)
    again, created_again = ImageImport.submit(team=team, user=user, payload=dict(payload))
    assert (created, created_again, again.pk) == (True, False, first.pk)
    actions = list(first.events.values_list("action", flat=True))
    assert actions == [Action.SUBMITTED, Action.REPLAYED]


def test_a_repeated_token_inside_a_transaction_leaves_it_usable(team, user, payload):
    first, _ = ImageImport.submit(team=team, user=user, payload=payload)
    with transaction.atomic():
        again, created = ImageImport.submit(team=team, user=user, payload=dict(payload))
        assert (created, again.pk) == (False, first.pk)
        assert ImageImport.objects.count() == 1  # the transaction still answers


def test_only_postgresql_moves_in_one_statement_and_never_when_receivers_listen():
    on_postgresql = connection.vendor == "postgresql"
    one = ImageImport._moves_in_one_statement
    assert one([Status.QUEUED], Status.SUBMITTING) is on_postgresql
    assert one([Status.SUBMITTING], Status.IMPORTING) is on_postgresql
    assert not one([Status.IMPORTING], Status.AVAILABLE)  # import_ended's receivers
    assert not one([Status.UPLOADING], Status.QUEUED)  # upload_finished's
    assert not one([Status.QUEUED, Status.SUBMITTING], Status.FAILED)


def test_a_move_that_finds_its_row_elsewhere_writes_no_event(image_import):
    assert image_import.claim()
    events = image_import.events.count()
    assert not image_import.claim()
    assert ImageImport.claim_queued(image_import.pk) is None
    assert image_import.events.count() == events
    assert image_import.status == Status.SUBMITTING  # read again


def test_row_text_fills_its_slots_from_the_row():
    text = RowText("Attempt {attempts} of {name}")
    assert text.render(ImageImport(attempts=3, name="web")) == "Attempt 3 of web"
    with pytest.raises(ValueError, match="bare field names"):
        RowText("retrying in {attempts:.0f}s")
