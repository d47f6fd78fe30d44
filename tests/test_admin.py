"""The audit admin: everything visible, nothing about imports changeable."""

import pytest
from django.urls import reverse


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
    assert "queued → submitting" in content


@pytest.mark.parametrize("url", ["/admin/", "/admin/login/"])
def test_admin_pages_name_no_icon_so_the_browser_asks_for_none(client, admin_client, url):
    # Without a link the browser asks for /favicon.ico, which is a 404.
    page = (admin_client if url == "/admin/" else client).get(url).content.decode()
    assert '<link rel="icon" href="data:,">' in page
