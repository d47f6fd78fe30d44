"""Resuming an upload with another file: the page says so and sends nothing.

The imports page of an upload still under way offers "The same disk image
file": upload.js compares the chosen file's name, size and fingerprint (a
SHA-256 of its first and last MiB) with the interrupted upload's before it
asks the portal for anything. moto's S3 runs
on a port of its own, as in test_browser_upload.py.
"""

import hashlib
import re

import pytest
from playwright.sync_api import expect

from imports import services
from imports.models import ImageImport, Status

from .browser import (
    CHROMIUM_MISSING,
    CHROMIUM_MISSING_REASON,
    DESKTOP,
    MIB,
    PHONE,
    POLLED,
    S3_URLS,
    fill_new_import,
    fixture_browser,  # noqa: F401 (a fixture: pytest finds it here)
    fixture_disk_team,  # noqa: F401 (a fixture: pytest finds it here)
    fixture_page,  # noqa: F401 (a fixture: pytest finds it here)
    fixture_s3,  # noqa: F401 (a fixture: pytest finds it here)
    page_problems,
    raw_disk,
    sign_in,
    wait_for,
)
from .factories import IMPORT_BUCKET, disk_submission

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING_REASON, allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SAME_FILE = re.compile("^The same disk image file")


def is_part_one(url):
    return re.search(r"[?&]partNumber=1(&|$)", url) is not None


def multipart_uploads(s3, image_import):
    """{upload ID: [(part number, ETag, size)]} of this import's key in S3."""
    image_import.refresh_from_db()
    key = image_import.user_bucket["S3Key"]
    uploads = s3.list_multipart_uploads(Bucket=IMPORT_BUCKET).get("Uploads", [])
    return {
        upload["UploadId"]: [
            (part["PartNumber"], part["ETag"], part["Size"])
            for part in s3.list_parts(
                Bucket=IMPORT_BUCKET, Key=key, UploadId=upload["UploadId"]
            ).get("Parts", [])
        ]
        for upload in uploads
        if upload["Key"] == key
    }


def interrupt_after_part_one(page, s3, disk):
    """Start uploading `disk`, let only part 1 reach S3, and reload onto the import's page."""
    page.route(
        S3_URLS,
        lambda route: (
            route.continue_() if is_part_one(route.request.url) else route.abort("connectionreset")
        ),
    )
    fill_new_import(page, disk)
    page.get_by_role("button", name="Start import").click()
    image_import = wait_for(page, lambda: ImageImport.objects.first())
    wait_for(
        page, lambda: [len(parts) for parts in multipart_uploads(s3, image_import).values()] == [1]
    )
    page.goto(f"/imports/{image_import.pk}")  # the reload: Uppy's state is gone
    page.unroute(S3_URLS)  # only now: the first page kept retrying parts 2 and 3
    expect(page.get_by_role("heading", name="Resume the upload")).to_be_visible()
    return image_import


def record_requests(page):
    """Every request the page makes from now on, as "METHOD url"."""
    sent = []
    page.on("request", lambda request: sent.append(f"{request.method} {request.url}"))
    return sent


def test_a_file_of_another_size_is_refused_and_the_right_file_then_resumes(
    page, user, disk_team, s3, tmp_path
):
    disk = raw_disk(tmp_path / "web.raw", 12 * MIB)
    # The same name, a different size: a disk exported again since, say.
    (tmp_path / "again").mkdir()
    other = raw_disk(tmp_path / "again" / "web.raw", 11 * MIB)
    sign_in(page, user)
    image_import = interrupt_after_part_one(page, s3, disk)
    held = multipart_uploads(s3, image_import)

    sent = record_requests(page)
    resume = page.get_by_label(SAME_FILE)
    resume.set_input_files(str(other))

    said = "This is web.raw (11 MiB); the upload is of web.raw (12 MiB). Choose that file."
    expect(page.locator("#errors-resumeFile")).to_have_text(said)
    expect(resume).to_have_accessible_description(said)
    expect(resume).to_be_enabled()  # the person may choose again
    expect(page.locator("#upload-panel")).to_be_hidden()  # no upload started
    page.wait_for_timeout(1000)  # time enough for a request the page should not make
    assert [request for request in sent if re.match(r"(PUT|POST|DELETE) ", request)] == []
    assert multipart_uploads(s3, image_import) == held  # the same upload, its one part untouched
    image_import.refresh_from_db()
    assert image_import.status == Status.UPLOADING

    resume.set_input_files(str(disk))

    expect(page.locator("#errors-resumeFile")).to_be_empty()
    expect(page.locator("#status .status")).to_have_text(
        re.compile("Queued|Submitting|Importing|Failed|Available"), timeout=POLLED
    )
    puts = [request for request in sent if request.startswith("PUT ")]
    assert len(puts) == 2 and not any(is_part_one(put) for put in puts), puts
    image_import.refresh_from_db()
    assert image_import.status != Status.UPLOADING
    key = image_import.user_bucket["S3Key"]
    uploaded = s3.get_object(Bucket=IMPORT_BUCKET, Key=key)["Body"].read()
    assert uploaded == disk.read_bytes()  # the interrupted upload's file, whole


def test_a_file_of_the_same_name_and_size_but_other_content_is_refused(
    page, user, disk_team, s3, tmp_path
):
    # Exported again since: the same name and size, other bytes. Resumed, its
    # parts would have joined the first file's part 1 into a disk of neither.
    disk = raw_disk(tmp_path / "web.raw", 12 * MIB)
    (tmp_path / "again").mkdir()
    other = raw_disk(tmp_path / "again" / "web.raw", 12 * MIB)
    sign_in(page, user)
    image_import = interrupt_after_part_one(page, s3, disk)
    assert (
        image_import.upload_fingerprint
        == hashlib.sha256(disk.read_bytes()[: 1 * MIB] + disk.read_bytes()[-1 * MIB :]).hexdigest()
    )
    held = multipart_uploads(s3, image_import)
    sent = record_requests(page)

    resume = page.get_by_label(SAME_FILE)
    resume.set_input_files(str(other))

    said = (
        "This web.raw has the size of the file being uploaded, but not its content: "
        "choose the file whose upload was started. Nothing was sent."
    )
    expect(page.locator("#errors-resumeFile")).to_have_text(said)
    expect(resume).to_be_enabled()
    page.wait_for_timeout(1000)
    assert [request for request in sent if re.match(r"(PUT|POST|DELETE) ", request)] == []
    assert multipart_uploads(s3, image_import) == held

    resume.set_input_files(str(disk))

    expect(page.locator("#errors-resumeFile")).to_be_empty()
    expect(page.locator("#status .status")).to_have_text(
        re.compile("Queued|Submitting|Importing|Failed|Available"), timeout=POLLED
    )
    key = image_import.user_bucket["S3Key"]
    assert s3.get_object(Bucket=IMPORT_BUCKET, Key=key)["Body"].read() == disk.read_bytes()


def test_sizes_that_round_alike_are_told_apart_in_bytes(page, user, disk_team, s3, tmp_path):
    disk = raw_disk(tmp_path / "web.raw", 12 * MIB)
    (tmp_path / "again").mkdir()
    other = raw_disk(tmp_path / "again" / "web.raw", 12 * MIB + 1)
    sign_in(page, user)
    image_import = interrupt_after_part_one(page, s3, disk)
    held = multipart_uploads(s3, image_import)

    page.get_by_label(SAME_FILE).set_input_files(str(other))

    expect(page.locator("#errors-resumeFile")).to_have_text(
        "This is web.raw (12 MiB, 12582913 bytes); the upload is of web.raw"
        " (12 MiB, 12582912 bytes). Choose that file."
    )
    page.wait_for_timeout(1000)
    assert multipart_uploads(s3, image_import) == held


def test_the_refused_file_message_has_no_axe_violations_and_fits_a_phone(
    browser, live_server, user, disk_team, tmp_path
):
    # No S3 here: the page refuses the file before it asks anyone.
    long_name = "web-server-base-exported-from-vsphere-for-the-image-pipeline-2024-06-01.raw"
    image_import, _ = services.submit_import(
        team=disk_team,
        user=user,
        **disk_submission(source="upload", key=f"vm-imports/t/{long_name}", upload_size=12 * MIB),
    )
    other = raw_disk(tmp_path / long_name, 3 * MIB)
    for viewport in (DESKTOP, PHONE):
        context = browser.new_context(base_url=live_server.url, bypass_csp=True, viewport=viewport)
        page = context.new_page()
        sign_in(page, user)
        page.goto(f"/imports/{image_import.pk}")
        page.get_by_label(SAME_FILE).set_input_files(str(other))
        expect(page.locator("#errors-resumeFile")).to_contain_text("(3 MiB)")
        assert page_problems(page) == [], f"at {viewport}"
        context.close()
