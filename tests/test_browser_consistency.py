"""What a careful customer noticed, in Chromium: the history's filters after
Back and Forward, the AMI's copy button, and a disk format the portal filled.

At 390 and 1280 px: the controls say what the address and the list say,
axe-core finds no violation, and the page fits the window.
"""

import pytest
from playwright.sync_api import expect

from imports import aws

from .browser import (
    CHROMIUM_MISSING,
    CHROMIUM_MISSING_REASON,
    DESKTOP,
    PHONE,
    axe_violations,
    describe_violations,
    horizontal_overflow,
    launch,
    sign_in,
)
from .factories import (
    ENDED_AMI,
    IMPORT_BUCKET,
    IMPORT_PREFIX,
    ended_imports,
    set_up_disk_imports,
)

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING_REASON, allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AMI = ENDED_AMI


@pytest.fixture(scope="module")
def browser():
    yield from launch()


@pytest.fixture(params=[PHONE, DESKTOP], ids=["390px", "1280px"])
def page(request, browser, live_server):
    # bypass_csp: axe-core is injected into the page for the check.
    context = browser.new_context(base_url=live_server.url, viewport=request.param, bypass_csp=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def history(team, user):
    ended_imports(team, user)


def test_after_back_and_forward_the_filters_say_what_the_list_shows(page, user, history):
    sign_in(page, user)
    page.goto("/")
    status = page.get_by_label("Status")
    search = page.get_by_role("searchbox", name="Search")

    status.focus()  # as a keyboard would; select_option alone does not
    status.select_option("failed")
    expect(page).to_have_url("/?status=failed&platform=&q=")
    status.select_option("cancelled")
    expect(page).to_have_url("/?status=cancelled&platform=&q=")
    expect(page.locator("#history-table")).to_contain_text("Withdrawn")

    page.go_back()
    expect(page).to_have_url("/?status=failed&platform=&q=")
    expect(page.locator("#history-table")).to_contain_text("Broken")
    expect(status).to_have_value("failed")
    expect(status).to_be_focused()

    page.go_forward()
    expect(page).to_have_url("/?status=cancelled&platform=&q=")
    expect(status).to_have_value("cancelled")

    status.select_option("")
    search.fill("Web")
    expect(page).to_have_url("/?status=&platform=&q=Web")
    expect(page.locator("#history-table .cell-name a")).to_have_count(1)
    search.fill("Bro")
    expect(page).to_have_url("/?status=&platform=&q=Bro")

    page.go_back()
    expect(page).to_have_url("/?status=&platform=&q=Web")
    # The URL comes back before the table: wait for the table's own answer.
    expect(page.locator("#history-table .cell-name a")).to_have_text(["Web"])
    expect(search).to_have_value("Web")
    expect(status).to_have_value("")

    # The keyboard goes on from the filter it was on, not from the page's start.
    expect(search).to_be_focused()
    assert horizontal_overflow(page) == 0
    violations = axe_violations(page)
    assert not violations, describe_violations(violations)


def test_an_ami_id_is_copied_from_the_history(page, user, history):
    sign_in(page, user)
    page.goto("/")
    copy = page.get_by_role("button", name="Copy AMI ID in us-east-1 of Web")
    expect(copy).to_be_visible()
    assert horizontal_overflow(page) == 0
    violations = axe_violations(page)
    assert not violations, describe_violations(violations)

    copy.focus()
    page.keyboard.press("Enter")

    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == AMI
    expect(page.locator("#copy-status")).to_have_text("Copied AMI ID in us-east-1 of Web")


@pytest.fixture
def bucket(s3_emulator, team):
    set_up_disk_imports(team)
    aws.client("s3").create_bucket(Bucket=IMPORT_BUCKET)


def test_a_format_the_portal_filled_follows_the_key(page, user, bucket):
    sign_in(page, user)
    page.goto("/imports/new")
    page.get_by_label("A disk file already in the team's import bucket").check()
    key = page.get_by_label("S3 key")
    format_choice = page.get_by_label("Disk format")
    warning = page.locator("#format-warning")

    key.fill(IMPORT_PREFIX + "golden/missing.vmdk")
    key.press("Tab")
    expect(format_choice).to_have_value("vmdk")

    key.fill(IMPORT_PREFIX + "golden/empty.ova")
    key.press("Tab")
    expect(format_choice).to_have_value("ova")
    expect(warning).to_be_hidden()

    # Chosen by the person, by keyboard: theirs, and defended against the key.
    format_choice.focus()
    format_choice.select_option("vhd")
    key.fill(IMPORT_PREFIX + "golden/other.vmdk")
    key.press("Tab")
    expect(format_choice).to_have_value("vhd")
    expect(warning).to_contain_text("The file's name says VMDK, but the disk format chosen is VHD")
    assert horizontal_overflow(page) == 0
