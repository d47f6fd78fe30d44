"""The HTML pages and their htmx partials (one section per page)."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from imports import services
from imports.forms import tag_formset_data
from imports.models import ImageImport, Membership, Source, Status, Team
from imports.polling import session_cache_key

from .factories import (
    disk_submission,
    make_import,
    make_member,
    sent_to_aws,
    set_up_disk_imports,
    valid_payload,
)

HTMX = {"HX-Request": "true"}


def form_data(**overrides):
    return {**valid_payload(**overrides), **tag_formset_data([])}


# -- history: / ---------------------------------------------------------------


def test_history_lists_the_current_teams_imports_newest_first(user_client, team, user):
    for number in range(3):
        ImageImport.submit(
            team=team,
            user=user,
            payload=valid_payload(clientToken=f"t{number}", name=f"Image {number}"),
        )
    response = user_client.get("/")
    assert response.status_code == 200
    names = [image_import.name for image_import in response.context["page"]]
    assert names == ["Image 2", "Image 1", "Image 0"]


def test_history_never_shows_another_teams_imports(outsider_client, image_import):
    response = outsider_client.get("/")
    assert image_import.name not in response.content.decode()
    assert list(response.context["page"]) == []


def test_history_filters_by_status_platform_and_search(user_client, team, user):
    ImageImport.submit(
        team=team,
        user=user,
        payload=valid_payload(clientToken="a", name="Alpha", platform="Windows"),
    )
    beta, _ = ImageImport.submit(
        team=team,
        user=user,
        payload=valid_payload(
            clientToken="zz-token", name="Beta", vmImportTaskId="import-ami-beta"
        ),
    )
    beta.mark_failed(code="ClientException", message="nope")

    def names(**params):
        return [i.name for i in user_client.get("/", params).context["page"]]

    assert names(status="failed") == ["Beta"]
    assert names(platform="Windows") == ["Alpha"]
    assert names(q="alp") == ["Alpha"]
    assert names(q="import-ami-beta") == ["Beta"]
    assert names(q="zz-token") == ["Beta"]  # exact client token
    assert names(status="not-a-status") == ["Beta", "Alpha"]


def test_history_costs_a_constant_number_of_queries(
    user_client, team, user, django_assert_num_queries
):
    for number in range(30):
        ImageImport.submit(team=team, user=user, payload=valid_payload(clientToken=f"t{number}"))
    user_client.get("/")  # warm the session cache
    with django_assert_num_queries(4):  # user, memberships, count, page
        user_client.get("/")
    with django_assert_num_queries(4):
        user_client.get("/", {"page": 2})


def test_history_table_partial_for_htmx_filters(user_client, image_import):
    response = user_client.get("/", {"q": "Web"}, headers={**HTMX, "HX-Target": "history-table"})
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="history-table">')
    assert "<header" not in content


def test_the_history_polls_once_for_all_rows_in_flight(user_client, team, user):
    queued = make_import(team, user, Status.QUEUED, name="Queued")
    importing = make_import(team, user, Status.IMPORTING, name="Importing")
    done = make_import(team, user, Status.AVAILABLE, name="Done")
    page = user_client.get("/").content.decode()
    assert page.count('hx-trigger="every') == 1  # one poller, not one per row
    poll_url = reverse("imports:history_poll")
    assert f"{poll_url}?ids={importing.pk},{queued.pk}" in page
    assert str(done.pk) not in page.split("?ids=")[1].split('"')[0]


def test_the_poll_swaps_the_rows_in_flight_and_keeps_polling(user_client, team, user):
    queued = make_import(team, user, Status.QUEUED, name="Queued")
    importing = make_import(team, user, Status.IMPORTING, name="Importing")
    url = reverse("imports:history_poll")
    queued.mark_failed(code="ClientException", message="nope")
    response = user_client.get(url, {"ids": f"{queued.pk},{importing.pk}"}, headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 200
    assert f'<tr id="import-{queued.pk}" hx-swap-oob="true">' in content
    assert f'<tr id="import-{importing.pk}" hx-swap-oob="true">' in content
    assert f"?ids={importing.pk}" in content  # the next poll asks only for what is left


def test_the_poll_stops_when_nothing_is_left_in_flight(user_client, team, user):
    done = make_import(team, user, Status.AVAILABLE)
    response = user_client.get(reverse("imports:history_poll"), {"ids": done.pk}, headers=HTMX)
    assert response.status_code == 286
    assert "hx-trigger" not in response.content.decode()


def test_one_poll_costs_the_same_queries_for_1_or_40_rows(
    user_client, team, user, django_assert_num_queries
):
    url = reverse("imports:history_poll")
    rows = [make_import(team, user, Status.IMPORTING) for _ in range(40)]
    user_client.get("/")  # warm the session cache
    with django_assert_num_queries(2):  # user, imports with the role
        user_client.get(url, {"ids": rows[0].pk}, headers=HTMX)
    with django_assert_num_queries(2):
        user_client.get(url, {"ids": ",".join(str(row.pk) for row in rows)}, headers=HTMX)


@pytest.mark.parametrize("ids", ["x", "1,-2", "²", "1" * 19, ",".join(["1"] * 101)])
def test_the_poll_refuses_malformed_ids(user_client, ids):
    response = user_client.get(reverse("imports:history_poll"), {"ids": ids}, headers=HTMX)
    assert response.status_code == 400


def test_the_poll_never_shows_another_teams_rows(outsider_client, image_import):
    url = reverse("imports:history_poll")
    response = outsider_client.get(url, {"ids": image_import.pk}, headers=HTMX)
    assert response.status_code == 286
    assert f"import-{image_import.pk}" not in response.content.decode()


def test_history_wrong_method_anonymous_and_other_team(client, user_client, outsider, image_import):
    assert user_client.post("/").status_code == 405
    assert user_client.post(reverse("imports:history_poll")).status_code == 405
    client.logout()
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    response = client.get(reverse("imports:history_poll"))
    assert response.status_code == 302


def test_someone_in_no_team_is_told_so(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("loner"))
    assert "not in any team yet" in client.get("/").content.decode()


# -- new import: /imports/new ---------------------------------------------------


def test_the_form_offers_a_fresh_token_and_says_each_rule(user_client):
    response = user_client.get("/imports/new")
    content = response.content.decode()
    assert response.status_code == 200
    assert 'type="hidden" name="clientToken"' in content
    assert "each number 0 to 1073741823" in content
    assert "not starting with aws:" in content or "No tags yet" in content


def test_submitting_records_the_import_queues_it_and_shows_its_page(
    user_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = user_client.post("/imports/new", form_data())
    image_import = ImageImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("imports:detail", args=[image_import.pk])
    assert len(callbacks) == 1
    assert image_import.payload == sent_to_aws(image_import.team, valid_payload())


def test_an_htmx_submit_answers_a_client_redirect(user_client):
    response = user_client.post("/imports/new", form_data(), headers=HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("imports:detail", args=[ImageImport.objects.get().pk])


def test_a_double_submit_makes_one_import(user_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        first = user_client.post("/imports/new", form_data())
        second = user_client.post("/imports/new", form_data())
    assert first["Location"] == second["Location"]
    assert ImageImport.objects.count() == 1
    assert len(callbacks) == 1


def test_an_invalid_form_says_which_rule_failed_and_keeps_what_was_typed(user_client):
    response = user_client.post("/imports/new", form_data(semanticVersion="1.0", name="Kept"))
    content = response.content.decode()
    assert response.status_code == 200
    assert "three whole numbers" in content
    assert 'value="Kept"' in content
    assert ImageImport.objects.count() == 0


def test_an_invalid_htmx_submit_re_renders_only_the_form(user_client):
    response = user_client.post("/imports/new", form_data(platform="linux"), headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith('<form id="import-form"')
    assert "case matters" in content


def test_the_same_token_with_other_values_explains_and_offers_a_new_token(user_client):
    user_client.post("/imports/new", form_data())
    response = user_client.post("/imports/new", form_data(name="Changed"))
    content = response.content.decode()
    assert response.status_code == 409
    existing = ImageImport.objects.get()
    assert (
        f'already submitted as <a href="/imports/{existing.pk}">import #{existing.pk}</a>'
        in content
    )
    assert 'class="error-box" role="alert" tabindex="-1" autofocus' in content  # seen on a phone
    assert valid_payload()["clientToken"] not in content.split('name="clientToken"')[1][:80]
    assert ImageImport.objects.count() == 1


def test_a_cancelled_import_says_cancelled_wherever_it_is_shown(user_client, image_import, user):
    image_import.withdraw(user=user)
    badge = '<span class="status status-failed">Cancelled</span>'
    assert badge in user_client.get(f"/imports/{image_import.pk}").content.decode()
    assert badge in user_client.get("/").content.decode()


def test_the_team_menu_switches_only_when_asked(user_client, team, user):
    # An arrow key in the menu changes it: switching then would reload the
    # page and lose what was typed (WCAG 3.2.2). The Switch button does it.
    qa = Team.objects.create(name="qa")
    Membership.objects.create(user=user, team=qa, role=Membership.Role.VIEWER)
    page = user_client.get("/imports/new").content.decode()
    assert "data-autosubmit" not in page
    assert '<button type="submit" class="small">Switch</button>' in page


def test_the_profile_leads_to_changing_the_password(user_client):
    page = user_client.get("/profile").content.decode()
    assert '<a href="/accounts/password_change/">Change your password</a>' in page


def test_the_page_shown_is_marked_in_the_menu(user_client):
    page = user_client.get("/tokens").content.decode()
    assert page.count('aria-current="page"') == 1
    assert 'href="/tokens" aria-current="page">API tokens</a>' in page


def test_each_field_is_checked_as_the_person_leaves_it(user_client):
    url = reverse("imports:validate", args=["semanticVersion"])
    response = user_client.post(url, form_data(semanticVersion="1.0.0/1"), headers=HTMX)
    content = response.content.decode()
    assert 'id="errors-semanticVersion"' in content
    assert "AWS assigns the build number" in content
    response = user_client.post(url, form_data(semanticVersion="1.0.0"), headers=HTMX)
    assert "<li>" not in response.content.decode()


def test_a_tag_key_is_checked_as_the_person_leaves_it(user_client):
    data = {**valid_payload(), **tag_formset_data([("aws:owner", "x")])}
    response = user_client.post(reverse("imports:validate", args=["tags-0-key"]), data)
    assert 'id="errors-tags-0-key"' in response.content.decode()
    assert "reserved for AWS" in response.content.decode()


def test_tag_rows_are_added_and_removed_without_javascript(user_client):
    data = {**valid_payload(), **tag_formset_data([("a", "1"), ("b", "2")]), "tags_action": "add"}
    response = user_client.post("/imports/new", data)
    assert response.context["form"].tags.total_form_count() == 3
    data = {
        **valid_payload(),
        **tag_formset_data([("a", "1"), ("b", "2")]),
        "tags_action": "remove-0",
    }
    response = user_client.post("/imports/new", data)
    tags = response.context["form"].tags
    assert [(form["key"].value(), form["value"].value()) for form in tags.forms] == [("b", "2")]
    assert ImageImport.objects.count() == 0


def test_tag_rows_are_edited_with_htmx_as_a_partial(user_client):
    data = {**valid_payload(), **tag_formset_data([("a", "1")]), "tags_action": "add"}
    response = user_client.post("/imports/new", data, headers=HTMX)
    content = response.content.decode()
    assert content.lstrip().startswith('<fieldset id="tags"')
    assert 'name="tags-1-key"' in content and 'value="a"' in content


def test_tag_errors_are_shown_on_their_row(user_client):
    data = {**valid_payload(), **tag_formset_data([("good", "1"), ("bad key", "2")])}
    response = user_client.post("/imports/new", data)
    assert "characters that are not allowed" in response.content.decode()
    assert ImageImport.objects.count() == 0


def test_a_viewer_may_not_open_the_form(client, team, django_user_model):
    viewer = django_user_model.objects.create_user("vera")
    Membership.objects.create(user=viewer, team=team, role=Membership.Role.VIEWER)
    client.force_login(viewer)
    assert client.get("/imports/new").status_code == 403


def test_a_form_opened_for_another_team_than_the_one_now_acted_for_sends_nothing(
    user_client, user, team, other_team
):
    # Opened for platform, then switched to data in another tab: not sent to data unseen.
    Membership.objects.create(user=user, team=other_team, role=Membership.Role.SUBMITTER)
    page = user_client.get("/imports/new").content.decode()
    assert f'<input type="hidden" name="team" value="{team.pk}">' in page
    user_client.post(reverse("imports:switch_team"), {"team": other_team.pk})

    response = user_client.post("/imports/new", {**form_data(), "team": team.pk})
    assert response.status_code == 200
    assert (
        f"This form was opened for team {team.name}; you have since switched to team "
        f"{other_team.name}" in response.content.decode()
    )
    assert not ImageImport.objects.exists()
    # The form drawn again is the current team's: sent again, it goes there.
    assert f'name="team" value="{other_team.pk}"' in response.content.decode()
    user_client.post("/imports/new", {**form_data(), "team": other_team.pk})
    assert ImageImport.objects.get().team == other_team

    # Nor through a post the form refuses, or a tag row added: it says so first.
    user_client.post(reverse("imports:switch_team"), {"team": team.pk})
    for post in ({**form_data(name="")}, {**form_data(), "tags_action": "add"}):
        response = user_client.post("/imports/new", {**post, "team": other_team.pk})
        assert "This form was opened for team" in response.content.decode()


def test_a_failed_import_starts_again_with_its_settings(user_client, client, team, user, teammate):
    failed = make_import(
        team,
        user,
        Status.FAILED,
        payload={"name": "Web tier", "semanticVersion": "2.3.4", "tags": {"team": "web"}},
        error_code="ClientException",
        error_message="The task was not found.",
    )
    page = user_client.get(reverse("imports:detail", args=[failed.pk])).content.decode()
    again = f"{reverse('imports:new')}?from={failed.pk}"
    assert f'href="{again}">Start again with these settings</a>' in page

    form = user_client.get(again).content.decode()
    assert f'Filled in as <a href="/imports/{failed.pk}">import #{failed.pk}</a> was' in form
    assert 'value="Web tier"' in form and 'value="2.3.4"' in form and 'value="web"' in form
    assert failed.client_token not in form  # a new token: a new import

    # A viewer may not start imports: not offered.
    teammate.memberships.update(role=Membership.Role.VIEWER)
    client.force_login(teammate)
    viewer_page = client.get(reverse("imports:detail", args=[failed.pk])).content.decode()
    assert "Start again with these settings" not in viewer_page


def test_new_import_wrong_method_and_anonymous(client, user_client):
    assert user_client.put("/imports/new").status_code == 405
    client.logout()
    assert client.get("/imports/new").status_code == 302


# -- one import: /imports/<id> and its status partial ----------------------------


def test_the_import_page_shows_every_field_sent_and_the_timeline(user_client, image_import):
    image_import.claim()
    image_import.mark_importing(
        image_arn="arn:aws:imagebuilder:us-east-1:123456789012:image/x/1.0.0/1",
        request_id="req-9",
        client_token=image_import.client_token,
    )
    response = user_client.get(reverse("imports:detail", args=[image_import.pk]))
    content = response.content.decode()
    assert response.status_code == 200
    for value in image_import.payload.values():
        assert value in content
    assert "arn:aws:imagebuilder:us-east-1:123456789012:image/x/1.0.0/1" in content
    assert 'data-copy="arn:aws' in content
    assert "req-9" in content
    assert "Attempt 1 sending to AWS" in content


def test_a_failed_import_shows_aws_message_in_plain_words(user_client, image_import):
    image_import.mark_failed(code="ClientException", message="The VM import task does not exist.")
    content = user_client.get(reverse("imports:detail", args=[image_import.pk])).content.decode()
    assert "The import failed." in content
    assert "The VM import task does not exist." in content


def test_the_status_partial_polls_until_terminal_then_answers_286(user_client, image_import):
    url = reverse("imports:status", args=[image_import.pk])
    response = user_client.get(url, headers=HTMX)
    assert response.status_code == 200
    # Young and not yet accepted by AWS: poll very often, never "at once" from
    # a polled answer (each answer would set off the next).
    assert 'hx-trigger="every 250ms"' in response.content.decode()
    image_import.mark_failed(code="ClientException", message="bad")
    response = user_client.get(url, headers=HTMX)
    assert response.status_code == 286
    assert "hx-trigger" not in response.content.decode()


def test_the_polled_partial_costs_at_most_two_queries(
    user_client, image_import, django_assert_max_num_queries
):
    url = reverse("imports:status", args=[image_import.pk])
    user_client.get(url, headers=HTMX)  # warm the session cache
    with django_assert_max_num_queries(2):
        user_client.get(url, headers=HTMX)


@pytest.mark.parametrize("name", ["detail", "status"])
def test_another_teams_import_is_404(outsider_client, image_import, name):
    assert (
        outsider_client.get(reverse(f"imports:{name}", args=[image_import.pk])).status_code == 404
    )


@pytest.mark.parametrize("name", ["detail", "status"])
def test_import_pages_wrong_method_and_anonymous(client, user_client, image_import, name):
    url = reverse(f"imports:{name}", args=[image_import.pk])
    assert user_client.post(url).status_code == 405
    client.logout()
    assert client.get(url).status_code == 302


def test_a_teammate_sees_the_import(client, teammate, image_import):
    client.force_login(teammate)
    assert client.get(reverse("imports:detail", args=[image_import.pk])).status_code == 200


# -- team switcher ----------------------------------------------------------------


def test_switching_team_scopes_the_history(client, user, team, other_team, image_import):
    Membership.objects.create(user=user, team=other_team)
    client.force_login(user)
    assert "Switch" in client.get("/").content.decode()
    response = client.post("/teams/switch", {"team": other_team.pk, "next": "/"})
    assert response.status_code == 302
    assert list(client.get("/").context["page"]) == []


def test_switching_to_a_team_you_are_not_in_is_refused(user_client, other_team):
    assert user_client.post("/teams/switch", {"team": other_team.pk}).status_code == 400
    assert user_client.post("/teams/switch", {"team": "x"}).status_code == 400
    assert user_client.get("/teams/switch").status_code == 405


def test_statuses_are_listed_in_the_filter(user_client):
    content = user_client.get("/").content.decode()
    for value in Status.values:
        assert f'value="{value}"' in content


def test_the_polled_partial_brings_the_timeline_only_when_the_import_changed(
    user_client, image_import, django_assert_max_num_queries
):
    url = reverse("imports:status", args=[image_import.pk])
    user_client.get("/")  # the session learns the team and role
    unchanged = user_client.get(url, {"seen": image_import.version}, headers=HTMX)
    assert 'id="timeline"' not in unchanged.content.decode()
    seen = image_import.version
    image_import.claim()
    with django_assert_max_num_queries(3):
        changed = user_client.get(url, {"seen": seen}, headers=HTMX).content.decode()
    assert 'id="timeline" hx-swap-oob="true"' in changed
    assert "Attempt 1 sending to AWS" in changed
    assert f"seen={image_import.version}" in changed  # the next poll asks from here


def poll_params(image_import):
    return {"seen": image_import.version, "every": str(image_import.poll_milliseconds)}


def test_an_unchanged_poll_is_a_204_without_touching_the_database(
    user_client, image_import, django_assert_num_queries
):
    url = reverse("imports:status", args=[image_import.pk])
    assert user_client.get(url, poll_params(image_import), headers=HTMX).status_code == 200
    with django_assert_num_queries(0):
        response = user_client.get(url, poll_params(image_import), headers=HTMX)
    assert response.status_code == 204
    assert response.content == b""


def test_a_poll_after_a_change_gets_the_news_in_full(
    user_client, image_import, django_capture_on_commit_callbacks
):
    url = reverse("imports:status", args=[image_import.pk])
    seen = poll_params(image_import)
    user_client.get(url, seen, headers=HTMX)
    with django_capture_on_commit_callbacks(execute=True):
        image_import.claim()  # publishes the new version once committed
    response = user_client.get(url, seen, headers=HTMX)
    assert response.status_code == 200
    assert "Attempt 1 sending to AWS" in response.content.decode()


def test_the_cached_answer_belongs_to_the_session_that_was_allowed(
    user_client, outsider, image_import
):
    url = reverse("imports:status", args=[image_import.pk])
    user_client.get(url, poll_params(image_import), headers=HTMX)  # alice is allowed
    other = Client()
    other.force_login(outsider)
    assert other.get(url, poll_params(image_import), headers=HTMX).status_code == 404


def test_a_session_that_signed_out_is_never_answered_from_the_cache(user_client, image_import):
    url = reverse("imports:status", args=[image_import.pk])
    user_client.get(url, poll_params(image_import), headers=HTMX)  # access granted
    cookie = user_client.cookies["sessionid"].value
    user_client.post(reverse("logout"))
    replayed = Client()
    replayed.cookies["sessionid"] = cookie  # the old cookie, kept by someone
    response = replayed.get(url, poll_params(image_import), headers=HTMX)
    # To sign in, the whole page (error_pages.SignInAgainForHtmx), not "unchanged".
    assert response["HX-Redirect"].startswith("/accounts/login/?next=")


def test_a_session_the_cache_forgot_is_answered_in_full(user_client, image_import):
    url = reverse("imports:status", args=[image_import.pk])
    user_client.get(url, poll_params(image_import), headers=HTMX)
    cache.delete(session_cache_key(user_client.cookies["sessionid"].value))
    response = user_client.get(url, poll_params(image_import), headers=HTMX)
    assert response.status_code == 200  # from the database, which still has it
    again = user_client.get(url, poll_params(image_import), headers=HTMX)
    assert again.status_code == 204  # and the full answer put it back in the cache


def test_a_page_opened_before_the_arn_asks_at_once_then_often(user_client, image_import):
    page = user_client.get(reverse("imports:detail", args=[image_import.pk])).content.decode()
    assert 'hx-trigger="load, every 250ms"' in page


def test_a_page_opened_after_the_arn_waits_for_its_first_poll(user_client, team, user):
    image_import = make_import(team, user, Status.IMPORTING)
    page = user_client.get(reverse("imports:detail", args=[image_import.pk])).content.decode()
    assert 'hx-trigger="every 500ms"' in page


def test_the_first_poll_from_a_page_is_a_204_when_nothing_changed(
    user_client, image_import, django_assert_num_queries
):
    user_client.get(reverse("imports:detail", args=[image_import.pk]))  # grants the access
    url = reverse("imports:status", args=[image_import.pk])
    with django_assert_num_queries(0):
        response = user_client.get(url, poll_params(image_import), headers=HTMX)
    assert response.status_code == 204


def test_a_page_polls_less_often_as_its_import_ages(team, user):
    awaiting = make_import(team, user, Status.QUEUED)
    assert awaiting.poll_milliseconds == 250  # the ARN is due within a second
    awaiting.created_at = timezone.now() - timedelta(seconds=30)
    assert awaiting.poll_milliseconds == 2000  # AWS is slow today: back to the steps
    image_import = make_import(team, user, Status.IMPORTING)
    assert image_import.poll_milliseconds == 500
    image_import.created_at = timezone.now() - timedelta(seconds=30)
    assert image_import.poll_milliseconds == 2000
    image_import.created_at = timezone.now() - timedelta(minutes=5)
    assert image_import.poll_milliseconds == 10000


def test_a_poll_whose_interval_is_out_of_date_is_answered_in_full(user_client, image_import):
    url = reverse("imports:status", args=[image_import.pk])
    user_client.get(url, poll_params(image_import), headers=HTMX)
    stale = {**poll_params(image_import), "every": "100"}
    assert user_client.get(url, stale, headers=HTMX).status_code == 200


def test_an_unchanged_poll_carries_the_headers_of_every_other_answer(user_client, image_import):
    # It is answered before most of the middleware (imports/polling.py), but
    # after those that head every answer.
    url = reverse("imports:status", args=[image_import.pk])
    full = user_client.get(url, poll_params(image_import), headers=HTMX)
    unchanged = user_client.get(url, poll_params(image_import), headers=HTMX)
    assert (full.status_code, unchanged.status_code) == (200, 204)
    for header in (
        "X-Request-ID",
        "X-Content-Type-Options",
        "X-Frame-Options",
        "Content-Security-Policy",
        "Referrer-Policy",
    ):
        assert unchanged[header], header
        assert header == "X-Request-ID" or unchanged[header] == full[header]


def test_an_unchanged_poll_to_a_host_not_allowed_is_refused(user_client, image_import, settings):
    url = reverse("imports:status", args=[image_import.pk])
    user_client.get(url, poll_params(image_import), headers=HTMX)
    settings.ALLOWED_HOSTS = ["portal.example.com"]
    forged = user_client.get(url, poll_params(image_import), headers={**HTMX, "host": "evil.test"})
    assert forged.status_code == 400


def test_only_a_get_of_the_status_is_answered_from_the_cache(user_client, image_import):
    url = reverse("imports:status", args=[image_import.pk])
    user_client.get(url, poll_params(image_import), headers=HTMX)
    query = f"?seen={image_import.version}&every={image_import.poll_milliseconds}"
    assert user_client.post(url + query, headers=HTMX).status_code == 405
    nowhere = f"/nowhere/{image_import.pk}/status{query}"
    assert user_client.get(nowhere, headers=HTMX).status_code == 404


def test_the_cancel_button_is_offered_to_submitters_while_it_can_cancel(
    user_client, team, image_import
):
    url = reverse("imports:status", args=[image_import.pk])
    user_client.get("/")
    assert "Cancel this import" in user_client.get(url, headers=HTMX).content.decode()
    viewer_client = Client()
    viewer_client.force_login(make_member("vic", team, Membership.Role.VIEWER))
    viewer_client.get("/")
    assert "Cancel this import" not in viewer_client.get(url, headers=HTMX).content.decode()
    image_import.mark_failed(code="X", message="y")
    assert "Cancel this import" not in user_client.get(url, headers=HTMX).content.decode()


# -- what the pages say: messages, headings, states ---------------------------


def test_a_refused_cancel_is_an_error_and_a_success_is_a_status(user_client, team, user):
    finished = make_import(team, user, Status.AVAILABLE)
    response = user_client.post(reverse("imports:cancel", args=[finished.pk]), follow=True)
    content = response.content.decode()
    assert 'class="message message-error" role="alert"' in content
    assert "it cannot be cancelled now" in content
    queued = make_import(team, user)
    response = user_client.post(reverse("imports:cancel", args=[queued.pk]), follow=True)
    assert 'class="message message-success" role="status"' in response.content.decode()
    assert '<ul class="messages"' not in response.content.decode()


def test_submitting_says_import_recorded_only_while_it_is_true(user_client, team, user):
    response = user_client.post("/imports/new", form_data(), follow=True)
    content = response.content.decode()
    assert "Import recorded; the worker is sending it to AWS." in content
    assert 'class="message' not in content  # in the status panel, not a flash message
    image_import = ImageImport.objects.get()
    image_import.mark_failed(code="ClientException", message="nope")
    status = user_client.get(reverse("imports:status", args=[image_import.pk]), headers=HTMX)
    assert "Import recorded" not in status.content.decode()


def test_the_request_is_to_send_until_it_has_gone(user_client, image_import):
    url = reverse("imports:detail", args=[image_import.pk])
    assert "Request to send" in user_client.get(url).content.decode()
    seen = image_import.version
    image_import.claim()
    image_import.mark_importing(image_arn="arn:x", request_id="r", client_token="t")
    changed = user_client.get(
        reverse("imports:status", args=[image_import.pk]), {"seen": seen}, headers=HTMX
    ).content.decode()
    assert '<h2 id="request-heading" hx-swap-oob="true">Request sent to AWS</h2>' in changed
    assert "Request sent to AWS" in user_client.get(url).content.decode()


def test_a_completed_task_shows_no_waiting_and_offers_no_cancel(user_client, team, user):
    done = make_import(team, user, Status.IMPORTING, progress=100, image_state="BUILDING")
    content = user_client.get(reverse("imports:detail", args=[done.pk])).content.decode()
    assert "waiting for EC2" not in content and "<progress" not in content
    assert "Completed" in content
    assert "Cancel this import" not in content
    assert "EC2 can no longer cancel it" in content
    assert '<li class="done">Pending<span class="visually-hidden"> (done)</span></li>' in content
    assert '<li class="current" aria-current="step">Building</li>' in content
    confirm = user_client.get(reverse("imports:cancel", args=[done.pk]), follow=True)
    assert "EC2 can no longer cancel it" in confirm.content.decode()
    refused = user_client.post(reverse("imports:cancel", args=[done.pk]), follow=True)
    assert 'class="message message-error"' in refused.content.decode()
    done.refresh_from_db()
    assert done.status == Status.IMPORTING


def test_cancel_asks_for_confirmation_first(user_client, outsider, image_import):
    url = reverse("imports:cancel", args=[image_import.pk])
    outsider_client = Client()
    outsider_client.force_login(outsider)
    response = user_client.get(url)
    assert response.status_code == 200
    assert "Yes, cancel the import" in response.content.decode()
    image_import.refresh_from_db()
    assert image_import.status == Status.QUEUED
    assert outsider_client.get(url).status_code == 404
    assert Client().get(url).status_code == 302  # anonymous: to the sign-in page
    assert user_client.delete(url).status_code == 405


def test_cancel_warns_of_the_teams_other_imports_from_the_same_task(user_client, team, user):
    # EC2 has one task: cancelling it for one import ends every import from it.
    task = {"vm_import_task_id": "import-ami-0123456789abcdef0"}
    first = make_import(team, user, Status.IMPORTING, source=Source.S3_OBJECT, **task)
    second = make_import(team, user, Status.IMPORTING, **task)
    make_import(team, user, Status.AVAILABLE, **task)  # ended: nothing to end
    make_import(team, user, Status.IMPORTING, vm_import_task_id="import-ami-0fffffffffffffff0")
    page = user_client.get(reverse("imports:cancel", args=[first.pk])).content.decode()
    assert (
        f"Import #{second.pk} of this team also imports from this task: cancelling it ends it too."
    ) in page
    third = make_import(team, user, Status.QUEUED, **task)
    page = user_client.get(reverse("imports:cancel", args=[first.pk])).content.decode()
    assert f"Imports #{second.pk}, #{third.pk} of this team also import from this task" in page


def test_cancelling_an_upload_says_what_it_stops_and_names_no_task(user_client, team, user):
    # An upload has no VM import task yet: no other upload shares one with it.
    set_up_disk_imports(team)
    uploads = []
    for token in ("8c1e0a52-7a4e-4b8e-9c61-0d2f3a4b5c6d", "9d2f1b63-8b5f-4c9f-8d72-1e3a4b5c6d7e"):
        submission = disk_submission(source="upload", upload_size=5 * 2**20)
        submission["payload"]["clientToken"] = token
        uploads.append(services.submit_import(team=team, user=user, **submission)[0])
    assert [upload.status for upload in uploads] == [Status.UPLOADING] * 2
    said = "The upload is stopped and its parts deleted; nothing has been sent to AWS yet."
    page = user_client.get(reverse("imports:cancel", args=[uploads[0].pk])).content.decode()
    assert said in page
    assert "VM import task" not in page and "also import" not in page
    detail = user_client.get(reverse("imports:detail", args=[uploads[0].pk])).content.decode()
    assert f"{said} You confirm on the next page." in detail


def test_history_uses_one_vocabulary_and_says_why_an_import_failed(user_client, team, user):
    make_import(team, user, Status.IMPORTING, image_state="BUILDING", name="Building one")
    make_import(team, user, Status.FAILED, error_message="The task was not found.")
    content = user_client.get("/").content.decode()
    assert "BUILDING" not in content and "Building" in content
    assert '<span class="reason">The task was not found.</span>' in content
    partial = user_client.get("/", headers={**HTMX, "HX-Target": "history-table"})
    assert "Building" in partial.content.decode()


def test_the_header_names_team_role_and_person_apart(user_client):
    content = user_client.get("/").content.decode()
    assert '<span class="label">Team</span> <strong>platform</strong>' in content
    assert '<span class="role" title="Your role in this team">Submitter</span>' in content
    assert '<span class="label">Signed in as</span> <strong>alice</strong>' in content
    assert '<a class="skip-link" href="#main">Skip to main content</a>' in content
    assert '<main id="main" tabindex="-1">' in content


def test_the_audit_link_opens_the_audit_events(client, user):
    user.is_staff = True
    user.save()
    client.force_login(user)
    content = client.get("/").content.decode()
    assert f'<a href="{reverse("admin:imports_auditevent_changelist")}">Audit</a>' in content


def test_sign_in_names_the_real_credentials_file_or_none(client, settings):
    settings.DEBUG = True
    content = client.get(reverse("login")).content.decode()
    assert str(settings.DATA_DIR / "admin-credentials.txt") in content
    settings.DEBUG = False
    assert "admin-credentials" not in client.get(reverse("login")).content.decode()


def test_the_form_opens_on_name_and_never_cuts_text_silently(user_client):
    content = user_client.get("/imports/new").content.decode()
    assert " maxlength=" not in content
    assert 'data-maxlength="1024"' in content
    assert "autofocus" in content


def test_the_error_summary_links_to_each_field(user_client):
    data = {**form_data(semanticVersion="1.0"), **tag_formset_data([("aws:x", "")])}
    content = user_client.post("/imports/new", data).content.decode()
    # Each message names its field already: the summary does not say it twice.
    assert '<a href="#id_semanticVersion">Semantic version must be three' in content
    assert '<a href="#id_tags-0-key">Tag 1: Tag keys may not begin with' in content
    assert 'aria-invalid="true"' in content


def test_a_message_that_does_not_name_its_field_is_listed_under_its_label(user_client):
    content = user_client.post("/imports/new", form_data(vmImportTaskId="")).content.decode()
    assert '<a href="#id_vmImportTaskId">VM import task ID is required.</a>' in content
    content = user_client.post("/imports/new", form_data(semanticVersion="1.0.0/1")).content
    assert b'<a href="#id_semanticVersion">Semantic version: Give only major.minor' in content


def test_adding_a_tag_row_keeps_the_error_on_an_invalid_key(user_client):
    data = {**form_data(), **tag_formset_data([("aws:x", "")]), "tags_action": "add"}
    content = user_client.post("/imports/new", data, headers=HTMX).content.decode()
    assert "Tag keys may not begin with &quot;aws:&quot;" in content
    assert content.count('class="tag-row"') == 2


def test_the_picker_names_each_use_button_and_knows_the_platform(user_client, emulator):
    content = user_client.get(reverse("imports:vm_import_tasks"), headers=HTMX).content.decode()
    assert 'aria-label="Use import-ami-0fedcba9876543210: Windows Server 2022 base' in content
    assert 'data-platform="Windows"' in content
    assert '<span class="visually-hidden">Action</span>' in content


def test_adding_a_tag_without_javascript_leaves_the_focus_alone(user_client):
    data = {**form_data(), "tags_action": "add"}
    content = user_client.post("/imports/new", data).content.decode()
    assert content.count('class="tag-row"') == 1
    assert "autofocus" not in content


def test_the_poll_interval_steps_down_at_10_and_60_seconds(team, user):
    image_import = make_import(team, user)
    assert 9 < image_import.seconds_until_poll_changes() <= 10
    image_import.created_at = timezone.now() - timedelta(seconds=30)
    assert 29 < image_import.seconds_until_poll_changes() <= 30
    image_import.created_at = timezone.now() - timedelta(hours=1)
    assert image_import.seconds_until_poll_changes() is None
