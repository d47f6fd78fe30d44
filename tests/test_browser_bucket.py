"""New import from a file already in the team's bucket: the picker, in Chromium.

moto's S3 (the s3_emulator fixture) holds the files; the page only talks to
the portal, which lists them.
"""

import pytest
from playwright.sync_api import expect

from imports import aws
from imports.models import Source, Status

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
    IMPORT_BUCKET,
    IMPORT_PREFIX,
    SEEDED_TASK,
    make_import,
    set_up_disk_imports,
)

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING_REASON, allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KEY = IMPORT_PREFIX + "web/ubuntu-22.04.vhdx"


@pytest.fixture(scope="module")
def browser():
    yield from launch()


@pytest.fixture
def bucket(s3_emulator, team):
    set_up_disk_imports(team)
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=IMPORT_BUCKET)
    s3.put_object(Bucket=IMPORT_BUCKET, Key=KEY, Body=b"vhdxfile" + bytes(4088))


@pytest.fixture(params=[PHONE, DESKTOP], ids=["390px", "1280px"])
def page(request, browser, live_server):
    # bypass_csp: axe-core is injected into the page for the check.
    context = browser.new_context(base_url=live_server.url, viewport=request.param, bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


def test_picking_a_file_fills_its_key_and_format_and_warns_on_a_mismatch(page, user, bucket):
    sign_in(page, user)
    page.goto("/imports/new")
    page.get_by_label("A disk file already in the team's import bucket").check()
    use = page.get_by_role("button", name="Use ubuntu-22.04.vhdx")
    expect(use).to_be_visible()
    assert horizontal_overflow(page) == 0
    violations = axe_violations(page)
    assert not violations, describe_violations(violations)

    use.click()

    expect(page.get_by_label("S3 key")).to_have_value(KEY)
    expect(page.get_by_label("Disk format")).to_have_value("vhdx")
    warning = page.locator("#format-warning")
    expect(warning).to_be_hidden()

    page.get_by_label("Disk format").select_option("vmdk")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("The file's name says VHDX")


def test_a_typed_key_suggests_the_format_its_name_says(page, user, bucket):
    sign_in(page, user)
    page.goto("/imports/new")
    page.get_by_label("A disk file already in the team's import bucket").check()
    format_choice = page.get_by_label("Disk format")
    expect(format_choice).to_have_value("")
    expect(format_choice.locator("option").first).to_have_text("Choose")

    # A key the picker does not list: the suggestion comes from its name alone.
    page.get_by_label("S3 key").fill(IMPORT_PREFIX + "elsewhere/web-server.VMDK")
    page.get_by_label("S3 key").press("Tab")
    expect(format_choice).to_have_value("vmdk")

    # A format the person chose is theirs: another key does not change it.
    format_choice.select_option("raw")
    page.get_by_label("S3 key").fill(KEY)
    page.get_by_label("S3 key").press("Tab")
    expect(format_choice).to_have_value("raw")
    expect(page.locator("#format-warning")).to_contain_text("The file's name says VHDX")


def test_the_request_shown_names_the_task_once_ec2_does(page, user, team, bucket):
    image_import = make_import(
        team, user, Status.SUBMITTING, payload={"vmImportTaskId": None}, source=Source.S3_OBJECT
    )
    sign_in(page, user)
    page.goto(f"/imports/{image_import.pk}")
    task = page.locator("#request-task")
    expect(task).to_have_text("(added once EC2 names the task)")

    image_import.mark_vm_import_started(SEEDED_TASK)

    expect(task).to_have_text(SEEDED_TASK, timeout=15_000)
    page.get_by_text("The exact JSON payload").click()
    expect(page.locator("#request-payload")).to_contain_text(f'"vmImportTaskId": "{SEEDED_TASK}"')
