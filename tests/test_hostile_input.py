"""Hostile input: each class a fuzzer found turns into a 400 that says what is wrong.

One test (or more) per class from issue 11: lone surrogates, deep nesting,
digits that are not ASCII, NUL bytes, and more tag rows than allowed; and
the JSON error shape of every answer under /api/.
"""

import json

import pytest
from django.db import OperationalError
from django.test import Client
from django.urls import reverse

from imports import api, teams
from imports.errors import byte_size
from imports.forms import tag_formset_data
from imports.inputs import MAX_JSON_DEPTH, parse_int, text_problem
from imports.models import ApiToken, AuditEvent, ImageImport

from .factories import valid_payload

HTMX = {"HX-Request": "true"}


def post_json(client, body, headers):
    return client.post("/api/imports", body, content_type="application/json", headers=headers)


def assert_api_error(response, status):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    return body


# -- lone surrogates ------------------------------------------------------------


@pytest.mark.parametrize(
    "member, escaped",
    [
        ("name", '"\\ud800"'),
        ("description", '"before \\udfff after"'),
        ("tags", '{"team": "\\ud83d"}'),
        ("tags", '{"\\ud800key": "value"}'),
    ],
)
def test_a_lone_surrogate_in_the_json_is_a_400_and_nothing_is_stored(
    client, api_headers, member, escaped
):
    body = json.dumps(valid_payload(**{member: None}))[:-1] + f', "{member}": {escaped}}}'
    response = post_json(client, body, api_headers)
    assert "lone surrogate" in assert_api_error(response, 400)["error"]
    assert not ImageImport.objects.exists()


def test_a_proper_surrogate_pair_is_an_ordinary_character(client, api_headers):
    body = json.dumps(valid_payload(name=None))[:-1] + ', "name": "rocket \\ud83d\\ude80"}'
    response = post_json(client, body, api_headers)
    assert response.status_code == 201
    assert response.json()["name"] == "rocket \U0001f680"


# -- deep nesting ----------------------------------------------------------------


def test_json_nested_five_thousand_deep_is_a_400(client, api_headers):
    response = post_json(client, "[" * 5000, api_headers)
    assert "nested too deeply" in assert_api_error(response, 400)["error"]


def test_json_nested_beyond_the_bound_but_within_pythons_is_a_400(client, api_headers):
    deep = "[" * (MAX_JSON_DEPTH + 5) + "]" * (MAX_JSON_DEPTH + 5)
    body = json.dumps(valid_payload())[:-1] + f', "tags": {{"a": {deep}}}}}'
    response = post_json(client, body, api_headers)
    assert "nested more than" in assert_api_error(response, 400)["error"]


# -- digits that are not ASCII, and numbers of thousands of digits ---------------


@pytest.mark.parametrize("index", ["²", "٣", "１", "1" * 4400])
def test_the_validation_urls_row_number_must_be_ascii_digits(user_client, index):
    url = reverse("imports:validate", args=[f"tags-{index}-key"])
    response = user_client.post(url, tag_formset_data([("a", "b")]), headers=HTMX)
    assert response.status_code == 400
    assert b"row number" in response.content


@pytest.mark.parametrize("index", ["²", "٣", "1" * 4400, "-1", ""])
def test_a_tag_row_button_with_a_bad_row_number_is_a_400(user_client, index):
    data = {**valid_payload(), **tag_formset_data([("a", "b")]), "tags_action": f"remove-{index}"}
    response = user_client.post(reverse("imports:new"), data)
    assert response.status_code == 400
    assert b"remove-&lt;row number&gt;" in response.content or b"remove-<row number>" in (
        response.content
    )


def test_a_tag_row_button_still_removes_a_row(user_client):
    rows = [("keep", "1"), ("drop", "2")]
    data = {**valid_payload(), **tag_formset_data(rows), "tags_action": "remove-1"}
    response = user_client.post(reverse("imports:new"), data, headers=HTMX)
    assert response.status_code == 200
    assert b"keep" in response.content and b"drop" not in response.content


def test_a_form_body_is_told_to_send_json(client, api_headers):
    response = client.post(
        "/api/imports",
        "name=web&platform=Linux",
        content_type="application/x-www-form-urlencoded",
        headers=api_headers,
    )
    error = assert_api_error(response, 400)["error"]
    assert error.startswith("The request body is not valid JSON")
    assert error.endswith(
        "(It was sent as application/x-www-form-urlencoded: send a JSON object, "
        "Content-Type: application/json.)"
    )
    # JSON sent without its type is still read: curl -d says form-urlencoded.
    body = json.dumps(valid_payload())
    answer = client.post("/api/imports", body, content_type="text/plain", headers=api_headers)
    assert answer.status_code == 201


def test_a_json_number_of_thousands_of_digits_is_a_400_in_plain_words(client, api_headers):
    body = json.dumps(valid_payload())[:-1] + ', "tags": {"a": ' + "1" * 5000 + "}}"
    response = post_json(client, body, api_headers)
    error = assert_api_error(response, 400)["error"]
    assert error == "The request body holds a number too long to read."


@pytest.mark.parametrize("text", ["²", "٣", "１", "1" * 19, "-1", "+1", " 1", "1e3", ""])
def test_parse_int_takes_only_short_ascii_digits(text):
    assert parse_int(text) is None


def test_parse_int_reads_ascii_digits():
    assert parse_int("0042") == 42


@pytest.mark.parametrize("page", ["²", "1" * 4400, "1e400", "-1", "\u0661"])
def test_a_strange_page_number_is_a_400_that_says_so(user_client, client, api_headers, page):
    response = user_client.get("/", {"page": page})
    assert response.status_code == 400
    assert "page must be a whole number" in response.content.decode()
    answer = Client().get("/api/imports", {"page": page}, headers=api_headers)
    assert answer.status_code == 400  # the API agrees, in its error shape
    assert answer.json() == {"error": response.context["message"], "status": 400}


def test_a_team_switch_with_unicode_digits_is_refused(user_client, team):
    response = user_client.post(reverse("imports:switch_team"), {"team": "١"})
    assert response.status_code == 400


# -- NUL bytes ----------------------------------------------------------------------


@pytest.mark.parametrize("query", ["q=%00", "platform=%00", "status=%00", "q=a%00b", "%00=1"])
def test_a_nul_in_the_history_filters_is_a_400(user_client, query):
    response = user_client.get("/?" + query)
    assert response.status_code == 400
    assert b"NUL" in response.content


@pytest.mark.parametrize("query", ["q=%00", "status=%00", "q=a%00b"])
def test_a_nul_in_the_api_lists_filters_is_a_400_in_json(client, api_headers, query):
    response = client.get("/api/imports?" + query, headers=api_headers)
    assert response.status_code == 400
    assert "NUL" in response.json()["error"]


def test_a_nul_in_a_form_field_is_a_400_before_any_query(user_client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = user_client.post(reverse("imports:new"), {"name": "a\x00b"})
    assert response.status_code == 400


def test_a_nul_at_sign_in_is_a_400(client, db):
    response = client.post(reverse("login"), {"username": "a\x00", "password": "x"})
    assert response.status_code == 400


def test_a_nul_in_the_json_is_a_400(client, api_headers):
    response = post_json(client, json.dumps(valid_payload(name="a\x00b")), api_headers)
    assert "NUL" in assert_api_error(response, 400)["error"]


def test_a_nul_in_an_api_query_parameter_is_a_json_400(client, api_headers):
    response = client.get("/api/imports?page=%00", headers=api_headers)
    assert_api_error(response, 400)


def test_text_problem_names_the_problem():
    assert text_problem("fine ✓") == ""
    assert "NUL" in text_problem("\x00")
    assert "surrogate" in text_problem("\ud800")


# -- the tag rows are capped at the API's 50 ---------------------------------------


def test_a_form_post_claiming_a_thousand_tag_rows_is_refused_small(user_client):
    data = {**valid_payload(), **tag_formset_data([("k", "v")])}
    data["tags-TOTAL_FORMS"] = "1000"
    response = user_client.post(reverse("imports:new"), data)
    assert response.status_code == 200
    assert b"At most 50 tags are allowed" in response.content
    assert len(response.content) < 200_000
    assert not ImageImport.objects.exists()


def test_adding_a_tag_row_stops_at_fifty(user_client):
    rows = [(f"k{i}", "v") for i in range(50)]
    data = {**valid_payload(), **tag_formset_data(rows), "tags_action": "add"}
    response = user_client.post(reverse("imports:new"), data, headers=HTMX)
    assert response.status_code == 200
    assert b'name="tags-50-key"' not in response.content
    assert b'name="tags-49-key"' in response.content


def test_fifty_tags_are_still_accepted(user_client):
    rows = [(f"k{i}", "v") for i in range(50)]
    response = user_client.post(
        reverse("imports:new"), {**valid_payload(), **tag_formset_data(rows)}
    )
    assert response.status_code == 302
    assert len(ImageImport.objects.get().tags) == 50


# -- bounded sizes --------------------------------------------------------------------


def padded_to(size, payload):
    """The payload as JSON of exactly `size` bytes (JSON allows trailing whitespace)."""
    body = json.dumps(payload)
    return body + " " * (size - len(body))


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_body_one_byte_over_the_limit_is_a_json_413_and_nothing_is_recorded(
    client, api_headers, settings, debug, content_type
):
    settings.DEBUG = debug  # with DEBUG on, Django's own page once answered (HTML, settings)
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    events = AuditEvent.objects.count()  # issuing the token is one
    body = padded_to(limit + 1, valid_payload())
    response = client.post("/api/imports", body, content_type=content_type, headers=api_headers)
    error = assert_api_error(response, 413)["error"]
    assert error == ("The request body is larger than the 256 KiB (262,144 bytes) the API accepts.")
    assert not ImageImport.objects.exists()
    assert AuditEvent.objects.count() == events
    assert ApiToken.objects.get().last_used_at is None


def test_the_limit_is_named_in_the_units_of_the_setting(client, api_headers, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = int(2.5 * 1024 * 1024)
    response = post_json(client, padded_to(int(2.5 * 1024 * 1024) + 1, {}), api_headers)
    assert "larger than the 2.5 MiB (2,621,440 bytes)" in assert_api_error(response, 413)["error"]


@pytest.mark.parametrize(
    "size, text",
    [
        (1000, "1000 bytes"),
        (1024, "1 KiB"),
        (1536, "1.5 KiB"),
        (2**30, "1 GiB"),
        (5 * 2**40, "5 TiB"),  # S3's largest object
        (2**60, "1048576 TiB"),
    ],
)
def test_byte_sizes_read_as_people_read_them(size, text):
    assert byte_size(size) == text


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
def test_a_body_at_the_limit_is_judged_on_its_content(client, api_headers, settings, debug):
    settings.DEBUG = debug
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = post_json(client, padded_to(limit, valid_payload()), api_headers)
    assert response.status_code == 201, response.content[:300]
    too_long = valid_payload(description="x" * (limit - 1000))
    response = post_json(client, padded_to(limit, too_long), api_headers)
    assert "description" in assert_api_error(response, 400)["errors"]
    assert ImageImport.objects.count() == 1


def test_a_too_large_form_on_a_page_is_still_django_s_400(user_client, settings):
    body = "name=" + "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = user_client.post(
        reverse("imports:new"), body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert not ImageImport.objects.exists()


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
def test_a_form_with_too_many_fields_is_a_json_400_under_the_api(
    client, api_headers, settings, debug
):
    settings.DEBUG = debug
    data = {f"field{i}": "x" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    response = client.post("/api/imports", data, headers=api_headers)
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in assert_api_error(response, 400)["error"]


def test_a_form_with_too_many_fields_is_a_400(user_client, settings):
    data = {f"field{i}": "x" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    response = user_client.post(reverse("imports:new"), data)
    assert response.status_code == 400


def test_the_upload_limits_are_set_deliberately(settings):
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 256 * 1024
    assert settings.DATA_UPLOAD_MAX_NUMBER_FIELDS == 200
    assert settings.DATA_UPLOAD_MAX_NUMBER_FILES == 1


# -- one JSON error shape under /api/ ---------------------------------------------------


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/nothing-here"),
        ("get", "/api/imports/not-a-number"),
        ("get", "/api/imports/-1"),
        ("get", "/api/imports/"),
        ("post", "/api/imports/2/retry"),
        ("get", "/api/"),
    ],
)
def test_an_unknown_api_url_is_a_json_404(client, settings, debug, method, path):
    # With DEBUG on (make run) Django answers an unresolved URL with its
    # HTML page before handler404 is asked.
    settings.DEBUG = debug
    assert_api_error(getattr(client, method)(path), 404)


def test_a_wrong_method_is_a_json_405(client, api_headers):
    response = client.delete("/api/imports", headers=api_headers)
    assert_api_error(response, 405)
    assert response["Allow"] == "GET, POST"


def test_an_unexpected_error_is_a_json_500(image_import, api_headers, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(api, "serialize", broken)
    response = Client(raise_request_exception=False).get("/api/imports", headers=api_headers)
    body = assert_api_error(response, 500)
    assert "a bug" not in body["error"]


# With DEBUG on (make run) too: Django answered with its debug page there.
@pytest.mark.parametrize("debug", [False, True])
def test_a_database_outage_under_api_is_a_json_503_with_retry_after(
    api_headers, monkeypatch, settings, debug
):
    settings.DEBUG = debug

    def refused(*args, **kwargs):
        raise OperationalError("connection to server at 10.0.0.5 failed: Connection refused")

    monkeypatch.setattr(api.ApiToken, "authenticate", refused)
    response = Client(raise_request_exception=False).get("/api/imports", headers=api_headers)
    body = assert_api_error(response, 503)
    assert "database" in body["error"]
    assert "10.0.0.5" not in body["error"]
    assert int(response["Retry-After"]) > 0


@pytest.mark.parametrize("debug", [False, True])
def test_a_database_outage_on_a_page_is_a_503_page_that_says_so(user, monkeypatch, settings, debug):
    settings.DEBUG = debug
    client = Client(raise_request_exception=False)
    client.force_login(user)

    def refused(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(teams, "current_membership", refused)
    response = client.get("/")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert b"cannot reach its database" in response.content
    assert int(response["Retry-After"]) > 0


def test_an_unexpected_error_on_a_page_is_still_a_500(user, monkeypatch):
    client = Client(raise_request_exception=False)
    client.force_login(user)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(teams, "current_membership", broken)
    assert client.get("/").status_code == 500


@pytest.mark.parametrize(
    "next_url", ["abc", "-1", "0", "//evil.example/x", "https://evil.example/"]
)
def test_a_team_switch_goes_back_only_to_a_path_of_the_portals(user_client, team, next_url):
    # "abc" read as a view's name was a 500; another site is never a destination.
    response = user_client.post(reverse("imports:switch_team"), {"team": team.pk, "next": next_url})
    assert response.status_code == 302
    assert response["Location"] == reverse("imports:history")


@pytest.mark.parametrize("path", ["/api/imports", "/accounts/login/", "/imports/new"])
@pytest.mark.parametrize("debug", [False, True])
def test_a_form_body_in_another_charset_is_a_400(settings, path, debug):
    # Django's own refusal broke its debug page (make run): a bare 500.
    settings.DEBUG = debug
    response = Client(raise_request_exception=False).post(
        path, b"a=1", content_type="application/x-www-form-urlencoded; charset=utf-16"
    )
    assert response.status_code == 400
    assert "must be UTF-8 encoded" in response.content.decode()


def test_a_chunked_body_is_told_to_send_a_content_length(api_headers):
    # Django reads no chunked body (the server gives it none): not "empty".
    response = Client().post(
        "/api/imports",
        "",
        content_type="application/json",
        headers={**api_headers, "Transfer-Encoding": "chunked"},
    )
    assert_api_error(response, 411)
    assert "Content-Length" in response.json()["error"]
