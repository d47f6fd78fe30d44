"""Team activity from a stale link, the one pager, and how long an invitation link works."""

import runpy
from pathlib import Path

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.urls import reverse

from config import settings as settings_module
from imports import teams
from imports.models import AuditEvent, ImageImport, Membership

from .factories import make_member, valid_payload

ACTIVITY_URL = reverse("imports:team_activity")
HTMX = {"HX-Request": "true", "HX-Target": "activity-table"}
STALE_KIND = '<b id="stale">imports</b>'


@pytest.fixture
def admin_client(client, team):
    client.force_login(make_member("ada", team, Membership.Role.ADMIN))
    return client


def one_event_of_each_kind(team):
    """An event of every activity kind; their actions."""
    actions = [kind.actions[0] for kind in teams.ACTIVITY_KINDS.values()]
    for action in actions:
        AuditEvent.new(action, team=team).save()
    return actions


def actions_shown(response):
    return sorted(event.action for event in response.context["page"])


# -- a kind the page does not know ---------------------------------------------------


def test_a_stale_kind_shows_everything_with_the_select_on_everything(admin_client, team):
    every_kind = one_event_of_each_kind(team)

    response = admin_client.get(ACTIVITY_URL, {"kind": STALE_KIND})

    content = response.content.decode()
    assert response.status_code == 200
    assert actions_shown(response) == sorted(every_kind)
    assert '<option value="">Everything</option>' in content
    assert " selected>" not in content
    assert f"{len(every_kind)} events" in content  # not "matching events"
    assert 'id="stale"' not in content and "&lt;b id=&quot;stale" not in content


def test_a_stale_kind_is_not_kept_in_the_pager_links(admin_client, team, settings):
    settings.HISTORY_PAGE_SIZE = 1
    one_event_of_each_kind(team)

    response = admin_client.get(ACTIVITY_URL, {"kind": "nope"}, headers=HTMX)

    content = response.content.decode()
    assert content.lstrip().startswith('<div id="activity-table">')
    assert f'<a href="?older={response.context["page"].older}">Older &rarr;</a>' in content
    assert "nope" not in content


# -- one pager for the history and the team activity ---------------------------------


def test_the_history_and_the_activity_page_with_the_one_pager(admin_client, team, user, settings):
    settings.HISTORY_PAGE_SIZE = 1
    for token in ("a", "b"):
        ImageImport.submit(team=team, user=user, payload=valid_payload(clientToken=token))

    for url in (reverse("imports:history"), ACTIVITY_URL):
        response = admin_client.get(url)
        assert "includes/pager.html" in [template.name for template in response.templates]
        assert '<nav class="pager" aria-label="Pages">' in response.content.decode()
        assert "Older &rarr;</a>" in response.content.decode()


# -- how long an invitation's link works ---------------------------------------------


def read_settings():
    """config/settings.py as it reads the environment now."""
    return runpy.run_path(str(Path(settings_module.__file__)))


def test_the_link_lasts_djangos_three_days_unless_the_environment_says(monkeypatch):
    monkeypatch.delenv("PASSWORD_RESET_TIMEOUT", raising=False)
    assert read_settings()["PASSWORD_RESET_TIMEOUT"] == 259200

    monkeypatch.setenv("PASSWORD_RESET_TIMEOUT", "43200")
    assert read_settings()["PASSWORD_RESET_TIMEOUT"] == 43200


@pytest.mark.parametrize("value", ["3d", "1.5", "259200s"])
def test_a_link_lifetime_that_is_not_a_whole_number_stops_the_start(monkeypatch, value):
    monkeypatch.setenv("PASSWORD_RESET_TIMEOUT", value)
    with pytest.raises(
        ImproperlyConfigured, match=f"PASSWORD_RESET_TIMEOUT must be a whole number, not '{value}'"
    ):
        read_settings()


@override_settings(PASSWORD_RESET_TIMEOUT=12 * 60 * 60)
def test_the_team_page_and_the_invitation_say_the_lifetime_set(admin_client, team):
    page = admin_client.get(reverse("imports:team")).content.decode()
    assert "The link works once, for 12 hours." in page

    admin_client.post(
        reverse("imports:team"),
        {"action": "add_member", "username": "grace@example.com", "role": "viewer"},
    )

    (message,) = mail.outbox
    assert "for 12 hours" in message.body
    assert "for 12 hours" in message.alternatives[0][0]
