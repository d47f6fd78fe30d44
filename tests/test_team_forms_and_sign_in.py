"""The sign-in page's way forward, the Team page's member form, and a webhook's kind."""

import html
import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from imports.models import Invitation, Membership
from notifications import safehttp
from notifications.models import Webhook

from .factories import make_member


@pytest.fixture
def ada(team):
    return make_member("ada", team, Membership.Role.ADMIN)


@pytest.fixture
def ada_client(client, ada):
    client.force_login(ada)
    return client


def errors_of(response, field_id):
    """The texts listed under a field, unescaped."""
    page = response.content.decode()
    listed = re.search(rf'<ul class="field-errors" id="{field_id}_error">(.*?)</ul>', page, re.S)
    return [html.unescape(item) for item in re.findall(r"<li>(.*?)</li>", listed[1], re.S)]


def input_tag(response, name):
    return re.search(rf'<input[^>]*name="{name}"[^>]*>', response.content.decode())[0]


# -- the sign-in page ------------------------------------------------------------


def test_the_sign_in_page_says_whom_to_ask_for_a_forgotten_password(client, db):
    page = html.unescape(client.get(reverse("login")).content.decode())
    assert (
        "Forgot your password? Ask a portal admin to set a new one; a team admin cannot. "
        "Never set one? Ask your team admin to send your invitation again." in page
    )
    # Under the form, not above it: it is for whoever the form failed.
    assert page.index("Forgot your password?") > page.index("</form>")


def test_a_team_admin_cannot_send_a_member_with_a_password_a_link(ada_client, team):
    """What the sign-in page says: "Send the invitation again" is only for an unused account."""
    grace = make_member("grace", team, Membership.Role.SUBMITTER)
    Invitation.objects.create(user=grace, email="grace@example.com")  # invited, then accepted
    membership = grace.memberships.get()

    response = ada_client.post(
        reverse("imports:resend_invitation"), {"membership": membership.pk}, follow=True
    )

    assert "grace has set a password already: no invitation waits." in html.unescape(
        response.content.decode()
    )
    assert mail.outbox == []


def test_removing_and_adding_a_member_again_sends_no_link_either(ada_client, team):
    grace = make_member("grace", team, Membership.Role.SUBMITTER)
    Invitation.objects.create(user=grace, email="grace@example.com")
    ada_client.post(reverse("imports:remove_member", args=[grace.memberships.get().pk]))

    response = ada_client.post(
        reverse("imports:team"),
        {"action": "add_member", "username": "grace@example.com", "role": "submitter"},
        follow=True,
    )

    assert "grace added." in response.content.decode()
    assert mail.outbox == []
    grace.refresh_from_db()
    assert grace.has_usable_password()  # the password they forgot is still the one


# -- the Team page's "Add or invite a member" ------------------------------------


def add(client, typed, role="submitter"):
    return client.post(
        reverse("imports:team"), {"action": "add_member", "username": typed, "role": role}
    )


def test_an_address_too_long_is_told_the_limit_not_that_no_user_has_it(ada_client):
    response = add(ada_client, "x" * 300 + "@example.com")

    assert response.status_code == 200
    assert errors_of(response, "id_username") == [
        "An e-mail address has at most 254 characters; this one has 312."
    ]
    assert not get_user_model().objects.filter(email__endswith="@example.com").exists()


def test_the_member_field_has_no_maxlength_to_cut_a_paste(ada_client):
    # A browser cuts a paste at maxlength without a word: 254 x's, the
    # "@example.com" gone, were then "No active user is called 'xxx…'".
    response = ada_client.get(reverse("imports:team"))
    assert "maxlength" not in input_tag(response, "username")


def test_an_address_of_254_characters_is_invited(ada_client):
    address = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"
    assert len(address) == 254

    response = add(ada_client, address)

    assert response.status_code == 302
    assert Invitation.objects.get().email == address
    assert len(mail.outbox) == 1


INVISIBLE_MARK = (
    "The domain after the @ holds a character no domain name can (an invisible mark copied "
    "with the address?) or a part too long for one: type it again."
)


@pytest.mark.parametrize(
    "typed, message",
    [
        ("grace hopper@example.com", "An e-mail address has no spaces."),
        ("@example.com", "An e-mail address has a name before the @, as in name@example.com."),
        ("grace@", "An e-mail address has a domain after the @, as in name@example.com."),
        ("grace@@example.com", "An e-mail address has a single @, as in name@example.com."),
        ("grace(hopper)@example.com", "The name before the @ may hold only letters a to z"),
        ("grace..hopper@example.com", "a dot never first, last or next to another."),
        ("grace@example", "The domain after the @ has a dot and an ending, as in example.com."),
        ("grace@exa_mple.com", "The domain after the @ is made of letters, digits and hyphens"),
        ("grace@-example.com", "The domain after the @ is made of letters, digits and hyphens"),
        # Taken by Django's validator, yet no mail can be addressed to them.
        ("grace@example.com\u200e", INVISIBLE_MARK),  # copied with the address
        (f"grace@{'é' * 60}.com", INVISIBLE_MARK),  # a label past 63 once in punycode
    ],
)
def test_text_with_an_at_sign_is_told_the_address_rule_it_broke(ada_client, typed, message):
    response = add(ada_client, typed)

    (said,) = errors_of(response, "id_username")
    assert message in said
    assert "No active user" not in said and "neither a username" not in said
    assert mail.outbox == []


def test_a_username_with_an_at_sign_still_adds_its_account(ada_client, team, django_user_model):
    django_user_model.objects.create_user("grace@", password="x")  # Django allows @ in usernames
    assert add(ada_client, "grace@").status_code == 302
    assert Membership.objects.filter(team=team, user__username="grace@").exists()


def test_a_username_too_long_is_told_the_limit(ada_client):
    response = add(ada_client, "x" * 254)
    assert errors_of(response, "id_username") == [
        "A username has at most 150 characters; this one has 254. To invite someone without "
        "an account, type their e-mail address."
    ]


def test_an_unknown_username_is_still_told_so(ada_client):
    response = add(ada_client, "nobody")
    assert errors_of(response, "id_username") == [
        "No active user is called 'nobody'. To invite someone without an account, type their "
        "e-mail address."
    ]


# -- a team webhook's kind, and its URL's rules ----------------------------------


@pytest.fixture
def no_dns(monkeypatch):
    """A look-up fails the test: the URL's form must be judged before any."""

    def refuse(*args, **kwargs):
        raise AssertionError("DNS looked up before the URL's form was checked")

    monkeypatch.setattr(safehttp.socket, "getaddrinfo", refuse)


def add_webhook(client, url, kind=""):
    return client.post(
        "/team/webhooks/new", {"url": url, "kind": kind, "events": ["import.failed"]}
    )


@pytest.mark.parametrize(
    "url, kind",
    [
        ("https://hooks.slack.com/services/T0/B0/s3cr3t", "slack"),
        ("https://HOOKS.SLACK.COM./services/T0/B0/s3cr3t", "slack"),
        ("https://prod-23.westeurope.logic.azure.com:443/workflows/1/triggers/manual", "teams"),
        (
            "https://default1234.56.environment.api.powerplatform.com:443/powerautomate/"
            "automations/direct/workflows/1/triggers/manual/paths/invoke",
            "teams",
        ),
        ("https://contoso.webhook.office.com/webhookb2/1", "teams"),
        ("https://ci.example.com/hook", "json"),
        ("https://hooks.slack.com.example.com/x", "json"),
        ("https://notlogic.azure.com/x", "json"),
        ("http://169.254.169.254/latest", "json"),
        ("not a url [", "json"),
    ],
)
def test_the_kind_follows_the_url_host(url, kind):
    assert Webhook.kind_for_url(url) == kind


def test_the_kind_select_starts_blank_for_the_url_to_decide(ada_client):
    page = ada_client.get("/team/webhooks/new").content.decode()
    select = re.search(r'<select name="kind".*?</select>', page, re.S)[0]
    assert re.search(r'<option value="" selected>Choose, or let the URL decide</option>', select)
    assert "required" not in select.split(">")[0]
    assert "hooks.slack.com is Slack" in page
    assert "maxlength" not in input_tag(ada_client.get("/team/webhooks/new"), "url")


@pytest.mark.parametrize(
    "url, kind, heard_by",
    [
        ("https://ci.example.com/hook", "json", "your receiver"),
        ("https://hooks.slack.com/services/T0/B0/s3cr3t", "slack", "your Slack channel"),
        ("https://prod-1.westus.logic.azure.com/workflows/1", "teams", "your Microsoft Teams"),
    ],
)
def test_a_webhook_left_to_its_url_is_saved_as_the_kind_its_host_says(
    ada_client, public_dns, url, kind, heard_by
):
    response = add_webhook(ada_client, url)

    assert response.status_code == 302
    assert Webhook.objects.get().kind == kind
    added = ada_client.get("/team/webhooks/added").content.decode()
    assert f"is on: {heard_by}" in added


def test_the_metadata_address_allowed_locally_is_not_said_to_be_slack(
    ada_client, settings, public_dns
):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # as under make run
    add_webhook(ada_client, "http://169.254.169.254/latest")

    assert Webhook.objects.get().kind == "json"
    added = ada_client.get("/team/webhooks/added").content.decode()
    assert "Slack" not in added
    assert 'id="webhook-secret"' in added  # a generic receiver checks signatures


def test_a_kind_the_person_chose_is_kept_whatever_the_url(ada_client, public_dns):
    add_webhook(ada_client, "https://ci.example.com/hook", kind="teams")
    assert Webhook.objects.get().kind == "teams"


def test_a_kind_that_is_none_of_the_choices_says_which_are(ada_client, public_dns):
    response = add_webhook(ada_client, "https://ci.example.com/hook", kind="discord")
    assert errors_of(response, "id_kind") == [
        "A kind is one of Slack (incoming webhook), Microsoft Teams (workflow webhook), "
        "Generic JSON, signed, or “Choose, or let the URL decide”."
    ]
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    "url, message",
    [
        (
            "https://ci.example.com/" + "x" * 2977,
            "A webhook URL has at most 2048 characters; this one has 3000.",
        ),
        (
            "https://ci.example.com/my hook",
            "A URL has no spaces or control characters; write a space in its path as %20.",
        ),
        (
            "https://ci example.com/hook",
            "A URL has no spaces or control characters; write a space in its path as %20.",
        ),
        (
            "https://ci.example.com/a\tb",
            "A URL has no spaces or control characters; write a space in its path as %20.",
        ),
        (
            "https://" + "a" * 64 + ".example.com/hook",
            "Each part of a host name between its dots has 1 to 63 characters.",
        ),
        (
            "https://ci..example.com/hook",
            "Each part of a host name between its dots has 1 to 63 characters.",
        ),
        (
            "https://" + ".".join(["a" * 50] * 5) + "/hook",
            "A host name has at most 253 characters; this one has 254.",
        ),
    ],
)
def test_a_url_is_told_its_length_or_form_rule_before_any_look_up(ada_client, no_dns, url, message):
    response = add_webhook(ada_client, url)

    assert response.status_code == 200
    assert errors_of(response, "id_url") == [message]
    assert not Webhook.objects.exists()


def test_a_webhook_url_of_2048_characters_is_taken(ada_client, public_dns):
    url = "https://ci.example.com/" + "x" * 2025
    assert len(url) == 2048
    assert add_webhook(ada_client, url).status_code == 302
    assert Webhook.objects.get().url == url


def test_a_delivery_to_a_url_with_a_space_is_refused_before_connecting(no_dns):
    # The sender parses as the form does: one set of rules for both.
    with pytest.raises(safehttp.BlockedUrl, match="no spaces"):
        safehttp.post("https://ci.example.com/my hook", b"{}", {}, timeout=1)
