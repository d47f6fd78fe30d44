"""GET /api/imports a page at a time: `next` URLs with keyset cursors, `page=N` as before.

The rule is the history's (imports/paging.py); these tests hold the API to
it: every import exactly once while others arrive, a 400 in the API's one
error shape for a cursor or page the portal did not make, and a number of
queries that does not grow with the number of rows.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from imports import paging
from imports.models import Status

from .factories import make_import

URL = "/api/imports"


@pytest.fixture
def small_pages(settings):
    settings.API_PAGE_SIZE = 3


def make_imports(team, user, count, *, start=None):
    """`count` imports a minute apart, the last two at the very same moment (ties by id)."""
    start = start or timezone.now() - timedelta(days=1)
    rows = [make_import(team, user, created_at=start + timedelta(minutes=n)) for n in range(count)]
    rows[-1].created_at = rows[-2].created_at
    rows[-1].save(update_fields=["created_at"])
    return rows


def newest_first(rows):
    return [row.pk for row in sorted(rows, key=lambda row: (row.created_at, row.pk), reverse=True)]


def ids(body):
    return [item["id"] for item in body["results"]]


def test_the_first_page_is_the_newest_with_a_next_url(client, api_headers, team, user, small_pages):
    rows = make_imports(team, user, 5)
    response = client.get(URL, headers=api_headers)
    assert response.status_code == 200
    body = response.json()
    assert ids(body) == newest_first(rows)[:3]
    assert body["count"] == 5 and body["countCapped"] is False
    assert body["next"].startswith("http://testserver/api/imports?older=")
    assert body["previous"] is None


def test_following_next_lists_every_import_once_while_new_ones_arrive(
    client, api_headers, team, user, small_pages
):
    rows = make_imports(team, user, 8)
    seen, url, pages = [], URL, 0
    while url:
        body = client.get(url, headers=api_headers).json()
        seen += ids(body)
        url = body["next"]
        pages += 1
        # Two more arrive between each request: with page numbers they would
        # push rows already listed onto the next page.
        make_import(team, user)
        make_import(team, user)
    assert seen == newest_first(rows)  # no repeat, no gap, none of the new ones
    assert pages == 3
    last = body
    back = client.get(last["previous"], headers=api_headers).json()
    assert ids(back) == newest_first(rows)[3:6]


def test_the_count_stops_at_the_cap(client, api_headers, team, user, small_pages, monkeypatch):
    from imports import paging

    monkeypatch.setattr(paging, "COUNT_CAP", 4)
    make_imports(team, user, 6)
    body = client.get(URL, headers=api_headers).json()
    assert (body["count"], body["countCapped"]) == (4, True)


def test_page_numbers_still_work_and_lead_on_to_cursors(
    client, api_headers, team, user, small_pages
):
    rows = newest_first(make_imports(team, user, 8))
    second = client.get(URL, {"page": "2"}, headers=api_headers).json()
    assert ids(second) == rows[3:6]
    third = client.get(second["next"], headers=api_headers).json()
    assert ids(third) == rows[6:]
    assert third["next"] is None
    assert ids(client.get(second["previous"], headers=api_headers).json()) == rows[:3]
    beyond = client.get(URL, {"page": "9"}, headers=api_headers).json()
    assert beyond["results"] == [] and beyond["next"] is None


def test_next_and_previous_carry_their_cursor_alone(client, api_headers, team, user, small_pages):
    # Any other query parameter is a 400 (tests/test_api.py): none to carry.
    make_imports(team, user, 8)
    body = client.get(URL, {"page": "2"}, headers=api_headers).json()
    assert body["next"].startswith("http://testserver/api/imports?older=")
    assert "&" not in body["next"] and "page=" not in body["next"]
    assert body["previous"].startswith("http://testserver/api/imports?newer=")
    assert "&" not in body["previous"]


@pytest.mark.parametrize(
    "query",
    [
        {"older": "not-a-cursor"},
        {"newer": "bm90aGluZw"},
        {"older": "²"},
        # A moment this far in another zone overflows when turned into UTC.
        {"older": paging.seal("9999-12-31T23:59:59-14:00|1")},
        {"page": "0"},
        {"page": "abc"},
        {"page": "1001"},
        {"page": "-1"},
        {"page": "0001000000000000000000"},
        {"page": "2", "older": "MjAyNi0wMS0wMVQwMDowMDowMCswMDowMHwx"},
    ],
)
def test_a_malformed_cursor_or_page_is_a_400_in_the_api_error_shape(
    client, api_headers, image_import, query
):
    response = client.get(URL, query, headers=api_headers)
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400
    assert body["error"].endswith(".") and len(body["error"]) < 200


def test_the_history_and_the_api_refuse_the_same_page(client, user_client, api_headers):
    for page in ("0", "abc"):
        assert user_client.get("/", {"page": page}).status_code == 400
        assert client.get(URL, {"page": page}, headers=api_headers).status_code == 400


# -- the history's filters ----------------------------------------------------------


@pytest.fixture
def filterable(team, user):
    """Three imports that the filters tell apart, oldest first."""
    start = timezone.now() - timedelta(hours=1)
    return {
        "alpha": make_import(
            team, user, Status.AVAILABLE, name="Alpha", platform="Windows", created_at=start
        ),
        "beta": make_import(
            team,
            user,
            Status.FAILED,
            name="Beta",
            vm_import_task_id="import-ami-beta",
            created_at=start + timedelta(minutes=1),
        ),
        "gamma": make_import(
            team, user, Status.FAILED, name="Gamma", created_at=start + timedelta(minutes=2)
        ),
    }


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"status": "failed"}, ["gamma", "beta"]),
        ({"platform": "Windows"}, ["alpha"]),
        ({"q": "alp"}, ["alpha"]),
        ({"q": " import-ami-beta "}, ["beta"]),  # spaces around it ignored, as on the page
        ({"status": "failed", "q": "gam"}, ["gamma"]),
        ({"status": "queued"}, []),
        ({"status": "", "platform": "", "q": ""}, ["gamma", "beta", "alpha"]),
    ],
)
def test_the_list_and_the_history_filter_by_one_rule(
    client, user_client, api_headers, filterable, query, expected
):
    from_api = ids(client.get(URL, query, headers=api_headers).json())
    from_page = [row.pk for row in user_client.get("/", query).context["page"]]
    assert from_api == from_page == [filterable[name].pk for name in expected]


def test_a_client_token_matches_whole(client, api_headers, filterable):
    token = filterable["beta"].client_token
    assert ids(client.get(URL, {"q": token}, headers=api_headers).json()) == [filterable["beta"].pk]
    assert ids(client.get(URL, {"q": token[1:]}, headers=api_headers).json()) == []


def test_next_keeps_the_filters_and_walks_only_the_matches(
    client, api_headers, team, user, small_pages
):
    failed = [make_import(team, user, Status.FAILED, name=f"failed {n}") for n in range(5)]
    make_imports(team, user, 4)  # queued: never listed
    body = client.get(URL, {"status": "failed"}, headers=api_headers).json()
    assert body["count"] == 5 and "status=failed" in body["next"]
    walked = ids(body)
    while body["next"]:
        body = client.get(body["next"], headers=api_headers).json()
        walked += ids(body)
    assert walked == newest_first(failed)


@pytest.mark.parametrize(
    "query, member, message",
    [
        (
            {"status": "done"},
            "status",
            "status must be one of uploading, queued, submitting, importing, available, "
            "failed, cancelled; not done.",
        ),
        ({"status": "Failed"}, "status", "not Failed."),  # the values are lower case
        ({"platform": "linux"}, "platform", "platform must be one of Windows, Linux, macOS"),
    ],
)
def test_a_filter_value_the_list_does_not_know_is_a_400_naming_the_values(
    client, api_headers, image_import, query, member, message
):
    response = client.get(URL, query, headers=api_headers)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == f"The request is invalid; see errors ({member})."
    [problem] = body["errors"][member]
    assert message in problem


def test_the_history_leaves_out_a_filter_it_does_not_offer(user_client, filterable):
    # The page's selects offer only valid values: a hand-made link is shown
    # everything it did not narrow, not an error page.
    page = user_client.get("/", {"status": "done", "platform": "Solaris"})
    assert page.status_code == 200
    assert len(page.context["page"]) == 3
    assert page.context["filters"] == {"status": "", "platform": "", "q": ""}


def test_the_number_of_queries_does_not_grow_with_the_rows(
    client, api_headers, team, user, settings
):
    settings.API_PAGE_SIZE = 50

    def queries_for_a_page():
        client.get(URL, headers=api_headers)  # the token's last_used_at written once
        with CaptureQueriesContext(connection) as first:
            client.get(URL, headers=api_headers)
        body = client.get(URL, headers=api_headers).json()
        with CaptureQueriesContext(connection) as following:
            client.get(body["next"] or URL, headers=api_headers)
        return len(first), len(following)

    make_imports(team, user, 3)
    few = queries_for_a_page()
    make_imports(team, user, 120)
    many = queries_for_a_page()
    assert few == many
    # The token (with its user and team), the capped count, the page.
    assert many == (3, 3)
