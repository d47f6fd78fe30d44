"""A disk file from this computer: the page sends it straight to S3 (moto here).

moto's S3 runs in a thread of this process on a port of its own, a different
origin from the live server's, so the bucket's CORS rule and the page's CSP
are exercised as they are in production. The portal's EC2 and Image Builder
calls go to the project's emulator.
"""

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from imports import aws, services, tasks
from imports.models import ImageImport, Status

from .browser import (
    CHROMIUM_MISSING,
    CHROMIUM_MISSING_REASON,
    MIB,
    PHONE,
    POLLED,
    S3_URLS,
    axe_violations,
    choose_upload,
    describe_violations,
    fill_new_import,
    fixture_browser,  # noqa: F401 (a fixture: pytest finds it here)
    fixture_disk_team,  # noqa: F401 (a fixture: pytest finds it here)
    fixture_page,  # noqa: F401 (a fixture: pytest finds it here)
    fixture_s3,  # noqa: F401 (a fixture: pytest finds it here)
    horizontal_overflow,
    open_new_import,
    raw_disk,
    sign_in,
    wait_for,
)
from .factories import IMPORT_BUCKET, disk_submission
from .helpers import wait_for_status

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING_REASON, allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DETAIL_URL = re.compile(r"/imports/\d+$")


def test_the_form_follows_the_source_and_reads_the_format_from_the_header(
    page, user, disk_team, s3, tmp_path
):
    vmdk = tmp_path / "disk1.vmdk"
    vmdk.write_bytes(b"KDMV" + bytes(2044))
    sign_in(page, user)
    open_new_import(page)
    task_id = page.get_by_label("VM import task ID")
    disk_file = page.get_by_label("Disk image file")
    s3_key = page.get_by_label("S3 key")

    expect(task_id).to_be_visible()
    expect(disk_file).to_be_hidden()
    expect(s3_key).to_be_hidden()

    page.get_by_label("A disk file already in the team's import bucket").check()
    expect(s3_key).to_be_visible()
    expect(task_id).to_be_hidden()
    expect(disk_file).to_be_hidden()

    page.get_by_label("A disk file from this computer").check()
    disk_file.set_input_files(str(vmdk))
    expect(page.locator("#disk-file-detected")).to_contain_text("VMDK")
    expect(page.get_by_label("Disk format")).to_have_value("vmdk")
    page.get_by_label("Disk format").select_option("raw")  # the person may correct it
    expect(page.get_by_label("Disk format")).to_have_value("raw")

    violations = axe_violations_with_csp_bypass(page)
    assert violations == [], describe_violations(violations)


def axe_violations_with_csp_bypass(page):
    """axe needs a context without the CSP: the same page, drawn the same way, in one."""
    context = page.context.browser.new_context(
        base_url=page.url.split("/imports")[0],
        bypass_csp=True,
        storage_state=page.context.storage_state(),
    )
    other = context.new_page()
    try:
        other.goto("/imports/new")
        other.get_by_label("A disk file from this computer").check()
        return axe_violations(other)
    finally:
        context.close()


def test_a_file_goes_to_s3_survives_a_dropped_network_and_the_import_reaches_available(
    page, user, disk_team, s3, worker, tmp_path
):
    disk = raw_disk(tmp_path / "web.raw", 12 * MIB)  # 5 MiB parts: 3 of them
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    # Part 1 goes through; parts 2 and 3 are held until the network is cut,
    # which makes "the middle of the upload" the same on every run.
    held = []

    def hold_later_parts(route):
        if is_part_one(route.request.url):
            route.continue_()
        else:
            held.append(route)

    page.route(S3_URLS, hold_later_parts)
    signing = []
    page.on(
        "request",
        lambda r: "/s3/multipart/" in r.url and r.method == "GET" and signing.append(r.url),
    )
    sign_in(page, user)
    fill_new_import(page, disk)
    expect(page.get_by_label("Disk format")).to_have_value("raw")

    page.get_by_role("button", name="Start import").click()

    panel = page.locator("#upload-panel")
    expect(panel).to_be_visible()
    image_import = wait_for(page, lambda: ImageImport.objects.first())
    assert image_import.status == Status.UPLOADING
    expect(panel.locator("[data-upload-figures]")).to_contain_text("5.0 MiB of 12.0 MiB")
    wait_for(page, lambda: len(held) == 2)
    assert len(parts_in_s3(s3, image_import)) == 1

    page.context.set_offline(True)
    for route in held:
        route.abort("internetdisconnected")
    expect(panel.locator("[data-upload-state]")).to_contain_text("network is gone")
    page.unroute(S3_URLS)
    page.context.set_offline(False)

    expect_the_imports_page(page)
    image_import.refresh_from_db()
    assert image_import.status != Status.UPLOADING
    head = s3.head_object(Bucket=IMPORT_BUCKET, Key=image_import.user_bucket["S3Key"])
    assert head["ContentLength"] == 12 * MIB
    body = s3.get_object(Bucket=IMPORT_BUCKET, Key=image_import.user_bucket["S3Key"])["Body"]
    assert body.read() == disk.read_bytes()
    assert not [e for e in errors if "Content Security Policy" in e], errors
    # The parts' URLs came in batches (the first: all three parts), never one a request.
    assert "partNumbers=1%2C2%2C3" in signing[0], signing
    assert all("/batch?" in url for url in signing), signing

    expect(page.locator("#status .status")).to_have_text(
        re.compile("Importing|Available"), timeout=POLLED
    )
    # The request shown names EC2's task, whether it came with the page or a poll.
    task_id = ImageImport.objects.get(pk=image_import.pk).vm_import_task_id
    expect(page.locator("#request-task")).to_have_text(task_id)
    tasks.refresh_imports()
    expect(page.locator("#status .status")).to_have_text("Available", timeout=POLLED)


def test_an_upload_resumes_from_the_imports_page_after_a_reload(
    page, user, disk_team, s3, tmp_path
):
    disk = raw_disk(tmp_path / "web.raw", 12 * MIB)

    def stop_after_part_one(route):
        if is_part_one(route.request.url):
            route.continue_()
        else:
            route.abort("connectionreset")

    page.route(S3_URLS, stop_after_part_one)
    sign_in(page, user)
    fill_new_import(page, disk)
    page.get_by_role("button", name="Start import").click()
    image_import = wait_for(page, lambda: ImageImport.objects.first())
    wait_for(page, lambda: len(parts_in_s3(s3, image_import)) == 1)
    page.goto(f"/imports/{image_import.pk}")  # the reload: Uppy's state is gone
    page.unroute(S3_URLS)  # only now: the first page kept retrying parts 2 and 3
    assert len(parts_in_s3(s3, image_import)) == 1

    sent = []
    page.on("request", lambda r: r.method == "PUT" and sent.append(r.url))
    page.get_by_label(re.compile("^The same disk image file")).set_input_files(str(disk))

    expect(page.locator("#status .status")).to_have_text(
        re.compile("Queued|Submitting|Importing|Failed|Available"), timeout=POLLED
    )
    assert len(sent) == 2 and not any(is_part_one(url) for url in sent), sent
    image_import.refresh_from_db()
    assert image_import.status != Status.UPLOADING


def test_once_the_import_is_recorded_a_reload_lands_on_its_page_with_the_resume_field(
    page, user, disk_team, s3, tmp_path
):
    held = []
    sign_in(page, user)
    image_import = start_held_upload(page, tmp_path, held)

    # Still the New import page, sending: only its address is the import's.
    expect(page).to_have_url(re.compile(rf"/imports/{image_import.pk}$"))
    expect(page.get_by_role("heading", name="New import")).to_be_visible()
    expect(page.locator("#upload-panel [data-upload-state]")).to_contain_text("Uploading")

    page.reload()
    page.unroute(S3_URLS)

    expect(page).to_have_url(re.compile(rf"/imports/{image_import.pk}$"))
    expect(page.get_by_role("heading", name="Web server base", level=1)).to_be_visible()
    expect(page.locator("#status .status")).to_have_text("Uploading")
    expect(page.get_by_role("heading", name="Resume the upload")).to_be_visible()
    resume = page.get_by_label(re.compile("^The same disk image file"))
    expect(resume).to_be_visible()

    # The portal out of reach as the file is chosen: said, and choosing it
    # again once the portal answers resumes.
    create = re.compile(r"/s3/multipart$")
    page.route(create, lambda route: route.abort("internetdisconnected"))
    resume.set_input_files(str(tmp_path / "web.raw"))  # the file start_held_upload sent
    expect(page.locator("#errors-resumeFile")).to_have_text(
        "The portal could not be reached: check the network connection, then choose the file again."
    )
    page.unroute(create)
    resume.set_input_files(str(tmp_path / "web.raw"))
    expect(page.locator("#status .status")).not_to_have_text("Uploading", timeout=POLLED)
    image_import.refresh_from_db()
    assert image_import.status != Status.UPLOADING


def upload_state(page):
    return page.locator("#upload-panel [data-upload-state]")


def start_upload(page, disk):
    fill_new_import(page, disk)
    page.get_by_role("button", name="Start import").click()


def test_a_bucket_that_does_not_exist_is_said_in_the_portals_words(
    page, user, disk_team, s3, tmp_path
):
    disk_team.import_bucket = "platform-imports-gone"  # deleted, or never made
    disk_team.save()
    sign_in(page, user)

    start_upload(page, raw_disk(tmp_path / "web.raw", MIB))

    state = upload_state(page)
    expect(state).to_contain_text("The upload could not start: S3 refused:", timeout=POLLED)
    expect(state).to_contain_text("NoSuchBucket")
    expect(state).to_contain_text("Nothing has been sent yet")
    expect(state).not_to_contain_text("Could not POST")
    expect(page.get_by_role("button", name="Try again")).to_be_visible()
    image_import = ImageImport.objects.get()
    assert image_import.status == Status.UPLOADING  # kept for Try again, not cancelled
    expect(page).to_have_url(re.compile(rf"/imports/{image_import.pk}$"))


def test_a_refused_signature_is_said_in_the_portals_words(page, user, disk_team, s3, tmp_path):
    def end_the_import_first(route):
        # The import ends before the portal signs: it refuses (409), saying why.
        ImageImport.objects.update(status=Status.FAILED)
        route.continue_()

    page.route(re.compile(r"/s3/multipart/[^/]+/batch\?"), end_the_import_first)
    sign_in(page, user)

    start_upload(page, raw_disk(tmp_path / "web.raw", MIB))

    state = upload_state(page)
    # Uppy asks again (about 9 s in all) before it gives up.
    expect(state).to_contain_text(
        "The portal could not sign the parts' URLs: This import is failed.", timeout=30_000
    )
    expect(state).not_to_contain_text("Could not")


def test_a_completion_s3_refuses_is_said_in_the_portals_words_and_keeps_the_import(
    page, user, disk_team, s3, tmp_path
):
    def name_a_part_s3_does_not_hold(route):
        # S3 refuses to assemble a part whose ETag it does not have (InvalidPart).
        body = route.request.post_data_json
        body["parts"][0]["ETag"] = '"00000000000000000000000000000000"'
        route.continue_(post_data=json.dumps(body))

    page.route(re.compile(r"/s3/multipart/[^/]+/complete\?"), name_a_part_s3_does_not_hold)
    sign_in(page, user)

    start_upload(page, raw_disk(tmp_path / "web.raw", MIB))

    state = upload_state(page)
    expect(state).to_contain_text(
        "Every part was sent, but the upload could not be completed: S3 refused:", timeout=POLLED
    )
    expect(state).to_contain_text("InvalidPart")
    expect(state).not_to_contain_text("Could not POST")
    page.wait_for_timeout(500)  # Uppy's clean-up after an error has run by now
    image_import = ImageImport.objects.get()
    assert image_import.status == Status.UPLOADING, image_import.error_message
    expect(page.get_by_role("heading", name="New import")).to_be_visible()  # not left for a cancel


def test_parts_s3_cannot_list_on_resume_are_said_in_the_portals_words(
    page, user, disk_team, s3, tmp_path
):
    disk = raw_disk(tmp_path / "web.raw", 12 * MIB)
    page.route(
        S3_URLS,
        lambda route: (
            route.continue_() if is_part_one(route.request.url) else route.abort("connectionreset")
        ),
    )
    sign_in(page, user)
    start_upload(page, disk)
    image_import = wait_for(page, lambda: ImageImport.objects.first())
    wait_for(page, lambda: len(parts_in_s3(s3, image_import)) == 1)
    page.reload()
    page.unroute(S3_URLS)
    image_import.refresh_from_db()
    s3.abort_multipart_upload(
        Bucket=IMPORT_BUCKET, Key=image_import.user_bucket["S3Key"], UploadId=image_import.upload_id
    )

    page.get_by_label(re.compile("^The same disk image file")).set_input_files(str(disk))

    state = upload_state(page)
    expect(state).to_contain_text(
        "The parts already in S3 could not be listed: S3 refused:", timeout=POLLED
    )
    expect(state).to_contain_text("NoSuchUpload")
    expect(state).not_to_contain_text("Could not GET")


HEADERS = {
    "vmdk-sparse": (b"KDMV" + bytes(2044), "vmdk"),
    "vmdk-descriptor": (b"# Disk DescriptorFile\nversion=1\n" + bytes(1000), "vmdk"),
    "vhdx": (b"vhdxfile" + bytes(2040), "vhdx"),
    "vhd": (bytes(1536) + b"conectix" + bytes(504), "vhd"),
    "ova": (b"web.ovf".ljust(257, b"\0") + b"ustar" + bytes(1786), "ova"),
    "raw-gpt": (bytes(512) + b"EFI PART" + bytes(1528), "raw"),
    "raw-mbr": (bytes(510) + b"\x55\xaa" + bytes(1536), "raw"),
}


def test_each_format_is_read_from_its_header_and_an_unknown_one_is_said(
    page, user, disk_team, s3, tmp_path
):
    sign_in(page, user)
    open_new_import(page)
    page.get_by_label("A disk file from this computer").check()
    detected = page.locator("#disk-file-detected")
    for name, (header, expected) in HEADERS.items():
        page.get_by_label("Disk format").select_option("")
        disk = tmp_path / f"{name}.img"
        disk.write_bytes(header)
        page.get_by_label("Disk image file").set_input_files(str(disk))
        expect(detected).to_contain_text(expected.upper())
        expect(page.get_by_label("Disk format")).to_have_value(expected)

    unknown = tmp_path / "notes.txt"
    unknown.write_bytes(b"hello" * 500)
    page.get_by_label("Disk format").select_option("")
    page.get_by_label("Disk image file").set_input_files(str(unknown))
    expect(detected).to_contain_text("could not be read")
    expect(page.get_by_label("Disk format")).to_have_value("")


def test_an_invalid_form_shows_its_errors_and_keeps_the_chosen_file(
    page, user, disk_team, s3, tmp_path
):
    disk = raw_disk(tmp_path / "web.raw", MIB)
    sign_in(page, user)
    open_new_import(page)
    choose_upload(page, disk)
    page.get_by_label("Name").fill("")

    page.get_by_role("button", name="Start import").click()

    expect(page.locator(".error-summary")).to_contain_text("Name")
    expect(page.locator("#upload-panel")).to_be_hidden()
    assert not ImageImport.objects.exists()
    assert page.locator("#disk-file").evaluate("input => input.files[0].name") == "web.raw"
    expect(page.get_by_label("Disk image file")).to_be_visible()  # the source is still upload


def test_no_file_chosen_is_said_under_the_file_input(page, user, disk_team, s3):
    sign_in(page, user)
    open_new_import(page)
    page.get_by_label("A disk file from this computer").check()

    page.get_by_role("button", name="Start import").click()

    expect(page.locator("#errors-diskFile")).to_have_text("Choose the disk image file to upload.")
    assert not ImageImport.objects.exists()


def test_a_file_gone_from_disk_since_it_was_chosen_is_said_and_nothing_is_recorded(
    page, user, disk_team, s3, tmp_path
):
    disk = raw_disk(tmp_path / "web.raw", MIB)
    sign_in(page, user)
    fill_new_import(page, disk)
    disk.unlink()  # moved or removed after it was chosen

    page.get_by_role("button", name="Start import").click()

    expect(page.locator("#errors-diskFile")).to_have_text(
        "web.raw could not be read: it was moved, changed or removed since it was chosen. "
        "Choose it again. Nothing was sent."
    )
    expect(page.get_by_label("Disk image file")).to_be_focused()
    assert not ImageImport.objects.exists()


def test_a_portal_out_of_reach_at_start_is_said_and_nothing_is_recorded(
    page, user, disk_team, s3, tmp_path
):
    sign_in(page, user)
    fill_new_import(page, raw_disk(tmp_path / "web.raw", MIB))
    page.route(re.compile(r"/imports/new$"), lambda route: route.abort("internetdisconnected"))

    page.get_by_role("button", name="Start import").click()

    expect(page.locator("#errors-diskFile")).to_have_text(
        "The portal could not be reached: check the network connection. Nothing was recorded "
        "or uploaded; try again."
    )
    assert not ImageImport.objects.exists()


def start_held_upload(page, tmp_path, held):
    """An upload whose parts after the first wait in `held` until the test lets them go."""

    def hold_later_parts(route):
        if is_part_one(route.request.url):
            route.continue_()
        else:
            held.append(route)

    page.route(S3_URLS, hold_later_parts)
    disk = raw_disk(tmp_path / "web.raw", 12 * MIB)
    open_new_import(page)
    page.get_by_label("Name").fill("Web server base")
    page.get_by_label("Semantic version").fill("1.0.0")
    page.get_by_label("Platform").select_option("Linux")
    choose_upload(page, disk)
    page.get_by_role("button", name="Start import").click()
    wait_for(page, lambda: len(held) == 2)
    return wait_for(page, lambda: ImageImport.objects.first())


def test_pause_and_resume(page, user, disk_team, s3, tmp_path):
    held = []
    sign_in(page, user)
    start_held_upload(page, tmp_path, held)
    panel = page.locator("#upload-panel")

    panel.get_by_role("button", name="Pause").click()
    expect(panel.locator("[data-upload-state]")).to_contain_text("Paused")
    page.unroute(S3_URLS)  # pausing aborted the held requests: nothing goes out now
    page.wait_for_timeout(1000)
    expect(panel.locator("[data-upload-state]")).to_contain_text("Paused")  # still paused
    page.context.set_offline(True)  # the network goes and comes back meanwhile
    page.context.set_offline(False)
    expect(panel.locator("[data-upload-state]")).to_have_text(
        "Paused. The parts already sent are kept."
    )
    expect(page.get_by_role("heading", name="New import")).to_be_visible()  # not yet left

    panel.get_by_role("button", name="Resume").click()

    expect_the_imports_page(page)


def test_a_session_that_ends_mid_upload_says_how_to_go_on(page, user, disk_team, s3, tmp_path):
    held = []
    sign_in(page, user)
    start_held_upload(page, tmp_path, held)
    page.context.clear_cookies(name="sessionid")  # signed out elsewhere meanwhile
    page.unroute(S3_URLS)  # the held parts go on; completing the upload asks the portal

    expect(page.locator("#upload-panel [data-upload-state]")).to_have_text(
        "Every part was sent, but the upload could not be completed: Your session has ended: "
        "reload the page to sign in again, then choose the same file to send the rest (the "
        "parts already sent are kept).",
        timeout=POLLED,
    )


def expect_cancelled_with_its_upload(page, s3, image_import, user):
    """The import's page, the import cancelled by `user`, and its upload's parts gone from S3."""
    expect_the_imports_page(page)
    image_import.refresh_from_db()
    assert (image_import.status, image_import.error_message) == (
        Status.FAILED,
        f"Cancelled by {user.username}.",
    )
    # moto's S3 outlives a test: only this import's upload counts.
    uploads = s3.list_multipart_uploads(Bucket=IMPORT_BUCKET).get("Uploads", [])
    assert [u for u in uploads if u["Key"] == image_import.user_bucket["S3Key"]] == []


def stop_at_signing(page, tmp_path):
    """An upload started and stopped: the portal answers its signing with a 503."""
    batch = re.compile(r"/s3/multipart/[^/]+/batch\?")
    page.route(batch, lambda route: route.fulfill(status=503, json={"error": "Busy."}))
    start_upload(page, raw_disk(tmp_path / "web.raw", MIB))
    expect(page.get_by_role("button", name="Try again")).to_be_visible(timeout=POLLED)
    return batch


def test_cancel_aborts_the_upload_and_cancels_the_import(page, user, disk_team, s3, tmp_path):
    held = []
    sign_in(page, user)
    image_import = start_held_upload(page, tmp_path, held)
    page.on("dialog", lambda dialog: dialog.accept())

    page.locator("#upload-panel").get_by_role("button", name="Cancel upload").click()

    expect_cancelled_with_its_upload(page, s3, image_import, user)


def test_cancel_after_the_upload_stopped_still_cancels_it(page, user, disk_team, s3, tmp_path):
    # Uppy lets go of an upload an error stopped: Cancel upload stuck at
    # "Cancelling…", the parts and the import left as they were.
    sign_in(page, user)
    stop_at_signing(page, tmp_path)
    image_import = ImageImport.objects.get()
    page.on("dialog", lambda dialog: dialog.accept())

    page.locator("#upload-panel").get_by_role("button", name="Cancel upload").click()

    expect_cancelled_with_its_upload(page, s3, image_import, user)


def test_try_again_by_keyboard_leaves_the_focus_on_pause(page, user, disk_team, s3, tmp_path):
    sign_in(page, user)
    page.unroute(stop_at_signing(page, tmp_path))
    retry = page.get_by_role("button", name="Try again")
    held = []
    page.route(S3_URLS, lambda route: held.append(route))  # the part waits: still uploading

    retry.focus()
    page.keyboard.press("Enter")  # Try again hides as it is pressed

    expect(page.locator("#upload-panel").get_by_role("button", name="Pause")).to_be_focused()


def test_cancel_before_any_upload_began_opens_the_import_s_cancel_page(
    page, user, disk_team, s3, tmp_path
):
    disk_team.import_bucket = "platform-imports-gone"  # the upload cannot even start
    disk_team.save()
    sign_in(page, user)
    start_upload(page, raw_disk(tmp_path / "web.raw", MIB))
    expect(page.get_by_role("button", name="Try again")).to_be_visible(timeout=POLLED)
    image_import = ImageImport.objects.get()
    page.on("dialog", lambda dialog: dialog.accept())

    page.locator("#upload-panel").get_by_role("button", name="Cancel upload").click()

    expect(page).to_have_url(re.compile(rf"/imports/{image_import.pk}/cancel$"))
    page.get_by_role("button", name=re.compile("^Yes, cancel")).click()
    image_import.refresh_from_db()
    assert image_import.status == Status.FAILED


def upload_and_watch(page, disk):
    """Start the upload of `disk`; the page's signing batches and PUTs, in the order asked."""
    asked = []

    def note(request):
        url = urlsplit(request.url)
        query = parse_qs(url.query)
        if request.method == "PUT" and S3_URLS.match(request.url):
            asked.append(("put", int(query["partNumber"][0])))
        elif url.path.endswith("/batch"):
            asked.append(("sign", [int(n) for n in query["partNumbers"][0].split(",")]))

    page.on("request", note)
    fill_new_import(page, disk)
    page.get_by_role("button", name="Start import").click()
    return asked


def test_the_next_batch_of_urls_is_asked_for_before_the_parts_run_out(
    page, user, disk_team, s3, tmp_path
):
    disk = tmp_path / "web.raw"  # 21 parts of 5 MiB: one more than a batch
    with disk.open("wb") as file:
        file.truncate(21 * 5 * MIB)
        file.seek(510)
        file.write(b"\x55\xaa")
    sign_in(page, user)

    asked = upload_and_watch(page, disk)

    expect_the_imports_page(page, timeout=60_000)
    batches = [numbers for kind, numbers in asked if kind == "sign"]
    assert batches == [list(range(1, 21)), [21]], batches
    # Asked for when part 11's URL was taken, well before part 13 was sent.
    assert asked.index(("sign", [21])) < asked.index(("put", 13)), asked
    image_import = ImageImport.objects.get()
    head = s3.head_object(Bucket=IMPORT_BUCKET, Key=image_import.user_bucket["S3Key"])
    assert head["ContentLength"] == 21 * 5 * MIB


def test_a_url_close_to_its_expiry_is_signed_again_before_its_put(
    page, user, disk_team, s3, tmp_path, monkeypatch
):
    # URLs that last 12 s: the page takes one only while it has more than half
    # of that left (ten minutes of an hour's URL in production).
    monkeypatch.setattr(aws, "PRESIGNED_PART_SECONDS", 12)
    disk = raw_disk(tmp_path / "web.raw", 30 * MIB)  # 6 parts: 4 in flight, 2 waiting
    held = []

    def hold_first_parts(route):
        if route.request.method == "PUT" and len(held) < 4:
            held.append(route)
        else:
            route.continue_()

    page.route(S3_URLS, hold_first_parts)
    sign_in(page, user)
    asked = upload_and_watch(page, disk)
    wait_for(page, lambda: len(held) == 4)
    page.wait_for_timeout(6500)  # the first batch's URLs are now past half their life
    for route in held:  # parts 1-4 fail and are sent again, each needing a new URL
        route.abort("connectionreset")

    expect_the_imports_page(page)
    batches = [numbers for kind, numbers in asked if kind == "sign"]
    assert batches[0] == [1, 2, 3, 4, 5, 6], batches
    # Every part is signed again, 5 and 6 too, whose first URLs were never
    # used but had gone stale. Which retried part asks first is Uppy's and
    # the network's order, so the test does not fix how the batches split.
    assert sorted({number for batch in batches[1:] for number in batch}) == [1, 2, 3, 4, 5, 6], (
        batches
    )
    image_import = ImageImport.objects.get()
    body = s3.get_object(Bucket=IMPORT_BUCKET, Key=image_import.user_bucket["S3Key"])["Body"]
    assert body.read() == disk.read_bytes()


def test_the_upload_fields_fit_a_phone(browser, live_server, user, disk_team, s3):
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    page = context.new_page()
    sign_in(page, user)
    open_new_import(page)
    page.get_by_label("A disk file from this computer").check()
    expect(page.get_by_label("Disk image file")).to_be_visible()
    assert horizontal_overflow(page) == 0
    context.close()


def expect_the_imports_page(page, timeout=POLLED):
    """The import's own page, loaded: not just its address, which the page takes at once."""
    expect(page.locator("#status")).to_be_attached(timeout=timeout)
    expect(page).to_have_url(DETAIL_URL)


def parts_in_s3(s3, image_import):
    """The parts S3 holds for this import's upload (moto's S3 outlives a test: not others')."""
    image_import.refresh_from_db()
    key = image_import.user_bucket["S3Key"]
    uploads = s3.list_multipart_uploads(Bucket=IMPORT_BUCKET).get("Uploads", [])
    parts = []
    for upload in (u for u in uploads if u["Key"] == key):
        parts += s3.list_parts(
            Bucket=IMPORT_BUCKET, Key=upload["Key"], UploadId=upload["UploadId"]
        ).get("Parts", [])
    return parts


def is_part_one(url):
    return re.search(r"[?&]partNumber=1(&|$)", url) is not None


def test_an_uploading_imports_page_with_its_resume_field_has_no_axe_violations(
    browser, live_server, user, disk_team, s3
):
    image_import, _ = services.submit_import(
        team=disk_team,
        user=user,
        **disk_submission(source="upload", key="vm-imports/t/web.raw", upload_size=12 * MIB),
    )
    for viewport in ({"width": 1280, "height": 800}, PHONE):
        context = browser.new_context(base_url=live_server.url, bypass_csp=True, viewport=viewport)
        page = context.new_page()
        sign_in(page, user)
        page.goto(f"/imports/{image_import.pk}")
        expect(page.get_by_label(re.compile("^The same disk image file"))).to_be_visible()
        violations = axe_violations(page)
        assert violations == [], describe_violations(violations)
        assert horizontal_overflow(page) == 0
        context.close()


def test_without_javascript_every_source_shows_and_a_file_in_the_bucket_is_imported(
    browser, live_server, user, disk_team, s3, worker
):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    sign_in(page, user)
    open_new_import(page)
    expect(page.get_by_label("VM import task ID")).to_be_visible()
    expect(page.get_by_label("S3 key")).to_be_visible()
    expect(page.get_by_label("Disk image file")).to_be_visible()

    # The file is there: the portal looks for it before it records the import.
    s3.put_object(Bucket=IMPORT_BUCKET, Key="vm-imports/web/disk1.vmdk", Body=b"KDMV" + bytes(508))
    page.get_by_label("A disk file already in the team's import bucket").check()
    page.get_by_label("S3 key").fill("vm-imports/web/disk1.vmdk")
    page.get_by_label("Disk format").select_option("vmdk")
    page.get_by_label("Name").fill("Web server base")
    page.get_by_label("Semantic version").fill("1.0.0")
    page.get_by_label("Platform").select_option("Linux")
    page.get_by_role("button", name="Start import").click()

    expect(page).to_have_url(DETAIL_URL)
    image_import = ImageImport.objects.get()
    assert image_import.source == "s3_object"
    assert image_import.status != Status.UPLOADING
    # The worker's calls end before the test does: a worker still writing
    # while the database is emptied for the next test deadlocked on PostgreSQL.
    wait_for_status(image_import, Status.IMPORTING, Status.FAILED)
    context.close()


SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


@pytest.mark.screenshots
def test_screenshots_of_a_disk_file_on_its_way(page, user, disk_team, s3, worker, tmp_path):
    """The README's pictures of the disk path: the upload half-way, then the import."""
    disk = raw_disk(tmp_path / "web-server.raw", 12 * MIB)
    held = []
    page.route(
        S3_URLS,
        lambda route: route.continue_() if is_part_one(route.request.url) else held.append(route),
    )
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, user)
    fill_new_import(page, disk, semantic_version="2.1.0")
    page.get_by_role("button", name="Start import").click()
    panel = page.locator("#upload-panel")
    expect(panel.locator("[data-upload-figures]")).to_contain_text("5.0 MiB of 12.0 MiB")
    wait_for(page, lambda: len(held) == 2)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "upload-desktop.png"), full_page=True)
    for route in held:
        route.continue_()
    expect_the_imports_page(page)
    page.unroute(S3_URLS)
    image_import = ImageImport.objects.get()
    wait_for(page, lambda: ImageImport.objects.get(pk=image_import.pk).vm_import_task_id, 30)
    page.reload()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(SHOTS / "import-disk-desktop.png"), full_page=True)
