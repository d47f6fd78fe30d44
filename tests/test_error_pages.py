"""The pages a person sees when something goes wrong, and the answers that stay bare.

A browser asking for a page gets the portal's layout, a message in plain
words and a way back: the 400s (a view's message, a refused character,
Django's refusals), the CSRF failure, the 405s (with their Allow header),
the 500, and the password change pages. The API keeps its JSON, htmx and
fetch() their bare answers, and the probes their empty ones.
"""

import json
import re
import sys
from html.parser import HTMLParser

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse

from imports import errors, health
from imports.forms import tag_formset_data
from imports.models import ImageImport, Membership

from .factories import make_member, valid_payload

HTMX = {"HX-Request": "true"}
FETCH = {"Sec-Fetch-Dest": "empty", "Sec-Fetch-Mode": "cors"}
NAVIGATION = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate"}


def assert_portal_page(response, status, title):
    """The portal's layout: language, title, one main landmark, a way back; the page's text."""
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "text/html; charset=utf-8"
    html = response.content.decode()
    assert '<html lang="en">' in html
    assert f"<title>{title} · VM Import Portal</title>" in html
    assert html.count("<main") == 1
    assert re.search(r"<h1>[^<]+</h1>", html)
    assert 'class="brand"' in html  # the header, with the way home
    return html


class Ids(HTMLParser):
    """Every id in a page, and what each element's aria-describedby names."""

    def __init__(self, html):
        super().__init__()
        self.ids, self.described = set(), {}
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if attrs.get("aria-describedby"):
            self.described[attrs.get("name") or attrs.get("id")] = attrs["aria-describedby"].split()


def assert_descriptions_exist(html):
    page = Ids(html)
    for name, ids in page.described.items():
        missing = [i for i in ids if i not in page.ids]
        assert not missing, f"{name} is described by ids not in the page: {missing}"
    return page.described


# -- 400: a view's message ---------------------------------------------------------


@pytest.mark.parametrize(
    "url, query, message",
    [
        ("/", {"page": "abc"}, "page must be a whole number from 1 to 1000."),
        ("/", {"older": "not-a-cursor"}, "The page cursor is not one this portal made."),
        (
            "/imports/in-flight",
            {"ids": "abc"},
            "ids must be import numbers separated by commas.",
        ),
    ],
)
def test_a_pages_bad_request_is_the_portals_400_page(user_client, user, url, query, message):
    response = user_client.get(url, query, headers=NAVIGATION)
    html = assert_portal_page(response, 400, "Bad request")
    assert f"<p>{message}</p>" in html
    assert '<a href="/">Back to your imports</a>' in html
    assert user.username in html  # the header as on every page


@pytest.mark.parametrize("headers", [HTMX, FETCH], ids=["htmx", "fetch"])
def test_htmx_and_fetch_keep_the_bare_message(user_client, headers):
    response = user_client.get("/imports/in-flight", {"ids": "abc"}, headers=headers)
    assert response.status_code == 400
    assert response.content == b"ids must be import numbers separated by commas."


def test_the_history_table_partial_keeps_the_bare_message(user_client):
    headers = {**HTMX, "HX-Target": "history-table"}
    response = user_client.get("/", {"page": "abc"}, headers=headers)
    assert response.status_code == 400
    assert response.content == b"page must be a whole number from 1 to 1000."


def test_the_page_and_the_api_say_the_same_about_a_bad_page_number(user_client, api_headers):
    page = user_client.get("/", {"page": "abc"})
    answer = Client().get("/api/imports", {"page": "abc"}, headers=api_headers)
    assert answer.status_code == 400 and answer["Content-Type"] == "application/json"
    assert answer.json() == {"error": page.context["message"], "status": 400}


def test_a_tag_row_button_without_javascript_gets_the_page(user_client):
    data = {**valid_payload(), **tag_formset_data([("a", "b")]), "tags_action": "remove-x"}
    page = user_client.post(reverse("imports:new"), data)
    html = assert_portal_page(page, 400, "Bad request")
    assert "tags_action must be add or remove-&lt;row number&gt;." in html
    fragment = user_client.post(reverse("imports:new"), data, headers=HTMX)
    assert fragment.status_code == 400
    assert fragment.content == b"tags_action must be add or remove-<row number>."
    assert not ImageImport.objects.exists()


def test_a_team_switch_to_a_team_not_yours_is_the_400_page(user_client, other_team):
    response = user_client.post(reverse("imports:switch_team"), {"team": other_team.pk})
    html = assert_portal_page(response, 400, "Bad request")
    assert "You are not a member of that team." in html


# -- 400: text no database can store (inputs.RejectMalformedText) -------------------


@pytest.mark.parametrize("signed_in", [True, False], ids=["signed-in", "anonymous"])
def test_a_nul_in_a_pages_query_is_the_400_page(client, user, signed_in):
    if signed_in:
        client.force_login(user)
    response = client.get("/?q=%00", headers=NAVIGATION)
    html = assert_portal_page(response, 400, "Bad request")
    assert "<p>The query parameter &#x27;q&#x27; contains a NUL character.</p>" in html
    assert "Bad request: The" not in html
    # Refused before the middleware that adds these: the page gets them all the same.
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"


def test_a_nul_in_a_form_field_is_the_400_page_before_any_query(
    user_client, django_assert_num_queries
):
    with django_assert_num_queries(0):
        response = user_client.post(reverse("imports:new"), {"name": "a\x00b"})
    html = assert_portal_page(response, 400, "Bad request")
    assert "The form field &#x27;name&#x27; contains a NUL character." in html


def test_a_nul_keeps_its_bare_answer_for_htmx_and_json_for_the_api(user_client, api_headers):
    fragment = user_client.get("/?q=%00", headers=HTMX)
    assert fragment.status_code == 400
    assert fragment["Content-Type"] == "text/plain; charset=utf-8"
    assert fragment.content == b"Bad request: The query parameter 'q' contains a NUL character."
    answer = Client().get("/api/imports?q=%00", headers=api_headers)
    assert answer.status_code == 400 and answer["Content-Type"] == "application/json"
    assert "NUL" in answer.json()["error"]


# -- 400: Django's refusals (handler400) ----------------------------------------------


def test_a_form_too_large_is_the_400_page_in_plain_words(user_client, settings):
    body = "name=" + "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = user_client.post(
        reverse("imports:new"), body, content_type="application/x-www-form-urlencoded"
    )
    html = assert_portal_page(response, 400, "Bad request")
    assert "The form sent more than the 256 KiB the portal accepts." in html


def test_a_form_with_too_many_fields_is_the_400_page(user_client, settings):
    data = {f"field{i}": "x" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    html = assert_portal_page(user_client.post(reverse("imports:new"), data), 400, "Bad request")
    assert "The form sent more fields than the portal accepts." in html


def test_a_host_not_allowed_is_the_400_page(client, db, settings):
    settings.ALLOWED_HOSTS = ["portal.example.com"]
    response = client.get("/accounts/login/", headers={"host": "evil.test"})
    html = assert_portal_page(response, 400, "Bad request")
    assert "The portal does not answer to this address." in html
    assert "evil.test" not in html


def test_the_400_page_without_a_message_says_the_request_was_unreadable(rf, db):
    response = errors.bad_request(rf.get("/"), ValueError("deep inside Django"))
    html = response.content.decode()
    assert response.status_code == 400
    assert "The portal could not read what your browser sent." in html
    assert "deep inside Django" not in html


def test_the_apis_400s_stay_json(client, api_headers, settings):
    body = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = client.post(
        "/api/imports", body, content_type="application/json", headers=api_headers
    )
    assert response.status_code == 413 and response["Content-Type"] == "application/json"


# -- 403: the CSRF failure ---------------------------------------------------------------


@pytest.fixture
def csrf_client(db):
    return Client(enforce_csrf_checks=True)


def login_form_token(client):
    page = client.get(reverse("login"))
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]


def test_signing_in_with_a_form_from_another_tab_is_the_expired_form_page(csrf_client, user):
    stale = login_form_token(csrf_client)  # the second tab's form
    fresh = login_form_token(csrf_client)
    signed_in = csrf_client.post(
        reverse("login"),
        {"username": user.username, "password": "pw-alice", "csrfmiddlewaretoken": fresh},
    )
    assert signed_in.status_code == 302  # signing in gives the session a new token
    login_url = "http://testserver" + reverse("login")
    response = csrf_client.post(
        reverse("login"),
        {"username": user.username, "password": "pw-alice", "csrfmiddlewaretoken": stale},
        headers={"referer": login_url},
    )
    html = assert_portal_page(response, 403, "Form expired")
    assert "<h1>This form has expired</h1>" in html
    assert "open for a long time, or you signed in or out in another tab" in html
    assert "Reload the page and send the form again." in html
    assert f'<a href="{login_url}">Reload the form</a>' in html
    assert '<a href="/">back to your imports</a>' in html
    assert "CSRF" not in html  # Django's reason, for DEBUG only
    assert user.username in html  # signed in, in the header
    # The page's own sign-out form carries the session's current token.
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)[1]
    assert csrf_client.post(reverse("logout"), {"csrfmiddlewaretoken": token}).status_code == 302


def test_a_form_sent_without_the_cookie_says_to_allow_cookies(csrf_client, user, settings):
    settings.DEBUG = True
    response = csrf_client.post(reverse("login"), {"username": user.username})
    html = assert_portal_page(response, 403, "Form expired")
    assert "did not send the portal's security cookie" in html
    assert "Django's reason: CSRF cookie not set." in html  # with DEBUG on
    assert '<a href="/">Back to your imports</a>' in html


def test_the_expired_form_page_links_back_only_to_a_page_of_the_portal(csrf_client, user):
    csrf_client.get(reverse("login"))
    response = csrf_client.post(
        reverse("login"), {"username": "x"}, headers={"referer": "https://evil.test/phish"}
    )
    html = assert_portal_page(response, 403, "Form expired")
    assert "evil.test" not in html
    assert "Reload the form" not in html


def test_a_csrf_failure_under_the_api_stays_json(db):
    response = errors.csrf_failure(RequestFactory().post("/api/imports"), "CSRF cookie not set.")
    assert response.status_code == 403 and response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {
        "error": "CSRF verification failed: CSRF cookie not set.",
        "status": 403,
    }


# -- 405 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/accounts/logout/", "/team/webhooks/1/test", "/teams/switch", "/team/members"]
)
def test_opening_an_address_for_a_button_is_the_405_page(user_client, url):
    response = user_client.get(url, headers=NAVIGATION)
    html = assert_portal_page(response, 405, "Not available this way")
    assert "POST" in response["Allow"]
    assert "only when you press its button on a portal page" in html
    assert '<a href="/">Back to your imports</a>' in html


def test_signing_out_by_address_when_signed_out_is_the_405_page(client, db):
    response = client.get("/accounts/logout/")
    assert_portal_page(response, 405, "Not available this way")
    assert response["Allow"] == "POST, OPTIONS"


def test_a_method_a_page_does_not_take_is_named(user_client):
    response = user_client.put(reverse("imports:new"))
    html = assert_portal_page(response, 405, "Not available this way")
    assert response["Allow"] == "GET, POST"
    assert "This address does not take a PUT request; it takes GET or POST." in html


@pytest.mark.parametrize("headers", [HTMX, FETCH], ids=["htmx", "fetch"])
def test_htmx_and_fetch_keep_an_empty_405(user_client, headers):
    response = user_client.get("/team/webhooks/1/test", headers=headers)
    assert response.status_code == 405 and response.content == b""
    assert response["Allow"] == "POST"


# -- an htmx request whose session has ended ------------------------------------------


@pytest.mark.parametrize(
    "method, url",
    [("get", "/?status=failed"), ("get", "/imports/1/status?seen=3"), ("post", "/imports/new")],
)
def test_an_htmx_request_signed_out_sends_the_whole_page_to_sign_in(client, db, method, url):
    # The browser would follow the redirect and htmx swap the sign-in page
    # into the table, the status panel or the form.
    page = "http://testserver/imports/7?from=history"
    response = getattr(client, method)(url, headers={**HTMX, "HX-Current-URL": page})
    assert response.status_code == 204
    assert response["HX-Redirect"] == "/accounts/login/?next=%2Fimports%2F7%3Ffrom%3Dhistory"
    assert response.content == b""


def test_a_page_signed_out_still_redirects_to_sign_in(client, db):
    response = client.get("/imports/new")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/imports/new"


def test_an_htmx_request_s_other_redirects_are_left_as_they_are(user_client):
    response = user_client.post("/profile", {"email": "", "email_on_end": "on"}, headers=HTMX)
    assert (response.status_code, response["Location"]) == (302, "/profile")
    assert "HX-Redirect" not in response


def test_the_probes_keep_an_empty_405(client, db):
    response = client.post("/healthz")
    assert response.status_code == 405 and response.content == b""


def test_the_probes_are_the_paths_that_keep_bare_answers():
    assert set(health.PROBES) == errors.MACHINE_PATHS


def test_the_apis_405_stays_json(client, api_headers):
    response = client.get("/api/imports/1/cancel", headers=api_headers)
    assert response.status_code == 405 and response["Content-Type"] == "application/json"
    assert response.json()["status"] == 405


# -- 500 ---------------------------------------------------------------------------------


def test_the_500_page_needs_no_database_and_no_request_context(django_assert_num_queries, db):
    request = RequestFactory().get("/imports/1")
    with django_assert_num_queries(0):
        try:
            raise RuntimeError("a bug")
        except RuntimeError:
            assert sys.exc_info()[0] is RuntimeError
            response = errors.server_error(request)
    assert response.status_code == 500
    html = response.content.decode()
    assert '<html lang="en">' in html
    assert "<title>Something went wrong · VM Import Portal</title>" in html
    assert "<main" in html and "<h1>Something went wrong</h1>" in html
    assert '<a href="/">Back to your imports</a>' in html
    assert "a bug" not in html


def test_a_bug_in_a_page_is_the_500_page_and_under_the_api_json(
    user_client, api_headers, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("imports.views.in_flight_ids", broken)
    user_client.raise_request_exception = False
    response = user_client.get("/")
    assert response.status_code == 500
    assert "<title>Something went wrong · VM Import Portal</title>" in response.content.decode()
    answer = errors.server_error(RequestFactory().get("/api/imports"))
    assert answer.status_code == 500 and answer["Content-Type"] == "application/json"


# -- the password change pages -----------------------------------------------------------


def test_the_password_change_page_is_the_portals(user_client, user):
    response = user_client.get(reverse("password_change"))
    html = assert_portal_page(response, 200, "Change your password")
    assert "Django" not in html and "/admin/" not in html  # not the admin's templates
    assert user.username in html
    for field in ("old_password", "new_password1", "new_password2"):
        assert f'<label for="id_{field}">' in html
    described = assert_descriptions_exist(html)
    assert described["new_password1"] == ["id_new_password1_helptext"]
    assert f'href="{reverse("notifications:profile")}"' in html


def test_password_change_errors_are_tied_to_their_fields(user_client, user):
    response = user_client.post(
        reverse("password_change"),
        {"old_password": "wrong", "new_password1": "a", "new_password2": "b"},
    )
    html = assert_portal_page(response, 200, "Change your password")
    assert 'role="alert">Your password was not changed' in html
    described = assert_descriptions_exist(html)
    assert "id_old_password_error" in described["old_password"]
    assert "id_new_password2_error" in described["new_password2"]
    assert 'aria-invalid="true"' in html
    assert "Your old password was entered incorrectly." in html
    user.refresh_from_db()
    assert user.check_password("pw-alice")


def test_changing_the_password_ends_on_the_portals_done_page(user_client, user):
    response = user_client.post(
        reverse("password_change"),
        {
            "old_password": "pw-alice",
            "new_password1": "a-much-better-passphrase",
            "new_password2": "a-much-better-passphrase",
        },
        follow=True,
    )
    assert response.redirect_chain == [(reverse("password_change_done"), 302)]
    html = assert_portal_page(response, 200, "Password changed")
    assert f'href="{reverse("notifications:profile")}"' in html
    assert f'href="{reverse("imports:history")}"' in html
    user.refresh_from_db()
    assert user.check_password("a-much-better-passphrase")
    assert user_client.get("/").status_code == 200  # still signed in here


def test_a_viewer_sees_no_admin_link_on_the_password_pages(client, team):
    viewer = make_member("victor", team, role=Membership.Role.VIEWER)
    client.force_login(viewer)
    for name in ("password_change", "password_change_done"):
        assert "/admin/" not in client.get(reverse(name)).content.decode()


def test_with_debug_on_a_404_is_still_the_portals_page(user_client, settings):
    # make run runs with DEBUG on: Django's own 404 page lists every URL
    # pattern, where a person following a stale link needs the way back.
    settings.DEBUG = True
    for path in ("/imports/999999", "/no/such/page"):
        html = assert_portal_page(user_client.get(path), 404, "Not found")
        assert "it belongs to another team" in html
        assert "URLconf" not in html
    unknown = user_client.get("/api/no-such-resource")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "There is no such API resource; see /api/openapi.json."
    # htmx and fetch() keep their bare answer.
    assert user_client.get("/imports/999999", headers={"HX-Request": "true"}).status_code == 404
