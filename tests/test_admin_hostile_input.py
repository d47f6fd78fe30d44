"""The admin answers a hand-made or damaged request with a refusal, never a 500.

A filter the list cannot apply redirects to the list with ?e=1, as Django's
own refusals do; the CSV export and a bulk action naming no row answer 400;
a membership row the team cannot take is that row's error, and one that
another admin's change made moot meanwhile is a warning.
"""

import pytest
from django.contrib import admin
from django.db import connection
from django.urls import reverse

from imports.admin import ListRequestChecks, TeamAdmin
from imports.models import Action, ApiToken, AuditEvent, Membership, Team

from .factories import make_member

HUGE = "99999999999999999999"  # past 64 bits: SQLite cannot even compare it


def team_form(team, **memberships):
    """The team's change form as it stands, with these membership fields (the prefix added)."""
    data = {
        "name": team.name,
        "aws_region": team.aws_region,
        "aws_account_id": team.aws_account_id,
        "aws_role_arn": team.aws_role_arn,
        "import_bucket": team.import_bucket,
        "import_prefix": team.import_prefix,
        "vm_import_role": team.vm_import_role,
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    data.update({f"memberships-{name}": str(value) for name, value in memberships.items()})
    return data


def membership_errors(response):
    formset = response.context["inline_admin_formsets"][0].formset
    return [form.errors for form in formset.forms]


def change_team(client, team, **memberships):
    url = reverse("admin:imports_team_change", args=[team.pk])
    return client.post(url, team_form(team, **memberships))


# -- 1. a new membership row for someone already in the team


def test_adding_someone_already_in_the_team_is_an_error_on_that_row(admin_client, team, user):
    response = change_team(
        admin_client, team, **{"TOTAL_FORMS": 1, "0-user": user.pk, "0-role": "admin"}
    )
    assert response.status_code == 200
    assert membership_errors(response) == [{"user": ["alice is already in this team."]}]
    assert user.memberships.get().role == Membership.Role.SUBMITTER
    assert not AuditEvent.objects.filter(action=Action.MEMBER_ADDED).exists()


def test_the_same_person_in_two_new_rows_is_still_refused(admin_client, team, user):
    newcomer = make_member("nina", Team.objects.create(name="elsewhere"))
    rows = {"0-user": newcomer.pk, "0-role": "admin", "1-user": newcomer.pk, "1-role": "viewer"}
    response = change_team(admin_client, team, TOTAL_FORMS=2, **rows)
    assert response.status_code == 200
    assert "Please correct the duplicate data for user" in response.content.decode()
    assert not team.memberships.filter(user=newcomer).exists()


def test_a_member_removed_and_added_back_in_one_save_is_not_refused(admin_client, team, user):
    membership = user.memberships.get()
    rows = {
        "TOTAL_FORMS": 2,
        "INITIAL_FORMS": 1,
        "0-id": membership.pk,
        "0-team": team.pk,
        "0-user": user.pk,
        "0-role": "submitter",
        "0-DELETE": "on",
        "1-user": user.pk,
        "1-role": "admin",
    }
    response = change_team(admin_client, team, **rows)
    assert response.status_code == 302, response.content[:500]
    assert user.memberships.get().role == Membership.Role.ADMIN


def test_a_stored_row_s_person_is_shown_not_edited(admin_client, team, user):
    # Only the role of a stored row is saved: another person picked there
    # was dropped without a word.
    membership = user.memberships.get()
    newcomer = make_member("nina", Team.objects.create(name="elsewhere"))
    page = admin_client.get(reverse("admin:imports_team_change", args=[team.pk]))
    formset = page.context["inline_admin_formsets"][0].formset
    assert formset.forms[0].fields["user"].disabled
    rows = {
        "TOTAL_FORMS": 1,
        "INITIAL_FORMS": 1,
        "0-id": membership.pk,
        "0-team": team.pk,
        "0-user": newcomer.pk,
        "0-role": "admin",
    }
    assert change_team(admin_client, team, **rows).status_code == 302
    assert user.memberships.get().role == Membership.Role.ADMIN
    assert not team.memberships.filter(user=newcomer).exists()


def test_a_newcomer_is_still_added(admin_client, team, user):
    newcomer = make_member("nina", Team.objects.create(name="elsewhere"))
    rows = {"TOTAL_FORMS": 1, "0-user": newcomer.pk, "0-role": "viewer"}
    assert change_team(admin_client, team, **rows).status_code == 302
    assert team.memberships.get(user=newcomer).role == Membership.Role.VIEWER


# Two admins saving the same team at once: the rows' checks passed, then the
# other admin's save landed before this one's. Here, the state at save time.


def test_someone_another_admin_added_meanwhile_is_a_warning_not_a_500(team, admin_user):
    newcomer = make_member("nina", Team.objects.create(name="elsewhere"))
    team.add_member(newcomer, Membership.Role.ADMIN, by=admin_user)  # the other admin
    row = Membership(team=team, user=newcomer, role=Membership.Role.VIEWER)
    assert TeamAdmin.save_membership(row, by=admin_user) == (
        "nina was added to the team meanwhile, by another admin: their role there is left as it is."
    )
    assert team.memberships.get(user=newcomer).role == Membership.Role.ADMIN
    assert AuditEvent.objects.filter(action=Action.MEMBER_ADDED).count() == 1


def test_a_role_given_to_someone_removed_meanwhile_is_a_warning_not_a_500(team, user, admin_user):
    row = user.memberships.get()
    Membership.objects.get(pk=row.pk).remove(by=admin_user)  # the other admin
    row.role = Membership.Role.ADMIN
    assert TeamAdmin.save_membership(row, by=admin_user) == (
        "alice was removed from the team meanwhile, by another admin: the new role was not kept."
    )
    assert not team.memberships.filter(user=user).exists()
    assert not AuditEvent.objects.filter(action=Action.ROLE_CHANGED).exists()


# -- 2. the audit CSV export with a filter the list refuses

EXPORT = "/admin/imports/auditevent/export.csv"


@pytest.mark.parametrize(
    "query",
    [
        "created_at__year=abc",
        "created_at__year=99999",
        "created_at__gte=zzz",
        "created_at__year=2024&created_at__month=13",
        "status=zzz",
        "team__id__exact=abc",
        "actor__id__exact=zz",
        "created_at__regex=(",
    ],
)
def test_an_export_with_a_filter_the_list_refuses_is_a_400(admin_client, image_import, query):
    listed = admin_client.get("/admin/imports/auditevent/?" + query)
    assert listed.status_code == 302 and listed["Location"].endswith("?e=1")
    response = admin_client.get(f"{EXPORT}?{query}")
    assert response.status_code == 400
    assert "The audit list cannot apply this export&#x27;s filters" in response.content.decode()


def test_an_export_with_the_list_s_own_filter_still_downloads(admin_client, image_import):
    response = admin_client.get(EXPORT, {"action": "import.submitted"})
    assert response.status_code == 200
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 2 and image_import.client_token in lines[1]


# -- 3. filters Django only refuses once the query runs: a year, month or day past
# datetime's range, a range without two ends, a broken regular expression, an id
# past 64 bits, and on SQLite a relation's number past 64 bits and JSON containment


@pytest.fixture
def every_list_has_a_row(image_import, user, team):
    ApiToken.issue(user=user, team=team, name="ci")


YEARS_OUT_OF_RANGE = [
    f"/admin/{model}/?{field}__{lookup}={value}"
    for model, field in [
        ("imports/apitoken", "created_at"),
        ("imports/apitoken", "revoked_at"),
        ("imports/imageimport", "finished_at"),
        ("imports/imageimport", "created_at"),  # the date hierarchy's field
        ("imports/auditevent", "created_at"),
        ("auth/user", "date_joined"),
        ("auth/user", "last_login"),
        ("axes/accessattempt", "attempt_time"),  # django-axes' list, its date hierarchy
    ]
    for lookup, value in [
        ("year", "99999"),
        ("year", "10000"),
        ("year", "0"),
        ("year", "-1"),
        ("year", HUGE),
        ("year__gt", "0"),
        ("year__lte", "10000"),
        ("iso_year", "0"),
    ]
] + [
    # The date hierarchy ends a year on the first day of the next: 10000.
    "/admin/imports/imageimport/?created_at__year=9999",
    "/admin/imports/imageimport/?created_at__year=9999&created_at__month=12",
]
LOOKUPS_THE_DATABASE_REFUSES = [
    f"/admin/{model}/?{query}"
    for model in ("imports/team", "imports/apitoken", "auth/user", "auth/group")
    for query in ("id__range=1", "id__regex=[", "id__iregex=*", f"id__in=1,{HUGE}")
] + [
    "/admin/imports/team/?name__range=a,b,c",
    # A month or a day past what Python's dates hold, on a date hierarchy.
    f"/admin/imports/imageimport/?created_at__year=2024&created_at__month={HUGE}",
    f"/admin/imports/auditevent/?created_at__year=2024&created_at__month=1&created_at__day={HUGE}",
]
# PostgreSQL reads these and matches nothing, or what they ask; SQLite
# cannot: it binds no number past 64 bits, and has no JSON containment.
WHAT_SQLITE_CANNOT_RUN = [
    f"/admin/imports/imageimport/?team={HUGE}",
    f"/admin/imports/auditevent/?image_import={HUGE}",
    f"/admin/auth/user/?groups={HUGE}",
    f"/admin/imports/team/?memberships__gt={HUGE}",
    "/admin/imports/imageimport/?payload__contains=x",
    "/admin/imports/imageimport/?amis__contained_by=x",
]


@pytest.mark.parametrize("url", YEARS_OUT_OF_RANGE + LOOKUPS_THE_DATABASE_REFUSES)
def test_a_filter_that_fails_only_when_the_query_runs_is_refused(
    admin_client, every_list_has_a_row, url
):
    response = admin_client.get(url)
    assert response.status_code == 302
    assert response["Location"] == url.split("?")[0] + "?e=1"


@pytest.mark.parametrize("url", WHAT_SQLITE_CANNOT_RUN)
def test_a_filter_sqlite_cannot_run_is_refused_there_and_run_elsewhere(
    admin_client, every_list_has_a_row, url
):
    response = admin_client.get(url)
    if connection.vendor == "sqlite":
        assert response.status_code == 302
        assert response["Location"] == url.split("?")[0] + "?e=1"
    else:
        assert response.status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/admin/imports/apitoken/?created_at__year=2024",
        "/admin/imports/apitoken/?created_at__year=1",
        "/admin/imports/imageimport/?created_at__year=9998&created_at__month=12",
        "/admin/auth/user/?date_joined__year=2024&date_joined__month=13",  # ExtractMonth = 13
        "/admin/imports/imageimport/?finished_at__iso_year__gte=2020",
        "/admin/auth/user/?id__in=1,2",
        "/admin/auth/user/?id__exact=" + HUGE,  # Django matches nothing itself
        "/admin/imports/auditevent/?created_at__gte=2024-01-01T00:00:00%2B00:00",
    ],
)
def test_a_filter_within_range_still_lists(admin_client, every_list_has_a_row, url):
    assert admin_client.get(url).status_code == 200


def test_every_admin_the_portal_registers_has_the_list_checks():
    unchecked = [
        type(model_admin).__name__
        for model_admin in admin.site._registry.values()
        if not isinstance(model_admin, ListRequestChecks)
    ]
    assert unchecked == []


# -- 4. a bulk action naming rows by something other than their number


@pytest.mark.parametrize(
    "changelist", ["admin:imports_team_changelist", "admin:auth_user_changelist"]
)
@pytest.mark.parametrize("selected", [["abc"], ["1", "abc"], [HUGE], [""]])
def test_a_bulk_action_on_a_row_that_is_not_a_number_is_a_400(
    admin_client, team, user, changelist, selected
):
    data = {"action": "delete_selected", "_selected_action": selected, "index": "0"}
    response = admin_client.post(reverse(changelist), data)
    assert response.status_code == 400
    assert "_selected_action must be row numbers from the list." in response.content.decode()
    assert Team.objects.filter(pk=team.pk).exists()
    assert type(user).objects.filter(pk=user.pk).exists()


def test_a_bulk_action_on_real_rows_still_asks_for_confirmation(admin_client, team):
    data = {"action": "delete_selected", "_selected_action": [str(team.pk)], "index": "0"}
    response = admin_client.post(reverse("admin:imports_team_changelist"), data)
    assert response.status_code == 200
    assert "Are you sure you want to delete the selected team?" in response.content.decode()


# -- 5. a forged TOTAL_FORMS builds no more forms than the team's members and a hundred new


@pytest.mark.parametrize("page", ["change", "add"])
def test_a_huge_total_forms_builds_at_most_the_members_and_a_hundred_more(
    admin_client, team, user, page
):
    if page == "change":
        url = reverse("admin:imports_team_change", args=[team.pk])
        members = 1
    else:
        url = reverse("admin:imports_team_add")
        members = 0
    response = admin_client.post(url, team_form(team, TOTAL_FORMS="99999999"))
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert len(formset.forms) == members + 100  # Django's own cap builds 2,000
    assert f"Please submit at most {members + 100} forms." in response.content.decode()


def test_a_team_s_page_still_offers_an_empty_row_for_a_new_member(admin_client, team, user):
    response = admin_client.get(reverse("admin:imports_team_change", args=[team.pk]))
    formset = response.context["inline_admin_formsets"][0].formset
    assert len(formset.forms) == 2 and formset.max_num == 101


# -- 6. a member given by a number past 64 bits (SQLite raised OverflowError) or by text
# (the search box, shown again, raised)


@pytest.mark.parametrize("number", [HUGE, "-" + HUGE, "abc"])
def test_a_member_not_given_by_a_64_bit_number_is_not_a_valid_choice(
    admin_client, team, user, number
):
    rows = {"TOTAL_FORMS": 1, "0-user": number, "0-role": "viewer"}
    response = change_team(admin_client, team, **rows)
    assert response.status_code == 200
    assert membership_errors(response) == [
        {"user": ["Select a valid choice. That choice is not one of the available choices."]}
    ]
