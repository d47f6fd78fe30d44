"""The audit: every state-changing action is an append-only event with who, when, where."""

import csv
import io

import pytest
from django.contrib.auth.models import Group
from django.test import Client, RequestFactory
from django.urls import reverse

from imports.apps import AUDITORS
from imports.audit import client_ip
from imports.models import Action, AppendOnlyError, AuditEvent, ImageImport

from .factories import make_member, valid_payload


def actions():
    return list(AuditEvent.objects.values_list("action", flat=True))


def test_a_submission_a_replay_and_a_conflict_are_each_recorded(client, api_headers, payload):
    client.post("/api/imports", data=payload, content_type="application/json", headers=api_headers)
    client.post("/api/imports", data=payload, content_type="application/json", headers=api_headers)
    client.post(
        "/api/imports",
        data={**payload, "name": "Other"},
        content_type="application/json",
        headers=api_headers,
    )
    assert [a for a in actions() if a.startswith("import.")] == [
        Action.SUBMITTED,
        Action.REPLAYED,
        Action.CONFLICT,
    ]
    replay = AuditEvent.objects.get(action=Action.REPLAYED)
    assert replay.actor.username == "alice"
    assert replay.image_import == ImageImport.objects.get()
    assert replay.client_ip == "127.0.0.1"


def test_sign_ins_and_failed_sign_ins_are_recorded_with_the_address(db, user):
    client = Client(REMOTE_ADDR="203.0.113.9")
    client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    client.post("/accounts/login/", {"username": "alice", "password": "pw-alice"})
    failed = AuditEvent.objects.get(action=Action.SIGN_IN_FAILED)
    assert failed.detail == "Failed sign-in as 'alice'"
    assert failed.client_ip == "203.0.113.9"
    assert "wrong" not in failed.detail  # never the password
    signed_in = AuditEvent.objects.get(action=Action.SIGNED_IN)
    assert (signed_in.actor, signed_in.client_ip) == (user, "203.0.113.9")


@pytest.mark.parametrize(
    "proxies, forwarded, expected",
    [
        (0, "198.51.100.7", "10.0.0.2"),  # no proxy of ours: the header is the client's word
        (1, "198.51.100.7", "198.51.100.7"),
        (1, "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # a forged left part is ignored
        (2, "198.51.100.7, 10.0.0.9", "198.51.100.7"),
        (2, "6.6.6.6", "10.0.0.2"),  # past one of our two proxies: the client's word only
        (1, "not-an-ip", None),
    ],
)
def test_the_client_address_is_taken_correctly_behind_proxies(
    settings, proxies, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_worker_transitions_record_no_user_and_no_address(image_import):
    image_import.claim()
    event = image_import.events.last()
    assert (event.actor, event.client_ip, event.to_status) == (None, None, "submitting")


def test_the_application_never_updates_or_deletes_an_event(image_import):
    event = AuditEvent.objects.first()
    event.detail = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    assert AuditEvent.objects.get(pk=event.pk).detail == "Submitted"


# -- the admin's audit views ------------------------------------------------------


@pytest.fixture
def auditor(team, django_user_model):
    auditor = django_user_model.objects.create_user("audrey", password="pw", is_staff=True)
    auditor.groups.add(Group.objects.get(name=AUDITORS))
    return auditor


@pytest.fixture
def auditor_client(client, auditor):
    client.force_login(auditor)
    return client


def test_auditors_read_every_team_but_change_nothing(
    auditor_client, image_import, other_team, outsider
):
    theirs, _ = ImageImport.submit(team=other_team, user=outsider, payload=valid_payload())
    page = auditor_client.get(reverse("admin:imports_imageimport_changelist")).content.decode()
    assert f"/admin/imports/imageimport/{image_import.pk}/" in page
    assert f"/admin/imports/imageimport/{theirs.pk}/" in page
    assert auditor_client.get(reverse("admin:imports_team_changelist")).status_code == 200
    team_url = reverse("admin:imports_team_change", args=[other_team.pk])
    auditor_client.post(team_url, {"name": "renamed"})
    other_team.refresh_from_db()
    assert other_team.name == "data"


def test_staff_without_the_audit_permission_see_only_their_teams(
    client, team, image_import, other_team, outsider
):
    staff = make_member("sam", team)
    staff.is_staff = True
    staff.save()
    staff.groups.add(Group.objects.get(name=AUDITORS))
    group = Group.objects.create(name="readers")
    group.permissions.set(
        Group.objects.get(name=AUDITORS).permissions.exclude(codename="audit_all_teams")
    )
    staff.groups.set([group])
    theirs, _ = ImageImport.submit(team=other_team, user=outsider, payload=valid_payload())
    client.force_login(staff)
    page = client.get(reverse("admin:imports_imageimport_changelist")).content.decode()
    assert f"/admin/imports/imageimport/{image_import.pk}/" in page
    assert f"/admin/imports/imageimport/{theirs.pk}/" not in page
    assert f"team__id__exact={other_team.pk}" not in page  # nor its name in the filter
    # Nor the other team itself: its role, external ID, bucket and members.
    teams_page = client.get(reverse("admin:imports_team_changelist")).content.decode()
    assert f"/admin/imports/team/{team.pk}/" in teams_page
    assert f"/admin/imports/team/{other_team.pk}/" not in teams_page
    their_team = client.get(reverse("admin:imports_team_change", args=[other_team.pk]))
    assert their_team.status_code == 302  # "does not exist": back to the admin's index


@pytest.mark.parametrize(
    "params",
    [
        {"action__exact": "import.submitted"},
        {"import_status": "queued"},
        {"platform": "Linux"},
        {"created_at__gte": "2000-01-01 00:00:00+00:00"},
        {"q": "import-ami-0123456789abcdef0"},
    ],
)
def test_the_audit_list_filters_and_searches(auditor_client, image_import, params):
    response = auditor_client.get(reverse("admin:imports_auditevent_changelist"), params)
    assert response.status_code == 200
    assert "Submitted" in response.content.decode()


def test_the_filtered_history_exports_as_streamed_csv(auditor_client, image_import, team, user):
    other, _ = ImageImport.submit(
        team=team, user=user, payload=valid_payload(clientToken="other", name="Other one")
    )
    url = reverse("admin:imports_auditevent_export")
    response = auditor_client.get(url, {"q": image_import.client_token})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["when (UTC)", "action", "user"]
    assert [row[6] for row in rows[1:]] == [image_import.client_token]
    assert all(row[1] == "import.submitted" for row in rows[1:])
    listing = auditor_client.get(reverse("admin:imports_auditevent_changelist")).content.decode()
    assert "Export these events as CSV" in listing


def test_the_csv_export_needs_the_audit_view_permission(client, user, image_import):
    client.force_login(user)
    response = client.get(reverse("admin:imports_auditevent_export"))
    assert response.status_code == 302  # not staff: to the admin's sign-in


def test_the_csv_export_is_403_for_staff_without_the_view_permission(client, user):
    # A staff member who may open the admin but not read events: refused
    # plainly, not a server error (it used to raise the builtin PermissionError).
    user.is_staff = True
    user.save()
    client.force_login(user)
    response = client.get(reverse("admin:imports_auditevent_export"))
    assert response.status_code == 403


def test_bulk_updates_and_deletes_of_events_are_refused_too(image_import):
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().update(detail="rewritten")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(image_import=image_import).delete()
    assert AuditEvent.objects.count() == 1


def test_the_csv_export_keeps_formulas_as_text(auditor_client, team, user):
    # A spreadsheet would run a cell that starts with =, +, - or @.
    ImageImport.submit(
        team=team,
        user=user,
        payload=valid_payload(clientToken="@token", name='=HYPERLINK("//evil.example","x")'),
    )
    response = auditor_client.get(reverse("admin:imports_auditevent_export"))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert (rows[1][6], rows[1][7]) == ("'@token", '\'=HYPERLINK("//evil.example","x")')
