"""The history's filters and search, on its page and in the API's list, and its count line.

One rule for both (ImportFilterForm): a Cancelled filter apart from Failed,
a search that finds AMI IDs, the first characters of a client token and a
disk file by its name or S3 key (through indexes on PostgreSQL), and a
count line that reads as a sentence on every page.
"""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from imports import paging
from imports.api import OPENAPI
from imports.forms import AMI_DIGITS_MIN, STATUS_FILTERS, TOKEN_PREFIX_MIN, ImportFilterForm
from imports.models import ImageImport, Status

from .factories import disk_submission, make_import, valid_payload

URL = "/api/imports"
TOKEN = "0f3a9c2e-5b7d-4e11-8a90-1c2d3e4f5a6b"
AMI = "ami-0a1b2c3d4e5f60718"


def named(team, user, status=Status.QUEUED, *, name, **fields):
    """An import whose name its page and the API (which reads the payload) both say."""
    return make_import(team, user, status, payload={"name": name}, **fields)


def page_names(client, **params):
    return [row.name for row in client.get("/", params).context["page"]]


def api_names(client, headers, **params):
    response = client.get(URL, params, headers=headers)
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


# -- the Cancelled filter ----------------------------------------------------


@pytest.fixture
def ended(team, user):
    """A failed import, a cancelled one (stored failed) and an available one."""
    named(team, user, Status.AVAILABLE, name="Done")
    named(team, user, Status.FAILED, name="Broken", error_code="ClientException")
    cancelled = named(team, user, Status.QUEUED, name="Withdrawn")
    cancelled.withdraw(user=user)
    return cancelled


def test_failed_lists_the_failed_and_cancelled_the_cancelled_on_the_page(user_client, ended):
    assert page_names(user_client, status="failed") == ["Broken"]
    assert page_names(user_client, status="cancelled") == ["Withdrawn"]
    assert page_names(user_client) == ["Withdrawn", "Broken", "Done"]


def test_filters_a_link_made_wrong_are_said_to_be_left_out(user_client, ended):
    # Left out in silence, they made the page look filtered when it was not.
    response = user_client.get("/", {"status": "bogus", "platform": "Amiga", "q": "o"})
    content = response.content.decode()
    assert (
        "Left out of the filters: status “bogus” and platform “Amiga”, which the history "
        "does not know (from an old or mistyped link)."
    ) in content
    assert [row.name for row in response.context["page"]] == ["Withdrawn", "Broken", "Done"]
    assert (
        "Left out of the filters" not in user_client.get("/", {"status": "failed"}).content.decode()
    )


def test_the_page_offers_cancelled_and_keeps_it_chosen(user_client, ended):
    content = user_client.get("/", {"status": "cancelled"}).content.decode()
    assert '<option value="failed">Failed</option>' in content
    assert '<option value="cancelled" selected>Cancelled</option>' in content
    assert '<span class="status status-failed">Cancelled</span>' in content


def test_the_api_filters_cancelled_alike_and_still_says_failed_with_its_code(
    client, api_headers, ended
):
    assert api_names(client, api_headers, status="failed") == ["Broken"]
    [cancelled] = client.get(URL, {"status": "cancelled"}, headers=api_headers).json()["results"]
    assert cancelled["name"] == "Withdrawn"
    assert cancelled["status"] == "failed"
    assert cancelled["error"]["code"] == "Cancelled"


def test_the_api_names_cancelled_among_the_values_it_takes(client, api_headers, ended):
    response = client.get(URL, {"status": "Cancelled"}, headers=api_headers)
    assert response.status_code == 400
    assert response.json()["errors"]["status"] == [
        "status must be one of uploading, queued, submitting, importing, available, failed, "
        "cancelled; not Cancelled."
    ]


def test_the_openapi_description_lists_the_filters_values_and_the_searchs_lengths():
    parameters = {
        parameter["name"]: parameter
        for parameter in OPENAPI["paths"]["/api/imports"]["get"]["parameters"]
    }
    assert parameters["status"]["schema"]["enum"] == ["", *STATUS_FILTERS]
    search = parameters["q"]["description"]
    assert f"from ami- and its first {AMI_DIGITS_MIN} digits" in search
    assert f"a client token from its first {TOKEN_PREFIX_MIN} characters" in search


def test_the_status_filters_keep_the_status_condition_the_index_finds(team):
    # Each filter compares `status` for equality, which the index (team,
    # status) answers; the error code only narrows the rows it finds.
    for status in ("failed", "cancelled"):
        form = ImportFilterForm({"status": status})
        assert form.is_valid()
        sql = str(form.narrow(ImageImport.objects.filter(team=team)).query)
        assert '"imports_imageimport"."status" = failed' in sql, sql


# -- the search --------------------------------------------------------------


@pytest.fixture
def searchable(team, user):
    """An import with an AMI and a UUID token, one with a short token of its own, one other."""
    named(
        team,
        user,
        Status.AVAILABLE,
        name="Web",
        client_token=TOKEN,
        amis=[{"region": "eu-west-1", "image": AMI, "accountId": "123456789012"}],
    )
    named(team, user, name="Short", client_token="ab1")
    named(team, user, name="Other", client_token="ffff0000-1111-4222-8333-444455556666")


@pytest.mark.parametrize(
    "query, found",
    [
        (AMI, ["Web"]),
        (AMI.upper(), ["Web"]),
        (AMI[:8], ["Web"]),  # ami- and its first 4 digits
        (AMI[:7], []),  # fewer: every new AMI ID starts ami-0
        (f"  {AMI}  ", ["Web"]),  # pasted with spaces
        ("ami-0a1b2c3d4e5f60719", []),  # another AMI
        ("a1b2c3d4e5f60718", []),  # not an AMI ID: ami- missing
        ("image", []),  # JSON's member names are not searched
        ("eu-west-1", []),  # nor the regions
        (TOKEN[:TOKEN_PREFIX_MIN], ["Web"]),
        (TOKEN[:8].upper(), ["Web"]),
        (TOKEN, ["Web"]),
        (TOKEN[: TOKEN_PREFIX_MIN - 1], []),  # too short to be a prefix
        (TOKEN[4:12], []),  # the middle of a token is not its start
        ("ab1", ["Short"]),  # a whole token, however short
    ],
)
def test_the_search_finds_ami_ids_and_client_token_prefixes(
    user_client, client, api_headers, searchable, query, found
):
    assert page_names(user_client, q=query) == found
    assert api_names(client, api_headers, q=query) == found


def disk_import(team, user, *, name, key):
    """An import of the disk file at `key`, recorded as a submit records it."""
    submission = disk_submission(key=key)
    submission["payload"] = valid_payload(
        vmImportTaskId=None, name=name, clientToken=str(uuid.uuid4())
    )
    image_import, _ = ImageImport.submit(team=team, user=user, **submission)
    return image_import


@pytest.fixture
def disk_files(team, user):
    disk_import(team, user, name="Web", key="portal/0f3a9c2e/web-server-2024.ova")
    disk_import(team, user, name="Db", key="exports/db-primary.vmdk")


@pytest.mark.parametrize(
    "query, found",
    [
        ("web-server-2024", ["Web"]),
        ("WEB-SERVER-2024.OVA", ["Web"]),
        ("db-primary", ["Db"]),
        (".vmdk", ["Db"]),
        ("exports/", ["Db"]),  # a folder of the bucket
        ("S3Key", []),  # the request's member names are not searched
        ("DiskContainers", []),
    ],
)
def test_the_search_finds_a_disk_file_by_its_name_or_key(
    user_client, client, api_headers, disk_files, query, found
):
    assert page_names(user_client, q=query) == found
    assert api_names(client, api_headers, q=query) == found


def test_an_ami_search_follows_the_pages(client, api_headers, team, user, settings):
    settings.API_PAGE_SIZE = 2
    for number in range(3):
        image = f"ami-0abc{number}"
        named(team, user, Status.AVAILABLE, name=f"n{number}", amis=[{"image": image}])
    body = client.get(URL, {"q": "ami-0abc"}, headers=api_headers).json()
    assert [row["name"] for row in body["results"]] == ["n2", "n1"]
    assert body["count"] == 3
    assert [
        row["name"] for row in client.get(body["next"], headers=api_headers).json()["results"]
    ] == ["n0"]


def test_the_hint_says_where_the_search_looks(user_client, team):
    content = user_client.get("/").content.decode()
    assert 'aria-describedby="filter-q-help"' in content
    assert (
        '<p class="help" id="filter-q-help">Finds part of a name, a disk file’s name or S3 key, '
        "an image ARN or a VM import task ID; an AMI ID, whole or from ami- and its first "
        f"{AMI_DIGITS_MIN} digits; a client token, whole or from its first {TOKEN_PREFIX_MIN} "
        "characters.</p>"
    ) in content


@pytest.mark.parametrize("query", [AMI, TOKEN[:8], "Web", "web-server.ova"])
def test_every_alternative_of_the_search_is_answered_by_an_index(team, user, searchable, query):
    # One alternative without an index would make the whole OR a scan of
    # the table, at 100,000 imports as at 100 (bench/history.py). Without
    # the team's condition, and with scans of the table and of a whole index
    # off, only a BitmapOr of every alternative's own index avoids one.
    if connection.vendor != "postgresql":
        pytest.skip("the trigram indexes are PostgreSQL's; the PostgreSQL pass runs this")
    form = ImportFilterForm({"q": query})
    assert form.is_valid()
    searched = form.narrow(ImageImport.objects.all()).order_by()
    sql, params = searched.values_list("created_at", "pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(line for (line,) in cursor.fetchall())
    assert "Seq Scan" not in plan, plan
    for index in ("name", "disk_key", "image_arn", "vm_import_task_id"):
        assert f"imports_search_{index}_trgm" in plan, plan
    assert "one_import_per_token" in plan, plan  # the whole token
    prefix = len(query) >= TOKEN_PREFIX_MIN
    assert ("imports_search_client_token_trgm" in plan) == prefix, plan
    assert ("imports_search_amis_trgm" in plan) == query.startswith("ami-"), plan


# -- the count line ----------------------------------------------------------


def line(page):
    return page.summary()


def keyset_page(size, **position):
    return paging.keyset_page(ImageImport.objects.all(), size=size, **position)


@pytest.fixture
def five(team, user):
    start = timezone.now() - timedelta(hours=1)
    return [make_import(team, user, created_at=start + timedelta(minutes=n)) for n in range(5)]


def test_the_count_line_reads_as_a_sentence_on_every_page(five):
    first = keyset_page(2)
    middle = keyset_page(2, older_than=first.older)
    last = keyset_page(2, older_than=middle.older)
    assert line(first) == "The newest 2 of 5 imports"
    assert line(middle) == "2 of 5 imports"
    assert line(last) == "The oldest 1 of 5 imports"
    assert line(keyset_page(2, newer_than=middle.newer)) == "The newest 2 of 5 imports"
    assert line(keyset_page(2, page="2")) == "2 of 5 imports"
    assert line(keyset_page(5)) == "5 imports"


def test_the_count_line_of_one_import_and_of_a_count_past_its_cap(five, monkeypatch):
    assert line(paging.keyset_page(ImageImport.objects.filter(pk=five[0].pk), size=2)) == (
        "1 import"
    )
    monkeypatch.setattr(paging, "COUNT_CAP", 3)
    first = keyset_page(2)
    assert line(first) == "The newest 2 of more than 3 imports"
    assert line(keyset_page(2, page="3")) == "The oldest 1 of more than 3 imports"
    monkeypatch.setattr(paging, "COUNT_CAP", 1000)
    assert keyset_page(2).count_words == "5"


def test_the_page_says_matching_when_filtered_and_more_than_1000_past_the_cap(
    user_client, five, settings, monkeypatch
):
    settings.HISTORY_PAGE_SIZE = 2
    assert "<span>The newest 2 of 5 imports</span>" in user_client.get("/").content.decode()
    queued = user_client.get("/", {"status": "queued"}).content.decode()
    assert "<span>The newest 2 of 5 matching imports</span>" in queued
    monkeypatch.setattr(paging, "COUNT_CAP", 4)
    capped = user_client.get("/").content.decode()
    assert "<span>The newest 2 of more than 4 imports</span>" in capped
    assert f"{paging.COUNT_CAP:,}" == "4"  # and "1,000" as the real cap is written


def test_a_page_past_the_end_says_so_and_leads_back_keeping_the_filters(user_client, five):
    response = user_client.get("/", {"status": "queued", "page": "9"})
    assert response.status_code == 200
    content = response.content.decode()
    assert "No imports on this page: it is past the end of the list." in content
    assert '<a href="/?status=queued">Back to the first page</a>' in content
    assert "No import matches these filters" not in content
    assert (
        "No imports on this page" not in user_client.get("/", {"status": "failed"}).content.decode()
    )
