"""Keyset pages: newest first, cursors both ways, a capped count, old page numbers."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from imports import paging
from imports.models import ImageImport

from .factories import make_import


@pytest.fixture
def imports(team, user):
    """Seven imports a minute apart, two of them at the very same moment (ties by id)."""
    start = timezone.now() - timedelta(hours=1)
    rows = [make_import(team, user, created_at=start + timedelta(minutes=n)) for n in range(6)]
    rows.append(make_import(team, user, created_at=rows[-1].created_at))
    return sorted(rows, key=lambda row: (row.created_at, row.pk), reverse=True)


def walk(size, search=False, **cursor):
    return paging.keyset_page(ImageImport.objects.all(), size=size, search=search, **cursor)


def test_pages_walk_older_and_back_newer_without_gaps_or_repeats(imports):
    first = walk(3)
    second = walk(3, older_than=first.older)
    third = walk(3, older_than=second.older)
    assert [*first, *second, *third] == imports
    assert first.newer is None and third.older is None
    back = walk(3, newer_than=second.newer)
    assert list(back) == list(first)
    assert back.newer is None  # nothing newer than the first page


def test_the_count_is_capped(imports, monkeypatch):
    monkeypatch.setattr(paging, "COUNT_CAP", 5)
    page = walk(3)
    assert page.count_capped and page.count_words == "more than 5"
    monkeypatch.setattr(paging, "COUNT_CAP", 50)
    assert walk(3).count_words == "7"


@pytest.mark.parametrize(
    "search, cap",
    [(False, 50), (True, 50), (True, 2)],
    ids=["count and page", "a search within the cap: the keys", "a search past the cap"],
)
def test_every_way_to_a_page_walks_the_same_rows(imports, monkeypatch, search, cap):
    # A search within the cap takes its page from the keys fetched for the
    # count; otherwise the page has its own query. All must agree.
    monkeypatch.setattr(paging, "COUNT_CAP", cap)
    first = walk(3, search)
    second = walk(3, search, older_than=first.older)
    third = walk(3, search, older_than=second.older)
    assert [*first, *second, *third] == imports
    assert list(walk(3, search, newer_than=third.newer)) == list(second)
    assert list(walk(3, search, page="2")) == imports[3:6]
    assert (first.count_capped, first.count_words) == (
        (False, "7") if cap == 50 else (True, "more than 2")
    )


def test_a_search_is_evaluated_once_per_page(imports):
    # One statement finds the matches' keys (the count and the page), the
    # other reads the page's rows by primary key, without the search.
    searched = ImageImport.objects.filter(name__icontains=imports[0].name[:4])
    with CaptureQueriesContext(connection) as queries:
        page = paging.keyset_page(searched, size=3, search=True)
    assert list(page) == imports[:3]
    assert [" LIKE " in query["sql"] for query in queries] == [True, False]


def test_the_old_page_numbers_still_work(imports):
    assert list(walk(3, page="2")) == imports[3:6]
    assert walk(3, page="2").newer is not None


@pytest.mark.parametrize(
    "cursor",
    [
        "x",
        "",
        "²",
        "MjAyNi0xMS0yOFQwMDowMDowMHw-MQ",
        "bm90aGluZw",
        "%00",
        "OTk5OS0xMi0zMVQyMzo1OTo1OS0xNDowMHwx",  # unsealed: no check
        paging.seal("9999-12-31T23:59:59-14:00|1"),  # past year 9999 in UTC
        paging.seal("2026-11-28T00:00:00|1"),  # a moment in no zone
        paging.seal("2026-11-28T00:00:00+00:00|²"),
    ],
)
def test_a_cursor_this_portal_did_not_make_is_refused(cursor):
    with pytest.raises(paging.BadCursor):
        paging.decode_cursor(cursor)


def test_a_cursor_cut_short_or_mistyped_is_refused_not_read_as_another():
    cursor = paging.encode_cursor(ImageImport(pk=12, created_at=timezone.now()))
    for length in range(len(cursor)):
        with pytest.raises(paging.BadCursor):
            paging.decode_cursor(cursor[:length])
    meant = paging.decode_cursor(cursor)
    for position in range(len(cursor)):
        for typo in "AB_-z9":
            mistyped = cursor[:position] + typo + cursor[position + 1 :]
            try:
                read = paging.decode_cursor(mistyped)
            except paging.BadCursor:
                continue
            # Only a change in base64's unused last bits reads at all: as the same.
            assert read == meant, mistyped


@pytest.mark.parametrize(
    "page", ["0", "-1", "²", "1" * 40, "abc", "1001", "0001000000000000000000"]
)
def test_a_page_number_out_of_range_is_refused(db, page):
    with pytest.raises(paging.BadCursor):
        walk(3, page=page)


def test_one_position_at_a_time(imports):
    first = walk(3)
    with pytest.raises(paging.BadCursor):
        walk(3, older_than=first.older, page="2")
    with pytest.raises(paging.BadCursor):
        walk(3, older_than=first.older, newer_than=first.older)


def test_the_cursor_is_read_back_in_utc():
    moment = timezone.now()
    created_at, _ = paging.decode_cursor(paging.encode_cursor(ImageImport(pk=7, created_at=moment)))
    assert created_at == moment and created_at.utcoffset() == timedelta(0)


def test_the_history_answers_400_for_a_bad_cursor(user_client):
    assert user_client.get("/", {"older": "not-a-cursor"}).status_code == 400
    assert user_client.get("/", {"page": "²"}).status_code == 400


def test_the_history_links_to_older_and_newer_pages(user_client, team, user, settings):
    settings.HISTORY_PAGE_SIZE = 2
    for _ in range(3):
        make_import(team, user)
    first = user_client.get("/")
    older = first.context["page"].older
    assert f"older={older}" in first.content.decode()
    second = user_client.get("/", {"older": older})
    assert len(second.context["page"]) == 1
    assert f"newer={second.context['page'].newer}" in second.content.decode()


def test_the_history_pages_keep_the_valid_filters_only(user_client, team, user, settings):
    # A filter a stale link made wrong is left out of the page; its pager's
    # links carried it on all the same, escaped, page after page.
    settings.HISTORY_PAGE_SIZE = 1
    for _ in range(2):
        make_import(team, user, name="web server")
    first = user_client.get("/", {"status": "done<", "q": "web", "platform": "Linux"})

    older = first.context["page"].older
    assert f'href="?platform=Linux&amp;q=web&amp;older={older}"' in first.content.decode()
    assert "done" not in first.context["filter_query"]
