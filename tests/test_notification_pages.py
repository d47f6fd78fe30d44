"""The profile page and the Team page's webhooks: who may do what, and the audit."""

import html
import re

import pytest

from imports.models import Action, AuditEvent, Membership, Status
from notifications.models import Delivery, Event, NotificationSettings, Webhook

from .factories import make_import, make_member


@pytest.fixture
def admin(team):
    return make_member("ada", team, Membership.Role.ADMIN)


@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client


def test_the_profile_turns_the_email_off_and_on_audited(user_client, user):
    page = user_client.get("/profile")
    assert page.status_code == 200
    assert b"no e-mail address" in page.content
    assert "checked" in page.content.decode()  # on by default

    response = user_client.post("/profile", {"email": ""})

    assert response.status_code == 302
    assert NotificationSettings.for_user(user).email_on_end is False
    event = AuditEvent.objects.get(action=Action.NOTIFICATIONS_CHANGED)
    assert event.actor == user and "off" in event.detail
    user_client.post("/profile", {"email": "", "email_on_end": "on"})
    assert NotificationSettings.for_user(user).email_on_end is True


def test_a_person_sets_their_own_email_address_audited(user_client, user):
    response = user_client.post("/profile", {"email": "not an address", "email_on_end": "on"})
    assert b"Enter a valid email address." in response.content

    user_client.post("/profile", {"email": "alice@example.com", "email_on_end": "on"})

    user.refresh_from_db()
    assert user.email == "alice@example.com"
    event = AuditEvent.objects.get(action=Action.NOTIFICATIONS_CHANGED)
    assert event.detail == "E-mail address of alice: (none) -> alice@example.com"
    assert b"alice@example.com" in user_client.get("/profile").content


@pytest.mark.parametrize(
    "address, message",
    [
        ("alice@example.com\u200e", "The domain after the @ holds a character no domain name"),
        (f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 63}.com", "at most 254 characters"),
    ],
)
def test_an_address_no_mail_can_go_to_is_refused_with_its_rule(user_client, user, address, message):
    response = user_client.post("/profile", {"email": address, "email_on_end": "on"})
    assert response.status_code == 200
    assert message in response.content.decode()
    user.refresh_from_db()
    assert user.email == ""


def test_the_profile_needs_a_sign_in(client):
    assert client.get("/profile")["Location"].startswith("/accounts/login/")


def add_json_webhook(client):
    return client.post(
        "/team/webhooks/new",
        {
            "url": "https://hooks.example.com/receive/s3cr3t-path",
            "kind": "json",
            "events": ["import.available", "import.failed"],
        },
    )


def test_a_team_admin_adds_a_webhook_and_sees_its_secret_once(
    admin_client, team, public_dns, caplog
):
    response = add_json_webhook(admin_client)

    assert response.status_code == 302
    assert response["Location"] == "/team/webhooks/added"
    assert response["Cache-Control"] == "no-store"
    assert response.wsgi_request.sensitive_post_parameters == ("url",)  # not in error reports
    webhook = Webhook.objects.get()
    assert webhook.secret not in response.content.decode()
    assert webhook.events == ["import.available", "import.failed"]
    added = admin_client.get("/team/webhooks/added")
    assert added.status_code == 200
    assert added["Cache-Control"] == "no-store"
    assert added.content.decode().count(f'id="webhook-secret">{webhook.secret}<') == 1
    assert webhook.secret not in str(dict(admin_client.session))  # only its key crossed
    team_page = admin_client.get("/team").content.decode()
    assert "<title>Team platform · VM Import Portal</title>" in team_page
    assert team_page.count('id="webhooks"') == 1
    assert "https://hooks.example.com/…" in team_page
    assert webhook.secret not in team_page and "s3cr3t-path" not in team_page
    event = AuditEvent.objects.get(action=Action.WEBHOOK_ADDED)
    assert "s3cr3t-path" not in event.detail and webhook.secret not in event.detail
    assert webhook.secret not in caplog.text


def test_reloading_the_added_page_neither_adds_again_nor_shows_the_secret_again(
    admin_client, team, public_dns
):
    added = add_json_webhook(admin_client)
    first = admin_client.get(added["Location"])
    webhook = Webhook.objects.get()
    assert webhook.secret in first.content.decode()

    reload = admin_client.get(added["Location"])

    assert reload.status_code == 302 and reload["Location"] == "/team"
    assert reload["Cache-Control"] == "no-store"
    assert webhook.secret not in reload.content.decode()
    assert Webhook.objects.count() == 1
    assert AuditEvent.objects.filter(action=Action.WEBHOOK_ADDED).count() == 1


def test_the_added_page_without_a_webhook_just_added_goes_to_the_team_page(admin_client, team):
    Webhook.objects.create(team=team, url="https://hooks.example.com/x")
    response = admin_client.get("/team/webhooks/added")
    assert response.status_code == 302 and response["Location"] == "/team"


def test_the_added_page_never_shows_another_teams_webhook(admin_client, other_team):
    webhook = Webhook.objects.create(team=other_team, url="https://hooks.example.com/x")
    session = admin_client.session
    session["added_webhook"] = webhook.pk
    session.save()

    response = admin_client.get("/team/webhooks/added")

    assert response.status_code == 302 and response["Location"] == "/team"
    assert webhook.secret not in response.content.decode()


def test_the_added_page_is_for_team_admins_signed_in_and_get_only(client, admin, user):
    assert client.get("/team/webhooks/added")["Location"].startswith("/accounts/login/")
    client.force_login(user)
    assert client.get("/team/webhooks/added").status_code == 403
    client.force_login(admin)
    assert client.post("/team/webhooks/added").status_code == 405


def test_a_private_or_plain_http_url_is_refused_with_the_reason(admin_client):
    response = admin_client.post(
        "/team/webhooks/new", {"url": "https://169.254.169.254/x", "kind": "slack"}
    )
    assert response.status_code == 200
    assert b"private, loopback, link-local" in response.content
    response = admin_client.post(
        "/team/webhooks/new", {"url": "http://hooks.example.com/x", "kind": "slack"}
    )
    assert b"The URL must start with https://; this one has http://." in response.content
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://user:pw@example.com/x", "The URL must start with https://; this one has ftp://."),
        ("hooks.example.com/x", "The URL must start with https://; this one has no scheme."),
    ],
)
def test_a_url_of_another_scheme_is_told_the_one_it_needs(admin_client, url, message):
    response = admin_client.post("/team/webhooks/new", {"url": url, "kind": "slack"})
    assert message in html.unescape(response.content.decode())
    assert not Webhook.objects.exists()


def described_ids(page, element_id):
    """The ids an element's aria-describedby names, and whether each exists in the page."""
    tag = re.search(rf'<[^>]*id="{element_id}"[^>]*>', page)[0]
    ids = re.search(r'aria-describedby="([^"]*)"', tag)[1].split()
    return {described: f'id="{described}"' in page for described in ids}


def test_a_refused_webhook_url_is_read_out_with_the_field(admin_client):
    # A screen reader reads a field's help and errors by the ids its
    # aria-describedby names: each must be in the page.
    page = admin_client.post("/team/webhooks/new", {"url": "ftp://x", "kind": "slack"})
    page = page.content.decode()
    assert described_ids(page, "id_url") == {"id_url_helptext": True, "id_url_error": True}
    assert "<li>The URL must start with https://" in page.split('id="id_url_error"')[1][:200]
    # The events are a group of checkboxes: a fieldset, named by its legend.
    assert re.search(r'<fieldset class="field choices[^>]*>\s*<legend>Events</legend>', page)


def test_a_refused_email_address_is_read_out_with_the_field(user_client):
    page = user_client.post("/profile", {"email": "not-an-email"}).content.decode()
    assert described_ids(page, "id_email") == {"id_email_helptext": True, "id_email_error": True}


def test_with_private_addresses_allowed_plain_http_is_named_too(admin_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    response = admin_client.post("/team/webhooks/new", {"url": "ftp://x/y", "kind": "slack"})
    assert "must start with https:// or http://; this one has ftp://." in response.content.decode()


def test_only_a_team_admin_manages_webhooks(user_client, team):
    webhook = Webhook.objects.create(team=team, url="https://hooks.example.com/x", events=[])
    assert user_client.get("/team/webhooks/new").status_code == 403
    assert user_client.post(f"/team/webhooks/{webhook.pk}/remove").status_code == 403
    assert "Webhooks" not in user_client.get("/team").content.decode()


def test_another_teams_webhook_is_not_found(admin_client, other_team):
    webhook = Webhook.objects.create(team=other_team, url="https://hooks.example.com/x")
    assert admin_client.post(f"/team/webhooks/{webhook.pk}/remove").status_code == 404
    assert admin_client.post(f"/team/webhooks/{webhook.pk}/test").status_code == 404
    assert Webhook.objects.filter(pk=webhook.pk).exists()


def test_events_resume_test_and_remove_are_audited(
    admin_client, admin, team, django_capture_on_commit_callbacks, monkeypatch
):
    from notifications import tasks

    queued = []
    monkeypatch.setattr(tasks, "queue", queued.extend)
    webhook = Webhook.add(
        team=team, url="https://hooks.example.com/x", kind="slack", events=[], by=admin
    )
    Webhook.objects.filter(pk=webhook.pk).update(paused_at="2026-01-01T00:00Z", failures=5)

    admin_client.post(f"/team/webhooks/{webhook.pk}", {"events": ["import.failed"]})
    admin_client.post(f"/team/webhooks/{webhook.pk}", {"resume": "1"})
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/team/webhooks/{webhook.pk}/test")
    webhook.refresh_from_db()
    assert webhook.events == ["import.failed"] and not webhook.is_paused
    test = Delivery.objects.get(event=Event.TEST)
    assert queued == [test.pk]
    admin_client.post(f"/team/webhooks/{webhook.pk}/remove")

    assert not Webhook.objects.exists()
    actions = list(
        AuditEvent.objects.filter(action__startswith="webhook.").values_list("action", flat=True)
    )
    assert actions == [
        Action.WEBHOOK_ADDED,
        Action.WEBHOOK_CHANGED,
        Action.WEBHOOK_CHANGED,
        Action.WEBHOOK_TESTED,
        Action.WEBHOOK_REMOVED,
    ]


def test_the_team_page_lists_the_last_deliveries_and_redelivers_one(
    admin_client, admin, team, user, django_capture_on_commit_callbacks, monkeypatch
):
    from notifications import tasks

    queued = []
    monkeypatch.setattr(tasks, "queue", queued.extend)
    webhook = Webhook.add(
        team=team,
        url="https://hooks.example.com/x",
        kind="json",
        events=["import.failed"],
        by=admin,
    )
    make_import(team, user, Status.IMPORTING).mark_failed(code="X", message="broken")
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(
        status="failed", status_code=503, error="Answered 503: busy", attempts=8
    )

    page = admin_client.get("/team").content.decode()
    assert f'id="delivery-{delivery.pk}"' in page
    assert "503" in page and "Answered 503: busy" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/team/deliveries/{delivery.pk}/redeliver")

    assert response.status_code == 302
    again = Delivery.objects.exclude(pk=delivery.pk).get()
    assert again.redelivery_of == delivery and again.webhook == webhook
    assert again.payload == delivery.payload
    assert again.idempotency_key != delivery.idempotency_key
    assert again.status == Delivery.Status.PENDING
    assert queued[-1] == again.pk
    event = AuditEvent.objects.get(action=Action.WEBHOOK_REDELIVERED)
    assert event.actor == admin and str(delivery.idempotency_key) in event.detail


def test_a_delivery_still_being_tried_is_not_redelivered_beside_itself(
    admin_client, admin, team, user
):
    # A second delivery with a new ID while the first is retried: the receiver gets two.
    url = "https://hooks.example.com/x"
    Webhook.add(team=team, url=url, kind="json", events=["import.failed"], by=admin)
    make_import(team, user, Status.IMPORTING).mark_failed(code="X", message="broken")
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(status="pending", attempts=2)

    page = admin_client.get("/team").content.decode()
    assert "Next try" in page and f"/team/deliveries/{delivery.pk}/redeliver" not in page
    response = admin_client.post(f"/team/deliveries/{delivery.pk}/redeliver", follow=True)
    assert "still being tried (attempt 2)" in response.content.decode()
    assert Delivery.objects.count() == 1


def messages_of(response):
    return [html.unescape(m) for m in re.findall(r'class="message[^"]*"[^>]*>(.*?)<', response)]


def test_the_added_page_explains_how_to_check_a_signature_in_place(admin_client, team, public_dns):
    add_json_webhook(admin_client)
    page = html.unescape(admin_client.get("/team/webhooks/added").content.decode())

    assert "The webhook to <code>hooks.example.com</code> is on" in page
    assert "Generic JSON, signed webhook" not in page and "README" not in page
    steps = page.split('id="verify-title"')[1]
    for needed in (
        "X-Portal-Timestamp",
        "X-Portal-Signature",
        "sha256=",
        "HMAC-SHA256",
        "<code><timestamp>.<body></code>",
        "before parsing its JSON",
        "constant-time",
        "hmac.compare_digest",
        "five minutes",
    ):
        assert needed in steps, needed


def test_a_slack_webhook_added_says_where_it_goes_and_has_no_secret_to_check(
    admin_client, team, public_dns
):
    admin_client.post(
        "/team/webhooks/new",
        {
            "url": "https://hooks.slack.com/services/T0/B0/s3cr3t",
            "kind": "slack",
            "events": ["import.failed"],
        },
    )
    page = admin_client.get("/team/webhooks/added").content.decode()
    assert "The webhook to <code>hooks.slack.com</code> is on: your Slack channel" in page
    assert "s3cr3t" not in page and "verify-title" not in page


def test_the_webhook_form_says_what_upload_finished_is(admin_client):
    page = html.unescape(admin_client.get("/team/webhooks/new").content.decode())
    assert "once disk-file imports exist" not in page
    assert (
        "“Upload finished”: a disk file sent from the browser has reached the team's bucket "
        "and its import is queued." in page
    )
    assert 'type="url"' in page


def test_webhook_messages_name_the_webhook_in_plain_words(
    admin_client, admin, team, user, monkeypatch
):
    from notifications import tasks

    monkeypatch.setattr(tasks, "queue", lambda ids: None)
    webhook = Webhook.add(
        team=team, url="https://hooks.example.com/x", kind="json", events=[], by=admin
    )
    Webhook.objects.filter(pk=webhook.pk).update(paused_at="2026-01-01T00:00Z", failures=5)

    def said(url, data):
        return messages_of(admin_client.post(url, data, follow=True).content.decode())

    base = f"/team/webhooks/{webhook.pk}"
    assert said(base, {"resume": "1"}) == ["The webhook to hooks.example.com is on again."]
    assert said(base, {"events": ["import.available", "import.failed", "import.cancelled"]}) == [
        "Saved: the webhook to hooks.example.com now sends “Import available”, "
        "“Import failed” and “Import cancelled”."
    ]
    assert said(base, {"events": ["import.upload_finished"]}) == [
        "Saved: the webhook to hooks.example.com now sends “Upload finished” only."
    ]
    assert said(base, {}) == [
        "Saved: the webhook to hooks.example.com now sends nothing until you choose an event."
    ]
    assert said(f"{base}/test", {}) == [
        "Test message queued for hooks.example.com: "
        "its result shows under Last deliveries in a moment."
    ]
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(status="delivered")  # a test message sent
    assert said(f"/team/deliveries/{delivery.pk}/redeliver", {}) == [
        "Delivery queued again: “Test message” goes to hooks.example.com once more."
    ]
    assert said(f"{base}/remove", {}) == [
        "The webhook to hooks.example.com is removed: nothing more is sent."
    ]


def test_the_profile_asks_for_the_address_in_an_email_field(user_client):
    page = user_client.get("/profile").content.decode()
    assert re.search(r'<input type="email" name="email"[^>]*id="id_email"', page)


# -- two team admins at once: the other's change landed first ------------------------
# What each request finds at its write, played in order: its lookup passed,
# then another admin removed the row (or, for the profile, saved one).


@pytest.fixture
def removed_webhook(team, admin):
    webhook = Webhook.add(
        team=team, url="https://hooks.example.com/a", kind=Webhook.Kind.JSON, events=[], by=admin
    )
    Webhook.objects.get(pk=webhook.pk).remove(by=admin)  # the other admin
    return webhook  # as this request still holds it


def test_a_webhook_removed_meanwhile_is_neither_changed_tested_nor_redelivered(
    removed_webhook, admin
):
    with pytest.raises(Webhook.DoesNotExist):
        removed_webhook.change_events([Event.AVAILABLE], by=admin)
    with pytest.raises(Webhook.DoesNotExist):
        removed_webhook.send_test(by=admin)
    earlier = Delivery(
        channel=Delivery.Channel.WEBHOOK, event=Event.TEST, webhook=removed_webhook, payload={}
    )
    with pytest.raises(Webhook.DoesNotExist):
        earlier.redeliver(by=admin)
    assert not Delivery.objects.exists()
    done = set(AuditEvent.objects.values_list("action", flat=True))
    assert done == {Action.WEBHOOK_ADDED, Action.WEBHOOK_REMOVED}


def test_a_role_given_to_someone_removed_meanwhile_raises_and_records_nothing(team, admin, user):
    member = Membership.objects.get(team=team, user=user)
    Membership.objects.get(pk=member.pk).remove(by=admin)  # the other admin
    with pytest.raises(Membership.DoesNotExist):
        member.change_role(Membership.Role.ADMIN, by=admin)
    assert not AuditEvent.objects.filter(action=Action.ROLE_CHANGED).exists()


def test_a_profile_saved_twice_at_once_keeps_one_row(user):
    choices = NotificationSettings.for_user(user)  # no row yet: the defaults
    NotificationSettings.objects.create(user=user, email_on_end=True)  # the double-click's first
    assert choices.change(email_on_end=False, by=user)
    assert NotificationSettings.objects.get(user=user).email_on_end is False
