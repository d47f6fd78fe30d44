"""Invitations: a team admin brings in a colleague who has no account yet.

Also the Team page's AWS target form when a role is taken away.
"""

import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlencode, urlsafe_base64_encode

from imports import invitations, teams
from imports.models import Action, AuditEvent, Membership

from .factories import make_member
from .helpers import read_settings

ROLE_ARN = "arn:aws:iam::210987654321:role/Import"


@pytest.fixture(autouse=True)
def no_bad_links_counted():
    cache.clear()  # the pause on wrong links is counted per address in the cache
    yield
    cache.clear()


@pytest.fixture
def ada(team):
    return make_member("ada", team, Membership.Role.ADMIN)


@pytest.fixture
def ada_client(client, ada):
    client.force_login(ada)
    return client


def add(client, typed, role="submitter"):
    return client.post(
        reverse("imports:team"), {"action": "add_member", "username": typed, "role": role}
    )


def link_in(message):
    """The invitation link of an e-mail, from its plain text; the HTML has the same one."""
    (link,) = re.findall(r"http://\S+/invitation\?\S+", message.body)
    html = message.alternatives[0][0]
    assert link.replace("&", "&amp;") in html
    return link


def local(link):
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def invite(client, email="grace@example.com", role="submitter"):
    add(client, email, role)
    return local(link_in(mail.outbox[-1]))


# -- inviting ----------------------------------------------------------------------


def test_an_address_with_no_account_is_invited(ada_client, team):
    response = add(ada_client, "Grace.Hopper@Example.com", "viewer")
    assert response.status_code == 302
    grace = get_user_model().objects.get(email="Grace.Hopper@example.com")
    assert grace.username == "grace.hopper"
    assert not grace.has_usable_password() and grace.is_active and grace.last_login is None
    assert Membership.objects.get(team=team, user=grace).role == "viewer"
    (message,) = mail.outbox
    assert message.to == ["Grace.Hopper@example.com"]
    assert message.subject == "[VM Import Portal] You are invited to team platform"
    assert "ada invites you to team platform" in message.body
    assert "as Viewer" in message.body and "Your username: grace.hopper" in message.body
    assert "for 3 days" in message.body
    assert link_in(message).startswith("http://127.0.0.1:8000/invitation?team=")
    event = AuditEvent.objects.get(action=Action.MEMBER_INVITED)
    assert event.actor.username == "ada" and event.team == team
    assert event.detail == "grace.hopper invited as Viewer; link sent to Grace.Hopper@example.com"
    page = ada_client.get(reverse("imports:team")).content.decode()
    assert "Invitation sent to Grace.Hopper@example.com" in page
    assert "Invited" in page and "Send the invitation again" in page


def test_the_username_made_from_an_address_is_free(ada_client, django_user_model):
    django_user_model.objects.create_user("grace", password="x")
    django_user_model.objects.create_user("Grace-2", password="x")
    add(ada_client, "grace@example.com")
    assert django_user_model.objects.get(email="grace@example.com").username == "grace-3"


def test_an_address_set_on_a_profile_never_brings_its_account_in(
    ada_client, team, django_user_model
):
    # Anyone may type anyone's address on their Profile page: it proves nothing.
    mallory = django_user_model.objects.create_user("mallory", "mallory@example.com", "pw")
    mallory.email = "NewHire@Example.com"
    mallory.save()
    response = add(ada_client, "newhire@example.com", "viewer")
    assert response.status_code == 200
    assert "nobody checks the address a person sets on their Profile page" in (
        response.content.decode()
    )
    assert not Membership.objects.filter(team=team, user=mallory).exists()
    assert mail.outbox == []
    # By username, the account the admin means is added at once.
    add(ada_client, "mallory", "viewer")
    assert Membership.objects.get(team=team, user=mallory).role == "viewer"
    mallory.refresh_from_db()
    assert mallory.check_password("pw") and mail.outbox == []


def test_the_address_an_invitation_went_to_brings_its_account_in(
    ada_client, team, other_team, django_user_model
):
    other_admin = make_member("olga", other_team, Membership.Role.ADMIN)
    elsewhere = Client()
    elsewhere.force_login(other_admin)
    visitor = Client()
    visitor.get(invite(elsewhere))  # the token moves into the session
    visitor.post(
        reverse("imports:accept_invitation"),
        {"new_password1": "tall-ships-7", "new_password2": "tall-ships-7"},
    )
    grace = django_user_model.objects.get(username="grace")
    assert grace.has_usable_password()
    add(ada_client, "Grace@Example.com", "viewer")  # the address its link went to
    assert Membership.objects.get(team=team, user=grace).role == "viewer"
    assert len(mail.outbox) == 1  # the first invitation's only: an account in use gets none


def test_an_account_without_a_password_not_made_by_an_invitation_is_never_sent_a_link(
    ada_client, team, django_user_model
):
    # A portal admin made it in the admin and has not set its password yet.
    dave = django_user_model.objects.create_user("dave", "dave@example.com")
    add(ada_client, "dave")
    assert Membership.objects.filter(team=team, user=dave).exists()
    assert mail.outbox == []
    page = ada_client.get(reverse("imports:team")).content.decode()
    assert "Send the invitation again" not in page


def test_inviting_a_pending_address_again_sends_it_again(ada_client, team):
    first = invite(ada_client)  # as a submitter
    add(ada_client, "GRACE@example.com", "viewer")
    assert Membership.objects.get(team=team, user__username="grace").role == "viewer"
    assert get_user_model().objects.filter(email__iexact="grace@example.com").count() == 1
    assert Membership.objects.filter(team=team, user__username="grace").count() == 1
    assert len(mail.outbox) == 2
    second = local(link_in(mail.outbox[1]))
    assert "was already invited" in ada_client.get(reverse("imports:team")).content.decode()
    anonymous = Client()
    assert "does not work" in follow(anonymous, first)
    assert "Join team platform" in follow(anonymous, second)


def test_a_pending_account_invited_into_a_second_team_gets_that_teams_link(
    ada_client, team, other_team
):
    other_admin = make_member("olga", other_team, Membership.Role.ADMIN)
    invite(ada_client)
    elsewhere = Client()
    elsewhere.force_login(other_admin)
    add(elsewhere, "grace", "viewer")  # by username, as any account
    assert len(mail.outbox) == 2
    assert "team data" in mail.outbox[1].body
    assert "Join team data" in follow(Client(), local(link_in(mail.outbox[1])))


@pytest.mark.parametrize(
    "typed, message",
    [
        ("grace@", "An e-mail address has a domain after the @, as in name@example.com."),
        ("nobody", "To invite someone without an account, type their e-mail address"),
        ("ada", "ada is already in this team."),
        ("ada@example.com", "add that person by their username"),
        ("twins@example.com", "add that person by their username"),
        ("eve", "is deactivated"),
    ],
)
def test_a_wrong_member_says_which_rule_it_broke(
    ada_client, ada, django_user_model, typed, message
):
    ada.email = "ada@example.com"
    ada.save()
    django_user_model.objects.create_user("twin1", "twins@example.com", "x")
    django_user_model.objects.create_user("twin2", "twins@example.com", "x")
    django_user_model.objects.create_user("eve", "eve@example.com", "x", is_active=False)
    response = add(ada_client, typed)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert mail.outbox == []


def test_a_role_a_team_admin_cannot_give_is_refused(ada_client):
    response = add(ada_client, "grace@example.com", "owner")
    assert response.status_code == 200
    assert "A role is one of Viewer, Submitter, Team admin." in response.content.decode()
    assert not get_user_model().objects.filter(email="grace@example.com").exists()


def test_only_a_team_admin_invites(client, user):
    client.force_login(user)  # a submitter
    assert add(client, "grace@example.com").status_code == 403
    assert not get_user_model().objects.filter(email="grace@example.com").exists()
    assert mail.outbox == []


@override_settings(
    EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
    EMAIL_HOST="127.0.0.1",
    EMAIL_PORT=9,  # nothing listens: the connection is refused
    EMAIL_TIMEOUT=2,
)
def test_a_mail_server_that_refuses_leaves_the_invitation_to_send_again(ada_client, team):
    response = add(ada_client, "grace@example.com")
    assert response.status_code == 302
    assert Membership.objects.filter(team=team, user__username="grace").exists()
    page = ada_client.get(reverse("imports:team")).content.decode()
    assert "the e-mail could not be sent" in page
    assert "Send the invitation again" in page


# -- accepting -----------------------------------------------------------------------


def follow(client, path, **data):
    return client.get(path, data, follow=True).content.decode()


def test_the_invited_person_sets_a_password_and_lands_in_the_team(
    ada_client, team, other_team, django_user_model
):
    link = invite(ada_client, role="viewer")
    grace = django_user_model.objects.get(username="grace")
    Membership.objects.create(team=other_team, user=grace)  # "data" comes first by name
    visitor = Client()
    opened = visitor.get(link)
    # The token leaves the address bar for the session, as Django's reset does.
    assert opened.status_code == 302 and opened["Location"] == reverse("imports:accept_invitation")
    page = visitor.get(opened["Location"]).content.decode()
    assert "You are invited to team <strong>platform</strong> as <strong>Viewer</strong>" in page
    assert "Your username is <strong>grace</strong>" in page

    weak = visitor.post(
        reverse("imports:accept_invitation"),
        {"new_password1": "grace", "new_password2": "grace"},
    ).content.decode()
    assert "Your password was not set" in weak
    assert "too similar to the username" in weak or "too short" in weak
    differ = visitor.post(
        reverse("imports:accept_invitation"),
        {"new_password1": "tall-ships-7", "new_password2": "tall-ships-8"},
    ).content.decode()
    assert "didn" in differ and "match" in differ

    done = visitor.post(
        reverse("imports:accept_invitation"),
        {"new_password1": "tall-ships-7", "new_password2": "tall-ships-7"},
    )
    assert done.status_code == 302 and done["Location"] == reverse("imports:history")
    assert visitor.session[SESSION_KEY] == str(grace.pk)
    assert visitor.session[teams.SESSION_KEY] == team.pk  # the inviting team, not the first
    history = visitor.get(done["Location"]).content.decode()
    assert "you are in team platform as Viewer" in history
    grace.refresh_from_db()
    assert grace.check_password("tall-ships-7")
    accepted = AuditEvent.objects.get(action=Action.INVITATION_ACCEPTED)
    assert accepted.actor == grace and accepted.team == team
    page = ada_client.get(reverse("imports:team")).content.decode()
    assert "Send the invitation again" not in page

    # Used: the link says so, to anyone.
    again = follow(Client(), link)
    assert "This invitation link does not work" in again
    assert "Ask your team admin to send you the invitation again" in again


def test_an_expired_link_says_so(ada_client, django_user_model, settings):
    invite(ada_client)
    grace = django_user_model.objects.get(username="grace")
    long_ago = default_token_generator._num_seconds(default_token_generator._now()) - (
        settings.PASSWORD_RESET_TIMEOUT + 60
    )
    token = default_token_generator._make_token_with_timestamp(
        grace, long_ago, default_token_generator.secret
    )
    link = invite_link_with(grace, token)
    assert "This invitation link does not work" in follow(Client(), link)


def invite_link_with(user, token):
    """A link as the e-mail's, with a token of the test's making."""
    query = urlencode(
        {
            "team": user.memberships.get().team_id,
            "uid": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": token,
        }
    )
    return f"{reverse('imports:accept_invitation')}?{query}"


def test_a_link_never_tells_whether_an_account_exists(ada_client, ada, django_user_model):
    invite(ada_client)
    token_of_ada = default_token_generator.make_token(ada)  # a real account's, not pending
    pages = [
        follow(Client(), invite_link_with(ada, token_of_ada)),
        follow(Client(), reverse("imports:accept_invitation") + "?team=1&uid=MTIzNDU&token=x-y"),
        follow(Client(), reverse("imports:accept_invitation") + "?team=-1&uid=%FF%FE&token="),
        follow(Client(), invite_link_with(ada, "x-y").replace("team=", "team=" + "9" * 30)),
        follow(
            Client(),
            reverse("imports:accept_invitation")
            + f"?team=1&uid={urlsafe_base64_encode(b'9' * 30)}&token=x-y",
        ),
        follow(Client(), reverse("imports:accept_invitation")),
    ]
    titles = {re.search(r"<h1>(.*?)</h1>", page).group(1) for page in pages}
    assert titles == {"This invitation link does not work"}


def test_posting_without_an_opened_link_sets_nothing(ada_client, django_user_model):
    invite(ada_client)
    response = Client().post(
        reverse("imports:accept_invitation"),
        {"new_password1": "tall-ships-7", "new_password2": "tall-ships-7"},
    )
    assert response.status_code == 200
    assert "This invitation link does not work" in response.content.decode()
    assert not django_user_model.objects.get(username="grace").has_usable_password()


def test_wrong_links_pause_like_wrong_passwords(ada_client, settings):
    link = invite(ada_client)
    visitor = Client()
    bad = reverse("imports:accept_invitation") + "?team=1&uid=MQ&token=nope"
    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert visitor.get(bad).status_code == 200
    paused = visitor.get(link)  # even a good one, from that address, for a while
    assert paused.status_code == 429
    assert "Too many attempts" in paused.content.decode()


# -- the team admin's side: sending again, removing ----------------------------------


def test_sending_again_gives_a_fresh_link_and_kills_the_old(ada_client, team):
    first = invite(ada_client)
    grace = Membership.objects.get(user__username="grace")
    response = ada_client.post(reverse("imports:resend_invitation"), {"membership": grace.pk})
    assert response.status_code == 302
    assert len(mail.outbox) == 2
    second = local(link_in(mail.outbox[1]))
    assert second != first
    assert "does not work" in follow(Client(), first)
    assert "Join team platform" in follow(Client(), second)
    event = AuditEvent.objects.get(action=Action.INVITATION_RESENT)
    assert event.actor.username == "ada" and event.team == team
    assert event.detail == "grace invitation sent again to grace@example.com"


def test_an_address_stored_before_its_domain_was_checked_is_said_not_a_500(ada_client, team):
    invite(ada_client)
    grace = Membership.objects.get(user__username="grace")
    # Django's validator took it; no mail can be addressed to it (inputs.mail_domain_problem).
    grace.user.email = "grace@example.com\u200e"
    grace.user.save()
    response = ada_client.post(
        reverse("imports:resend_invitation"), {"membership": grace.pk}, follow=True
    )
    assert response.status_code == 200
    assert "the e-mail could not be sent" in response.content.decode()
    assert len(mail.outbox) == 1  # the first invitation's only


def test_sending_again_is_for_invitations_waiting_in_ones_own_team(
    ada_client, team, user, other_team
):
    alice = Membership.objects.get(user=user)  # has a password: nothing to send
    response = ada_client.post(
        reverse("imports:resend_invitation"), {"membership": alice.pk}, follow=True
    )
    assert "has set a password already" in response.content.decode()
    elsewhere = make_member("olga", other_team)
    theirs = Membership.objects.get(user=elsewhere)
    assert (
        ada_client.post(reverse("imports:resend_invitation"), {"membership": theirs.pk}).status_code
        == 404
    )
    for garbage in ("x", "9" * 40, "-1"):
        answer = ada_client.post(reverse("imports:resend_invitation"), {"membership": garbage})
        assert answer.status_code == 302
    assert mail.outbox == []


def test_only_a_team_admin_sends_again(ada_client, client, user):
    invite(ada_client)
    grace = Membership.objects.get(user__username="grace")
    client.force_login(user)
    response = client.post(reverse("imports:resend_invitation"), {"membership": grace.pk})
    assert response.status_code == 403
    assert len(mail.outbox) == 1


def test_removing_an_invited_member_withdraws_the_link(ada_client, team):
    link = invite(ada_client)
    grace = Membership.objects.get(user__username="grace")
    confirm = ada_client.get(reverse("imports:remove_member", args=[grace.pk]))
    assert "The invitation&#x27;s link stops working at once" in confirm.content.decode()
    ada_client.post(reverse("imports:remove_member", args=[grace.pk]))
    assert "does not work" in follow(Client(), link)
    assert AuditEvent.objects.filter(action=Action.MEMBER_REMOVED).exists()


def test_the_team_page_shows_when_an_invitation_went(ada_client, client, user):
    invite(ada_client)
    event = AuditEvent.objects.get(action=Action.MEMBER_INVITED)
    page = ada_client.get(reverse("imports:team")).content.decode()
    assert f'<time datetime="{event.created_at.isoformat()}' in page or "UTC</time>" in page
    assert "<strong>Invited</strong>" in page
    client.force_login(user)  # a submitter sees who is invited, and no button
    theirs = client.get(reverse("imports:team")).content.decode()
    assert "<strong>Invited</strong>" in theirs
    assert "Send the invitation again" not in theirs


def test_removed_from_every_team_and_invited_again_gets_a_link_again(ada_client):
    first = invite(ada_client)
    grace = Membership.objects.get(user__username="grace")
    ada_client.post(reverse("imports:remove_member", args=[grace.pk]))
    assert "does not work" in follow(Client(), first)
    # Typed again, the address names the account the first invitation made:
    # a link goes out, rather than an account nobody can sign in to.
    again = invite(ada_client)
    assert get_user_model().objects.filter(email="grace@example.com").count() == 1
    assert "Join team" in follow(Client(), again)


def test_a_renamed_invited_account_is_still_invited(ada_client):
    invite(ada_client)
    grace = get_user_model().objects.get(username="grace")
    grace.username = "ghopper"  # a superuser renames it in the admin
    grace.save()
    page = ada_client.get(reverse("imports:team")).content.decode()
    assert "<strong>Invited</strong>" in page
    member = Membership.objects.get(user=grace)
    ada_client.post(reverse("imports:resend_invitation"), {"membership": member.pk})
    assert mail.outbox[-1].to == ["grace@example.com"]


def test_invitations_are_the_teams_member_activity(ada_client):
    invite(ada_client)
    page = ada_client.get(reverse("imports:team_activity"), {"kind": "members"})
    assert "grace invited as Submitter" in page.content.decode()


# -- how long an invitation's link works ---------------------------------------------


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


@pytest.mark.parametrize("value", ["0", "-1", "59"])
def test_a_link_lifetime_under_a_minute_stops_the_start(monkeypatch, value):
    monkeypatch.setenv("PASSWORD_RESET_TIMEOUT", value)
    refusal = f"PASSWORD_RESET_TIMEOUT must be 60 seconds or more, not {value}:"
    with pytest.raises(ImproperlyConfigured, match=refusal):
        read_settings()


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (259200, "3 days"),
        (86400, "1 day"),
        (36 * 3600, "36 hours"),
        (3600, "1 hour"),
        (90 * 60, "90 minutes"),
        (61, "61 seconds"),
    ],
)
def test_the_link_s_lifetime_is_said_in_the_largest_unit_that_counts_it_exactly(
    settings, seconds, words
):
    settings.PASSWORD_RESET_TIMEOUT = seconds
    assert invitations.link_lifetime() == words


@override_settings(PASSWORD_RESET_TIMEOUT=12 * 60 * 60)
def test_the_team_page_and_the_invitation_say_the_lifetime_set(ada_client, team):
    page = ada_client.get(reverse("imports:team")).content.decode()
    assert "The link works once, for 12 hours." in page

    add(ada_client, "grace@example.com", role="viewer")

    (message,) = mail.outbox
    assert "for 12 hours" in message.body
    assert "for 12 hours" in message.alternatives[0][0]


# -- taking a role away on the Team page ----------------------------------------------


def set_target(client, **values):
    data = {"action": "target", "vm_import_role": "vmimport", **values}
    return client.post(reverse("imports:team"), data, follow=True)


def test_clearing_the_role_clears_the_account_it_filled_in(ada_client, team):
    set_target(ada_client, aws_role_arn=ROLE_ARN)
    team.refresh_from_db()
    assert team.aws_account_id == "210987654321"
    # The page shows the account the role filled in; the person clears only the role.
    page = set_target(ada_client, aws_account_id="210987654321", aws_role_arn="")
    assert "The account ID was cleared with the role it came from." in page.content.decode()
    team.refresh_from_db()
    assert (team.aws_account_id, team.aws_role_arn) == ("", "")


def test_an_account_without_a_role_is_refused_where_the_person_acts(ada_client, team):
    set_target(ada_client, aws_role_arn=ROLE_ARN)
    response = set_target(ada_client, aws_account_id="111122223333", aws_role_arn="")
    page = response.content.decode()
    assert "Nothing was saved" in page
    summary = page[page.index("Nothing was saved") : page.index('for="id_aws_region"')]
    assert "Role to assume in account 111122223333, or clear the Account ID" in summary
    team.refresh_from_db()
    assert (team.aws_account_id, team.aws_role_arn) == ("210987654321", ROLE_ARN)


def test_under_make_run_the_invitation_is_a_file_a_person_can_follow(
    ada_client, tmp_path, settings
):
    # make run's default: each mail a file under $DATA_DIR/mail; the link must be whole.
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    add(ada_client, "grace@example.com")
    (written,) = tmp_path.iterdir()
    text = written.read_text()
    (link,) = re.findall(r"^http://127\.0\.0\.1:8000/invitation\?\S+$", text, re.MULTILINE)
    assert "Join team platform" in follow(Client(), local(link))
