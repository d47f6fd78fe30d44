"""The Team activity page: a team's own audit, for its admins (/team/activity).

Its pager is the one the history uses.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from imports import teams
from imports.models import Action, ApiToken, AuditEvent, ImageImport, Membership, Team
from imports.paging import encode_cursor

from .factories import make_member, valid_payload

URL = reverse("imports:team_activity")
HTMX = {"HX-Request": "true"}


@pytest.fixture
def team_admin(team):
    return make_member("ada", team, Membership.Role.ADMIN)


@pytest.fixture
def admin_client(client, team_admin):
    client.force_login(team_admin)
    return client


def actions_shown(response):
    return [event.action for event in response.context["page"]]


def event_at(minutes_ago, team, action=Action.MEMBER_ADDED, **fields):
    """An event written directly, at a moment of the test's choosing."""
    event = AuditEvent.new(action, team=team, **fields)
    event.created_at = timezone.now() - timedelta(minutes=minutes_ago)
    event.save()
    return event


# -- what it shows ------------------------------------------------------------------


def test_a_team_admin_sees_who_did_what_when_and_from_where_newest_first(admin_client, team, user):
    admin_client.post(
        reverse("imports:team"),
        {"action": "add_member", "username": "carol", "role": "viewer"},
    )  # no such person: refused, and nothing recorded
    make_member("carol", Team.objects.create(name="elsewhere"))
    admin_client.post(
        reverse("imports:team"),
        {"action": "add_member", "username": "carol", "role": "viewer"},
        REMOTE_ADDR="198.51.100.7",
    )
    member = team.memberships.get(user__username="carol")
    admin_client.post(
        reverse("imports:change_member"),
        {"membership": member.pk, "role": "submitter"},
        REMOTE_ADDR="198.51.100.7",
    )

    response = admin_client.get(URL)

    assert response.status_code == 200
    assert actions_shown(response) == [Action.ROLE_CHANGED, Action.MEMBER_ADDED]
    row = response.content.decode().split(f'id="event-{response.context["page"].items[0].pk}"')[1]
    row = row.split("</tr>")[0]
    assert "<strong>Role changed</strong>" in row
    assert "carol: Viewer -&gt; Submitter" in row
    assert ">ada<" in row
    assert "<code>198.51.100.7</code>" in row
    assert " UTC</time>" in row


def test_an_import_event_links_to_the_import_and_says_its_status_change(admin_client, team, user):
    image_import, _ = ImageImport.submit(team=team, user=user, payload=valid_payload())
    image_import.claim()  # the worker: no person acted

    content = admin_client.get(URL).content.decode()

    link = f'<a href="{reverse("imports:detail", args=[image_import.pk])}">Web server base</a>'
    assert content.count(link) == 2
    assert "<strong>Import submitted</strong>:\n" in content
    assert "Queued &rarr; Submitting" in content
    assert '<span class="muted">the&nbsp;worker</span>' in content
    assert ">alice<" in content


def test_a_cancel_is_said_as_cancelled(admin_client, team, user):
    image_import, _ = ImageImport.submit(team=team, user=user, payload=valid_payload())
    image_import.withdraw(user=user)

    content = admin_client.get(URL).content.decode()

    assert "<strong>Import cancelled</strong>:" in content
    assert "Queued &rarr; Cancelled" in content


def test_an_event_with_no_address_and_no_import_says_so(admin_client, team, team_admin):
    ApiToken.issue(user=team_admin, team=team, name="ci")
    content = admin_client.get(URL).content.decode()
    assert "API token &#x27;ci&#x27; created for ada" in content
    no_address = '<span class="muted">&mdash;</span></td>'
    assert f'<td class="cell-from cell-none" data-label="From">{no_address}' in content


# -- only the team's own ----------------------------------------------------------------


def test_never_another_teams_events_nor_sign_ins_nor_profile_changes(
    client, team, other_team, team_admin, outsider
):
    make_member("erin", other_team, Membership.Role.ADMIN)
    other_team.change_target({**target_of(other_team), "aws_region": "eu-west-1"}, by=outsider)
    ImageImport.submit(team=other_team, user=outsider, payload=valid_payload())
    client.post(reverse("login"), {"username": "ada", "password": "wrong"})
    client.post(reverse("login"), {"username": "ada", "password": "pw-ada"})
    client.post(reverse("notifications:profile"), {"email": "ada@example.com"})
    assert AuditEvent.objects.filter(team=None).count() >= 2  # what must not show

    response = client.get(URL)

    assert response.status_code == 200
    assert actions_shown(response) == []
    assert "Nothing has happened in the team yet." in response.content.decode()


def target_of(team):
    return {name: getattr(team, name) for name in Team.TARGET_FIELDS}


@pytest.mark.parametrize("role", [Membership.Role.VIEWER, Membership.Role.SUBMITTER])
def test_viewers_and_submitters_get_what_the_teams_admin_actions_give_them(
    client, team, team_admin, role
):
    person = make_member("sam", team, role)
    client.force_login(person)
    remove = reverse("imports:remove_member", args=[team_admin.memberships.get().pk])
    assert client.get(remove).status_code == 403

    response = client.get(URL)

    assert response.status_code == 403
    assert response.templates[0].name == "403.html"
    assert "Only a team admin can see the team&#x27;s activity." in response.content.decode()


def test_the_team_page_links_to_the_activity_for_its_admins_only(admin_client, client, user):
    assert f'href="{URL}"' in admin_client.get(reverse("imports:team")).content.decode()
    client.force_login(user)
    assert f'href="{URL}"' not in client.get(reverse("imports:team")).content.decode()


def test_someone_in_no_team_wrong_method_and_anonymous(client, admin_client, django_user_model):
    assert admin_client.post(URL).status_code == 405
    client.logout()
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    client.force_login(django_user_model.objects.create_user("loner"))
    assert client.get(URL).status_code == 404


def test_the_team_switcher_changes_whose_activity_is_shown(
    client, team, other_team, team_admin, outsider
):
    Membership.objects.create(user=team_admin, team=other_team, role=Membership.Role.ADMIN)
    team.change_target({**target_of(team), "aws_region": "us-west-2"}, by=team_admin)
    other_team.add_member(
        make_member("frank", Team.objects.create(name="x")), "viewer", by=outsider
    )
    client.force_login(team_admin)

    client.post(reverse("imports:switch_team"), {"team": team.pk})
    assert actions_shown(client.get(URL)) == [Action.TARGET_CHANGED]
    client.post(reverse("imports:switch_team"), {"team": other_team.pk, "next": URL})
    response = client.get(URL)
    assert actions_shown(response) == [Action.MEMBER_ADDED]
    assert "team data" in response.content.decode()

    Membership.objects.filter(user=team_admin, team=other_team).update(role="viewer")
    assert client.get(URL).status_code == 403  # an admin in one team only


def test_a_superuser_sees_the_team_acted_for(client, team, team_admin, django_user_model):
    team.change_target({**target_of(team), "aws_region": "us-west-2"}, by=team_admin)
    client.force_login(django_user_model.objects.create_superuser("root", password="pw"))
    assert actions_shown(client.get(URL)) == [Action.TARGET_CHANGED]


# -- kinds ---------------------------------------------------------------------------------


def test_every_action_a_team_has_is_of_exactly_one_kind():
    kinds = [kind.actions for kind in teams.ACTIVITY_KINDS.values()]
    personal = {Action.SIGNED_IN, Action.SIGN_IN_FAILED, Action.NOTIFICATIONS_CHANGED}
    for action in set(Action) - personal:
        assert sum(action in actions for actions in kinds) == 1, action
    assert not personal & {action for actions in kinds for action in actions}


@pytest.mark.parametrize(
    "kind, action",
    [
        ("imports", Action.SUBMITTED),
        ("members", Action.MEMBER_REMOVED),
        ("target", Action.TARGET_CHANGED),
        ("tokens", Action.TOKEN_REVOKED),
        ("webhooks", Action.WEBHOOK_PAUSED),
    ],
)
def test_the_kind_narrows_the_list(admin_client, team, kind, action):
    for minutes, each in enumerate(
        [Action.SUBMITTED, Action.MEMBER_REMOVED, Action.TARGET_CHANGED]
        + [Action.TOKEN_REVOKED, Action.WEBHOOK_PAUSED]
    ):
        event_at(minutes, team, each)
    response = admin_client.get(URL, {"kind": kind})
    assert actions_shown(response) == [action]
    assert f'<option value="{kind}" selected>' in response.content.decode()


def test_a_kind_with_nothing_in_it_says_so_and_offers_everything(admin_client, team):
    event_at(1, team, Action.SUBMITTED)
    content = admin_client.get(URL, {"kind": "webhooks"}).content.decode()
    assert "Nothing under Webhooks has happened in the team yet." in content
    assert f'<a href="{URL}">Show everything</a>' in content


@pytest.mark.parametrize("kind", ["import", "IMPORTS", "x" * 500])
def test_a_kind_the_page_does_not_know_is_left_out_as_on_the_history(admin_client, team, kind):
    event_at(0, team, Action.SUBMITTED)
    event_at(1, team, Action.TARGET_CHANGED)
    response = admin_client.get(URL, {"kind": kind})
    assert response.status_code == 200
    assert actions_shown(response) == [Action.SUBMITTED, Action.TARGET_CHANGED]
    assert response.context["kind"] == ""


def test_the_kind_filter_answers_the_table_alone_for_htmx(admin_client, team):
    event_at(1, team, Action.TARGET_CHANGED)
    response = admin_client.get(
        URL, {"kind": "target"}, headers={**HTMX, "HX-Target": "activity-table"}
    )
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="activity-table">')
    assert "<header" not in content and "AWS target changed" in content


# -- a kind the page does not know ---------------------------------------------------

STALE_KIND = '<b id="stale">imports</b>'


def one_event_of_each_kind(team):
    """An event of every activity kind; their actions."""
    actions = [kind.actions[0] for kind in teams.ACTIVITY_KINDS.values()]
    for action in actions:
        AuditEvent.new(action, team=team).save()
    return actions


def test_a_stale_kind_shows_everything_with_the_select_on_everything(admin_client, team):
    every_kind = one_event_of_each_kind(team)

    response = admin_client.get(URL, {"kind": STALE_KIND})

    content = response.content.decode()
    assert response.status_code == 200
    assert sorted(actions_shown(response)) == sorted(every_kind)
    assert '<option value="">Everything</option>' in content
    assert " selected>" not in content
    assert f"{len(every_kind)} events" in content  # not "matching events"
    assert 'id="stale"' not in content and "&lt;b id=&quot;stale" not in content


def test_a_stale_kind_is_not_kept_in_the_pager_links(admin_client, team, settings):
    settings.HISTORY_PAGE_SIZE = 1
    one_event_of_each_kind(team)

    response = admin_client.get(
        URL, {"kind": "nope"}, headers={**HTMX, "HX-Target": "activity-table"}
    )

    content = response.content.decode()
    assert content.lstrip().startswith('<div id="activity-table">')
    assert f'<a href="?older={response.context["page"].older}">Older &rarr;</a>' in content
    assert "nope" not in content


# -- pages ---------------------------------------------------------------------------------


def test_pages_follow_a_cursor_both_ways_and_keep_the_kind(admin_client, team, settings):
    settings.HISTORY_PAGE_SIZE = 2
    members = [event_at(minutes, team, detail=f"m{minutes}") for minutes in range(5)]
    event_at(0, team, Action.SUBMITTED)  # another kind, the newest of all

    first = admin_client.get(URL, {"kind": "members"})
    assert [e.detail for e in first.context["page"]] == ["m0", "m1"]
    assert first.context["page"].count_words == "5"
    older = first.context["page"].older
    assert f"?kind=members&amp;older={older}" in first.content.decode()

    second = admin_client.get(URL, {"kind": "members", "older": older})
    assert [e.detail for e in second.context["page"]] == ["m2", "m3"]
    back = admin_client.get(URL, {"kind": "members", "newer": second.context["page"].newer})
    assert [e.detail for e in back.context["page"]] == ["m0", "m1"]
    assert len(members) == 5


def test_a_cursor_past_the_teams_oldest_event_offers_the_first_page(admin_client, team):
    # As a cursor from another team's list does, kept in the address across a switch.
    oldest = event_at(60, team, Action.TARGET_CHANGED)
    event_at(0, team, Action.TARGET_CHANGED)

    response = admin_client.get(URL, {"kind": "target", "older": encode_cursor(oldest)})

    content = response.content.decode()
    assert response.status_code == 200
    assert "No events on this page: it is past the end of the list." in content
    assert f'<a href="{URL}?kind=target">Back to the first page</a>' in content
    assert "Nothing under" not in content


@pytest.mark.parametrize(
    "params", [{"older": "not-a-cursor"}, {"newer": "x"}, {"older": "a", "newer": "b"}]
)
def test_a_cursor_not_made_here_is_a_400_saying_so(admin_client, params):
    response = admin_client.get(URL, params)
    assert response.status_code == 400


def test_the_activity_costs_a_constant_number_of_queries(
    admin_client, team, user, django_assert_num_queries
):
    image_import, _ = ImageImport.submit(team=team, user=user, payload=valid_payload())
    admin_client.get(URL)  # warm the session cache
    with django_assert_num_queries(4):  # user, memberships, count, page
        admin_client.get(URL)
    for number in range(40):
        event_at(number, team, Action.STATUS, image_import=image_import, actor=user)
        event_at(number, team, Action.TOKEN_CREATED, actor=user)
    with django_assert_num_queries(4):
        admin_client.get(URL)
    page = admin_client.get(URL).context["page"]
    with django_assert_num_queries(4):
        admin_client.get(URL, {"kind": "imports", "older": page.older})


# -- one pager for the history and the team activity ---------------------------------


def test_the_history_and_the_activity_page_with_the_one_pager(admin_client, team, user, settings):
    settings.HISTORY_PAGE_SIZE = 1
    for token in ("a", "b"):
        ImageImport.submit(team=team, user=user, payload=valid_payload(clientToken=token))

    for url in (reverse("imports:history"), URL):
        response = admin_client.get(url)
        assert "includes/pager.html" in [template.name for template in response.templates]
        assert '<nav class="pager" aria-label="Pages">' in response.content.decode()
        assert "Older &rarr;</a>" in response.content.decode()
