"""The audit admin: everything visible, nothing about imports changeable."""

import re
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.urls import reverse

from imports.models import Status, Team

from .factories import make_import


@pytest.fixture
def admin_client_with_import(admin_client, image_import):
    return admin_client


def test_imports_are_listed_filterable_and_searchable(admin_client_with_import, image_import):
    url = reverse("admin:imports_imageimport_changelist")
    response = admin_client_with_import.get(url, {"q": image_import.client_token})
    assert response.status_code == 200
    assert image_import.name in response.content.decode()
    for params in (
        {"status__exact": "queued"},
        {"platform": "Linux"},
        {"team__id__exact": image_import.team_id},
        {"q": image_import.submitted_by.username},
    ):
        assert admin_client_with_import.get(url, params).status_code == 200


def test_an_import_is_found_by_its_disk_file(admin_client_with_import, image_import):
    image_import.disk_key = "exports/db-primary.vmdk"
    image_import.save(update_fields=["disk_key"])
    url = reverse("admin:imports_imageimport_changelist")
    found = admin_client_with_import.get(url, {"q": "db-primary"}).context["cl"].result_list
    assert list(found) == [image_import]


def test_an_import_shows_its_events_inline_and_cannot_be_changed(
    admin_client_with_import, image_import
):
    url = reverse("admin:imports_imageimport_change", args=[image_import.pk])
    response = admin_client_with_import.get(url)
    assert response.status_code == 200
    assert "Submitted" in response.content.decode()
    response = admin_client_with_import.post(url, {"status": "available"})
    assert response.status_code == 403
    image_import.refresh_from_db()
    assert image_import.status == "queued"


@pytest.mark.parametrize("model", ["imageimport", "auditevent"])
def test_no_add_or_delete(admin_client_with_import, image_import, model):
    assert admin_client_with_import.get(reverse(f"admin:imports_{model}_add")).status_code == 403
    obj_id = image_import.pk if model == "imageimport" else image_import.events.first().pk
    delete_url = reverse(f"admin:imports_{model}_delete", args=[obj_id])
    assert admin_client_with_import.post(delete_url, {"post": "yes"}).status_code == 403


def test_events_are_listed_and_searchable(admin_client_with_import, image_import):
    url = reverse("admin:imports_auditevent_changelist")
    response = admin_client_with_import.get(url, {"q": image_import.client_token})
    assert response.status_code == 200
    assert "Submitted" in response.content.decode()


def test_audit_times_carry_their_zone_and_the_worker_is_named(admin_client, image_import):
    image_import.claim()
    image_import.mark_retrying(code="ServiceException", message="busy", delay=0)
    image_import.claim()
    content = admin_client.get(reverse("admin:imports_auditevent_changelist")).content.decode()
    event = image_import.events.first()
    assert event.created_at.strftime("%Y-%m-%d %H:%M:%S UTC") in content
    assert "a.m." not in content and "p.m." not in content
    assert "worker (retry 1)" in content
    assert ">worker<" in content
    assert "Queued → Submitting" in content


@pytest.mark.parametrize("url", ["/admin/", "/admin/login/"])
def test_admin_pages_name_no_icon_so_the_browser_asks_for_none(client, admin_client, url):
    # Without a link the browser asks for /favicon.ico, which is a 404.
    page = (admin_client if url == "/admin/" else client).get(url).content.decode()
    assert '<link rel="icon" href="data:,">' in page


# -- the admin's import list filters Cancelled apart -----------------------------------


@pytest.fixture
def ended_three_ways(team, user):
    return {
        "cancelled": make_import(
            team, user, Status.FAILED, error_code="Cancelled", error_message="Cancelled by alice."
        ),
        "failed": make_import(
            team, user, Status.FAILED, error_code="ImageFailed", error_message="Import failed."
        ),
        "available": make_import(team, user, Status.AVAILABLE),
    }


def listed(admin_client, **params):
    response = admin_client.get(reverse("admin:imports_imageimport_changelist"), params)
    assert response.status_code == 200
    return {image_import.pk for image_import in response.context["cl"].result_list}


def test_the_admin_s_import_list_filters_cancelled_apart_from_failed(
    admin_client, ended_three_ways
):
    assert listed(admin_client, status="cancelled") == {ended_three_ways["cancelled"].pk}
    assert listed(admin_client, status="failed") == {ended_three_ways["failed"].pk}
    assert listed(admin_client, status="available") == {ended_three_ways["available"].pk}
    assert len(listed(admin_client)) == 3


def test_the_admin_s_import_list_offers_and_shows_cancelled(admin_client, ended_three_ways):
    page = admin_client.get(reverse("admin:imports_imageimport_changelist")).content.decode()
    assert "?status=cancelled" in page
    assert ">Cancelled<" in page  # the filter's choice
    assert '<td class="field-import_status">Cancelled</td>' in page  # the row's column


# -- accessibility: what axe-core asked of the admin, as far as the HTML shows it


def admin_static(name):
    return Path(finders.find(name)).read_text()


@pytest.mark.parametrize(
    "url", ["/admin/", "/admin/imports/team/add/", "/admin/imports/auditevent/?q=x"]
)
def test_every_admin_page_has_the_portal_s_stylesheet_and_script(admin_client, url):
    page = admin_client.get(url).content.decode()
    assert re.search(r'<link rel="stylesheet" href="[^"]*/css/admin\.css">', page)
    assert re.search(r'<script src="[^"]*/js/admin\.js" defer></script>', page)


def test_a_team_s_members_are_stacked_with_a_label_for_every_field(
    admin_client, team, user, django_user_model
):
    django_user_model.objects.create_user("zed", password="pw-zed")
    page = admin_client.get(reverse("admin:imports_team_change", args=[team.pk])).content.decode()
    assert 'id="memberships-group"' in page
    assert 'data-inline-type="stacked"' in page
    # The member, and the empty row for a new one: every field labelled.
    for row in (0, 1):
        for field in ("user", "role"):
            assert f'<label class="required" for="id_memberships-{row}-{field}">' in page
    assert re.search(r'<label [^>]*for="id_memberships-0-DELETE">Delete</label>', page)
    # The user is still found by searching, not picked from every user per row.
    assert re.search(r'<select name="memberships-0-user"[^>]*class="admin-autocomplete', page)
    assert ">zed</option>" not in page


def test_the_member_search_still_finds_people(admin_client, team, user):
    response = admin_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "imports", "model_name": "membership", "field_name": "user", "term": "ali"},
    )
    assert response.status_code == 200
    assert [result["text"] for result in response.json()["results"]] == ["alice"]


def test_the_script_names_the_autocomplete_boxes_and_filter_icons():
    script = admin_static("js/admin.js")
    assert ".select2-selection" in script and "aria-labelledby" in script
    assert "aria-controls" in script and ".select2-search__field" in script
    assert "dropdownParent" in script
    assert ".search-label-icon[aria-label]:not([role])" in script


def test_the_result_count_link_is_underlined(admin_client_with_import):
    url = reverse("admin:imports_auditevent_changelist")
    page = admin_client_with_import.get(url, {"q": "nothing-at-all"}).content.decode()
    # Django's markup, which the stylesheet's rule is written for.
    assert re.search(
        r'<form id="changelist-search"[\s\S]*<span class="small quiet">0 results \(<a href="\?">',
        page,
    )
    css = admin_static("css/admin.css")
    assert re.search(r"#changelist-search \.small a[^{]*\{ text-decoration: underline; \}", css)


def test_long_names_wrap_in_breadcrumbs_titles_and_read_only_values():
    css = admin_static("css/admin.css")
    rule = re.search(r"([^}/]*)\{ overflow-wrap: anywhere; \}", css)
    selectors = {selector.strip() for selector in rule[1].split(",")}
    assert {"div.breadcrumbs", "#content h1", "#content h2", "div.readonly"} <= selectors


def test_an_import_s_events_have_a_heading_for_every_column_and_scroll_by_keyboard(
    admin_client_with_import, image_import
):
    image_import.claim()
    url = reverse("admin:imports_imageimport_change", args=[image_import.pk])
    page = admin_client_with_import.get(url).content.decode()
    region = re.search(
        r'<div class="table-scroll" role="region" tabindex="0" aria-labelledby="events-heading">'
        r"([\s\S]*?)</div>",
        page,
    )
    assert region, "the events table is in a region a keyboard can scroll"
    assert '<h2 id="events-heading" class="inline-heading">Audit events</h2>' in page
    table = region[1]
    headings = re.findall(r"<th scope=\"col\"[^>]*>\s*([^<\s][^<]*)", table)
    assert [h.strip() for h in headings] == [
        "Created at",
        "Action",
        "Actor",
        "Client ip",
        "From status",
        "To status",
        "Detail",
    ]
    assert len(re.findall(r"<th\b", table)) == len(headings)  # none without words
    rows = re.findall(r'<tr class="form-row">([\s\S]*?)</tr>', table)
    assert len(rows) == image_import.events.count() == 2
    assert all(len(re.findall(r"<td\b", row)) == len(headings) for row in rows)
    assert "Attempt 1 sending to AWS" in table


def test_the_user_page_shows_sign_in_times_read_only(admin_client, user):
    joined = user.date_joined
    url = reverse("admin:auth_user_change", args=[user.pk])
    page = admin_client.get(url).content.decode()
    for field, label in (("last_login", "Last login:"), ("date_joined", "Date joined:")):
        # The split date and time boxes had no labels (axe-core: label).
        assert f'id="id_{field}_0"' not in page and f'id="id_{field}_1"' not in page
        row = re.search(
            rf'<div class="form-row field-{field}">[\s\S]*?<div class="readonly">', page
        )
        assert row and f"<label>{label}</label>" in row[0]
    response = admin_client.post(
        url,
        {
            "username": "alice",
            "first_name": "Alice",
            "last_name": "",
            "email": "",
            "is_active": "on",
            "date_joined_0": "2000-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content[:500]
    user.refresh_from_db()
    assert user.first_name == "Alice"
    assert user.date_joined == joined


def test_a_user_is_still_added_in_the_admin(admin_client, django_user_model):
    response = admin_client.post(
        reverse("admin:auth_user_add"),
        {
            "username": "newcomer",
            "password1": "a-long-Passw0rd-here",
            "password2": "a-long-Passw0rd-here",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content[:500]
    assert django_user_model.objects.filter(username="newcomer").exists()


def test_the_admins_team_form_refuses_another_teams_import_area(rf, team, other_team):
    # The Team page's rule, in the admin too: the same area would be both teams'.
    other_team.import_bucket, other_team.import_prefix = "platform-imports", "data/"
    other_team.save()
    request = rf.get("/")
    request.user = get_user_model().objects.create_superuser("root", password="pw")
    form_class = admin.site._registry[Team].get_form(request, team)
    values = {"name": team.name, "vm_import_role": "vmimport", "import_bucket": "platform-imports"}
    inside = form_class({**values, "import_prefix": "data/old"}, instance=team)
    assert not inside.is_valid()
    assert (
        "Another team imports from s3://platform-imports/data/old/"
        in inside.errors["import_prefix"][0]
    )
    apart = form_class({**values, "import_prefix": "web"}, instance=team)
    assert apart.is_valid(), apart.errors
    assert apart.cleaned_data["import_prefix"] == "web/"  # a folder, as on the Team page
    # And the target's own rules: an account without a role names the wrong account.
    no_role = form_class({**values, "aws_account_id": "111122223333"}, instance=team)
    assert not no_role.is_valid()
    assert "Without a role to assume" in no_role.errors["aws_account_id"][0]
