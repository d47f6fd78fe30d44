"""Try again after an upload stopped: only the parts S3 does not hold yet are sent.

moto's S3 on a port of its own, as in test_browser_upload.py; the portal's
listParts route tells the page which parts S3 already holds.
"""

import json
import re

import pytest
from playwright.sync_api import expect

from imports.models import ImageImport, Status

from .browser import (
    CHROMIUM_MISSING,
    CHROMIUM_MISSING_REASON,
    MIB,
    POLLED,
    S3_URLS,
    fixture_browser,  # noqa: F401 (a fixture: pytest finds it here)
    fixture_s3,  # noqa: F401 (a fixture: pytest finds it here)
    raw_disk,
    sign_in,
    wait_for,
)
from .factories import IMPORT_BUCKET, set_up_disk_imports

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING_REASON, allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COMPLETE = re.compile(r"/s3/multipart/[^/]+/complete\?")


@pytest.fixture
def page(browser, live_server, team, user, s3, tmp_path):
    """New import, signed in, filled for a 12 MiB disk file (three 5 MiB parts)."""
    set_up_disk_imports(team)
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    sign_in(page, user)
    page.goto("/imports/new")
    page.get_by_label("Name").fill("Web server base")
    page.get_by_label("Semantic version").fill("1.0.0")
    page.get_by_label("Platform").select_option("Linux")
    page.get_by_label("A disk file from this computer").check()
    disk = raw_disk(tmp_path / "web.raw", 12 * MIB)
    page.get_by_label("Disk image file").set_input_files(str(disk))
    yield page
    context.close()


def part_number(url):
    return int(re.search(r"[?&]partNumber=(\d+)", url)[1])


def parts_in_s3(s3):
    image_import = ImageImport.objects.get()
    key = image_import.user_bucket["S3Key"]
    uploads = s3.list_multipart_uploads(Bucket=IMPORT_BUCKET).get("Uploads", [])
    return [
        part["PartNumber"]
        for upload in uploads
        if upload["Key"] == key
        for part in s3.list_parts(Bucket=IMPORT_BUCKET, Key=key, UploadId=upload["UploadId"]).get(
            "Parts", []
        )
    ]


def try_again_and_count_the_puts(page):
    """Press Try again; the part numbers PUT to S3 from then on, once the import is queued."""
    sent = []
    page.on("request", lambda r: r.method == "PUT" and S3_URLS.match(r.url) and sent.append(r))
    page.get_by_role("button", name="Try again").click()
    expect(page.locator("#status .status")).to_have_text(
        re.compile("Queued|Submitting|Importing|Failed|Available"), timeout=POLLED
    )
    assert ImageImport.objects.get().status != Status.UPLOADING
    return sorted(part_number(request.url) for request in sent)


def test_try_again_after_a_failed_completion_sends_no_part_again(page, s3):
    def name_a_part_s3_does_not_hold_once(route):
        # S3 refuses to assemble a part whose ETag it does not have (InvalidPart).
        body = route.request.post_data_json
        body["parts"][0]["ETag"] = '"00000000000000000000000000000000"'
        route.continue_(post_data=json.dumps(body))

    page.route(COMPLETE, name_a_part_s3_does_not_hold_once, times=1)
    page.get_by_role("button", name="Start import").click()
    expect(page.locator("#upload-panel [data-upload-state]")).to_contain_text(
        "could not be completed", timeout=POLLED
    )
    assert sorted(parts_in_s3(s3)) == [1, 2, 3]

    assert try_again_and_count_the_puts(page) == []


def test_try_again_after_a_refused_part_sends_only_that_part(page, s3, live_server):
    held = []

    def hold_part_three(route):
        if part_number(route.request.url) == 3:
            held.append(route)
        else:
            route.continue_()

    page.route(S3_URLS, hold_part_three)
    page.get_by_role("button", name="Start import").click()
    wait_for(page, lambda: held and sorted(parts_in_s3(s3)) == [1, 2])
    # A 403 is not retried by Uppy: the upload stops at once, parts 1 and 2 in S3.
    held[0].fulfill(
        status=403,
        headers={"Access-Control-Allow-Origin": live_server.url},
        body="<Error><Code>AccessDenied</Code></Error>",
    )
    expect(page.get_by_role("button", name="Try again")).to_be_visible(timeout=POLLED)
    page.unroute(S3_URLS)

    assert try_again_and_count_the_puts(page) == [3]
