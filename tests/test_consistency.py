"""What a careful customer noticed: pages that say the same thing differently.

Times are written one way everywhere (2026-11-28 02:05:13 UTC), a search too
short to be a prefix says so, the history's AMI IDs have a copy button, Team
activity names the worker and heads a status event with what happened, and
smaller wording: task statuses, days, the webhook URL's rule, the emulator's
control index.
"""

import re
from datetime import UTC, datetime

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from fakeaws.testing import running_emulator
from imports import setup_checks
from imports.models import ApiToken, ImageImport, Membership, Status
from notifications.forms import WebhookForm
from notifications.models import Delivery, Event, Webhook

from .factories import make_import, make_member, valid_payload

MOMENT = datetime(2026, 11, 28, 2, 5, 13, tzinfo=UTC)
WRITTEN = '<time datetime="2026-11-28T02:05:13+00:00">2026-11-28 02:05:13 UTC</time>'
AMI = "ami-0a1b2c3d4e5f60718"


@pytest.fixture
def team_admin(team):
    return make_member("ada", team, Membership.Role.ADMIN)


@pytest.fixture
def admin_client(client, team_admin):
    client.force_login(team_admin)
    return client


def times_in(html):
    """Every time the page writes, as it writes it (not the machine's datetime="...")."""
    shown = re.sub(r'datetime="[^"]*"', "", html)
    return re.findall(r"\d{4}-\d\d-\d\d[ T][\d:]+(?: UTC)?", shown)


def all_written_whole(html):
    times = times_in(html)
    return times and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", t) for t in times)


# -- 2. one way of writing a time ---------------------------------------------------


def test_the_history_writes_its_times_whole_with_utc(user_client, team, user):
    make_import(team, user, created_at=MOMENT)

    html = user_client.get(reverse("imports:history")).content.decode()

    assert WRITTEN in html
    assert times_in(html) == ["2026-11-28 02:05:13 UTC"]
    assert "(UTC)" not in html


def test_the_tokens_page_writes_its_times_whole_with_utc(user_client, team, user):
    token, _ = ApiToken.issue(user=user, team=team, name="ci")
    ApiToken.objects.filter(pk=token.pk).update(created_at=MOMENT, last_used_at=MOMENT)

    html = user_client.get(reverse("imports:tokens")).content.decode()

    assert html.count(WRITTEN) == 2
    assert all_written_whole(html), times_in(html)
    assert "(UTC)" not in html


def test_the_webhooks_write_their_times_whole_with_utc(admin_client, team):
    webhook = Webhook.objects.create(team=team, url="https://hooks.example.com/x")
    Webhook.objects.filter(pk=webhook.pk).update(created_at=MOMENT)
    delivery = Delivery.objects.create(
        channel=Delivery.Channel.WEBHOOK, event=Event.AVAILABLE, team=team, webhook=webhook
    )
    Delivery.objects.filter(pk=delivery.pk).update(updated_at=MOMENT)

    html = admin_client.get(reverse("imports:team")).content.decode()
    webhooks = html.split('id="webhooks"')[1]

    assert f"added {WRITTEN}" in webhooks
    assert f'<td data-label="Time">{WRITTEN}</td>' in webhooks
    assert all_written_whole(webhooks), times_in(webhooks)
    assert "(UTC)" not in webhooks


def test_team_activity_writes_its_times_whole_with_utc(admin_client, team, user):
    ImageImport.submit(team=team, user=user, payload=valid_payload())

    html = admin_client.get(reverse("imports:team_activity")).content.decode()

    assert all_written_whole(html), times_in(html)
    assert "(UTC)" not in html


# -- 5. Team activity: the worker, and what a status event did -----------------------


def test_team_activity_names_the_worker_and_heads_a_status_event_with_its_change(
    admin_client, team, user
):
    image_import, _ = ImageImport.submit(team=team, user=user, payload=valid_payload())
    image_import.claim()  # the worker: no person acted

    html = admin_client.get(reverse("imports:team_activity")).content.decode()

    assert '<span class="muted">the&nbsp;worker</span>' in html
    assert "the&nbsp;portal" not in html and "<em>the portal</em>" not in html
    assert "<strong>Queued &rarr; Submitting</strong>" in html
    assert "Import status or progress" not in html
    assert "<strong>Import submitted</strong>:" in html  # other actions keep their name


def test_a_progress_event_is_headed_with_the_status_it_stayed_in(admin_client, team, user):
    image_import = make_import(team, user, Status.UPLOADING)
    image_import._record(
        action="import.status",
        from_status=Status.UPLOADING,
        to_status=Status.UPLOADING,
        detail="Upload started to s3://bucket/key",
    )

    html = admin_client.get(reverse("imports:team_activity")).content.decode()

    assert "<strong>Uploading: progress</strong>" in html
    assert '<span class="event-detail">Upload started to s3://bucket/key</span>' in html


# -- 3. a search too short to be a prefix -------------------------------------------


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("ami-0a1", "An AMI ID is found whole or from ami- and its first 4 digits; ami-0a1 has 3."),
        ("96c", "A client token is found whole or from its first 4 characters; 96c has 3."),
    ],
)
def test_a_search_too_short_for_a_prefix_says_so(user_client, team, user, query, said):
    make_import(team, user)

    html = user_client.get(reverse("imports:history"), {"q": query}).content.decode()

    assert f"No import matches these filters. {said}" in html


def test_a_search_long_enough_that_finds_nothing_says_only_that(user_client, team, user):
    make_import(team, user)

    html = user_client.get(reverse("imports:history"), {"q": "ami-0a1b"}).content.decode()

    assert "No import matches these filters. <a" in html


def test_a_short_search_is_written_back_escaped(user_client, team, user):
    html = user_client.get(reverse("imports:history"), {"q": "<b>"}).content.decode()

    assert "&lt;b&gt; has 3." in html
    assert "<b> has" not in html


# -- 4. a copy button for each AMI ID -----------------------------------------------


def test_each_ami_id_in_the_history_has_a_copy_button(user_client, team, user):
    make_import(
        team,
        user,
        Status.AVAILABLE,
        payload={"name": "Web"},
        amis=[
            {"region": "us-east-1", "image": AMI},
            {"region": "eu-west-1", "image": "ami-0fedcba9876543210"},
        ],
    )

    html = user_client.get(reverse("imports:history")).content.decode()

    assert f'data-copy="{AMI}" aria-label="Copy AMI ID in us-east-1 of Web"' in html
    assert 'data-copy="ami-0fedcba9876543210" aria-label="Copy AMI ID in eu-west-1 of Web"' in html


# -- 7. small wording ----------------------------------------------------------------


def test_the_task_picker_says_statuses_as_the_portal_does():
    task = {
        "import_task_id": "import-ami-0123456789abcdef0",
        "status": "completed",
        "status_message": "",
        "progress": None,
        "image_id": "ami-0123456789abcdef0",
        "description": "",
        "platform": "Linux",
        "os_version_hint": "",
    }
    html = render_to_string("imports/new.html#task_picker", {"tasks": [task]})

    assert ">Completed · ami-0123456789abcdef0</option>" in html
    assert '<td data-label="Status">Completed</td>' in html


@pytest.mark.parametrize(("days", "said"), [(7, "7 days"), (1, "1 day")])
def test_the_lifecycle_check_says_days_as_people_do(days, said):
    assert setup_checks.in_days(days) == said


def test_the_webhook_url_help_says_what_this_portal_accepts(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    strict = WebhookForm()["url"].help_text
    settings.WEBHOOK_ALLOW_PRIVATE = True
    local = WebhookForm()["url"].help_text

    assert strict.startswith("https only; it must resolve to a public address.")
    assert local.startswith("http or https, to any address, private and local ones too")
    assert "https only" not in local


def test_the_emulators_control_address_lists_its_endpoints():
    with running_emulator(step_seconds=0) as control:
        index = control.get("")

    endpoints = {(e["method"], e["path"]): e["does"] for e in index["endpoints"]}
    assert ("GET", "/_emulator/health") in endpoints
    assert ("POST", "/_emulator/end-image") in endpoints
    assert all(endpoints.values())
