"""New import in the browser: the task picker, a format from the name, the upload panel in view.

- A VM import task EC2 deleted is listed without "Use", and says why, at
  390 px and 1280 px, by keyboard and with no axe-core violation.
- A disk file whose header says nothing the page knows gets the format its
  name suggests, said to be taken from the name.
- As an upload starts, its panel (below the whole form) comes fully into
  view and takes the focus; smoothly, unless the person asks for less motion.

moto's S3 runs on a port of its own, as in test_browser_upload.py; the
emulator makes the VM import tasks.
"""

import re

import pytest
from playwright.sync_api import expect

from .browser import (
    CHROMIUM_MISSING,
    CHROMIUM_MISSING_REASON,
    DESKTOP,
    MIB,
    PHONE,
    S3_URLS,
    axe_violations,
    choose_upload,
    describe_violations,
    fill_new_import,
    fixture_browser,  # noqa: F401 (a fixture: pytest finds it here)
    fixture_disk_team,  # noqa: F401 (a fixture: pytest finds it here)
    fixture_page,  # noqa: F401 (a fixture: pytest finds it here)
    fixture_s3,  # noqa: F401 (a fixture: pytest finds it here)
    goto_new_import,
    horizontal_overflow,
    open_new_import,
    raw_disk,
    sign_in,
    wait_for,
)
from .factories import CONVERTING_TASK, give_role_target
from .helpers import deleted_over_its_disk

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING_REASON, allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DELETED_SAYS = "EC2 deleted this task: it cannot be imported."


# -- 1. a task that cannot be imported -----------------------------------------


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1280px"])
def test_a_deleted_task_has_no_use_but_says_why_and_the_list_keeps_its_layout(
    browser, live_server, team, user, s3_set_up, viewport
):
    give_role_target(team)
    deleted = deleted_over_its_disk(s3_set_up)
    context = browser.new_context(base_url=live_server.url, viewport=viewport, bypass_csp=True)
    page = context.new_page()
    sign_in(page, user)
    goto_new_import(page)

    box = page.locator("#task-picker .picker-list")
    row = box.locator("tr", has=page.locator("code", has_text=deleted))
    expect(row).to_contain_text("Deleted (ClientError: No valid partitions. Not a valid volume.)")
    expect(row.locator(".cell-action")).to_have_text(DELETED_SAYS)
    expect(row.get_by_role("button")).to_have_count(0)
    # By keyboard: one "Use" a task that can be imported (three completed, one
    # converting), and Tab from the last goes on past the deleted task's row.
    uses = box.get_by_role("button", name=re.compile("^Use "))
    expect(uses).to_have_count(4)
    assert CONVERTING_TASK in uses.last.get_attribute("aria-label")
    uses.last.focus()
    page.keyboard.press("Tab")
    assert page.evaluate("() => !document.activeElement.closest('.picker-list')")

    # The layout: nothing past the window, the reason inside its card or cell.
    expect(row.locator(".not-importable")).to_be_visible()
    assert horizontal_overflow(page) <= 0
    assert box.evaluate("e => e.scrollWidth <= e.clientWidth")
    reason, card = row.locator(".not-importable").bounding_box(), row.bounding_box()
    assert reason["x"] + reason["width"] <= card["x"] + card["width"] + 0.5
    page.wait_for_load_state("networkidle")
    violations = axe_violations(page)
    assert not violations, "\n" + describe_violations(violations)
    context.close()


# -- 2. the format from the file's name ----------------------------------------


def test_an_unreadable_header_fills_the_format_its_name_suggests_and_says_so(
    page, user, disk_team, s3, tmp_path
):
    zeros = tmp_path / "disk.raw"
    zeros.write_bytes(bytes(4096))
    sign_in(page, user)
    open_new_import(page)

    choose_upload(page, zeros)

    expect(page.get_by_label("Disk format")).to_have_value("raw")
    expect(page.locator("#disk-file-detected")).to_have_text(
        "The format could not be read from the file's header. The file's name suggests RAW:"
        " Disk format below is set to that; check it."
    )
    expect(page.get_by_label("Disk image file")).to_have_accessible_description(
        re.compile("The file's name suggests RAW")
    )


def test_a_format_the_person_chose_stays_and_one_the_page_filled_follows_the_file(
    page, user, disk_team, s3, tmp_path
):
    vmdk = tmp_path / "disk1.vmdk"
    vmdk.write_bytes(b"KDMV" + bytes(2044))
    zeros = tmp_path / "disk.raw"
    zeros.write_bytes(bytes(4096))
    sign_in(page, user)
    open_new_import(page)
    fmt = page.get_by_label("Disk format")

    choose_upload(page, vmdk)  # read from its header: the page's, not the person's
    expect(fmt).to_have_value("vmdk")
    page.get_by_label("Disk image file").set_input_files(str(zeros))
    expect(fmt).to_have_value("raw")

    fmt.select_option("vhd")  # the person's own choice
    page.get_by_label("Disk image file").set_input_files([])
    page.get_by_label("Disk image file").set_input_files(str(zeros))
    expect(page.locator("#disk-file-detected")).to_have_text(
        "The format could not be read from the file's header. The file's name suggests RAW,"
        " but Disk format below is VHD: check which is right."
    )
    expect(fmt).to_have_value("vhd")


# -- 3. the upload's panel -------------------------------------------------------


def is_part_one(url):
    return re.search(r"[?&]partNumber=1(&|$)", url) is not None


RECORD_SCROLLS = """
    window.scrolls = [];
    const scroll = Element.prototype.scrollIntoView;
    Element.prototype.scrollIntoView = function (options) {
        window.scrolls.push({ id: this.id, options });
        return scroll.call(this, options);
    };
"""


@pytest.mark.parametrize("motion", ["no-preference", "reduce"])
def test_the_upload_panel_comes_fully_into_view_and_takes_the_focus(
    browser, live_server, user, disk_team, s3, tmp_path, motion
):
    disk = raw_disk(tmp_path / "web.raw", 12 * MIB)
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP, reduced_motion=motion)
    page = context.new_page()
    page.add_init_script(RECORD_SCROLLS)
    held = []  # parts 2 and 3, never let through: the upload stays under way
    page.route(
        S3_URLS,
        lambda route: route.continue_() if is_part_one(route.request.url) else held.append(route),
    )
    sign_in(page, user)
    fill_new_import(page, disk)

    page.get_by_role("button", name="Start import").click()

    panel = page.locator("#upload-panel")
    # Once the figures' line is there too, the panel is as tall as it gets.
    expect(panel.locator("[data-upload-figures]")).to_contain_text("5.0 MiB of 12.0 MiB")
    for name in ("Pause", "Cancel upload"):
        expect(panel.get_by_role("button", name=name)).to_be_in_viewport(ratio=1)
    expect(panel).to_be_in_viewport(ratio=1)
    # The keyboard and a screen reader land on it too.
    expect(panel.get_by_role("heading", name="Uploading web.raw")).to_be_focused()
    wait_for(page, lambda: len(held) == 2)
    scrolls = page.evaluate("() => window.scrolls")
    assert scrolls == [
        {
            "id": "upload-panel",
            "options": {
                "block": "start",
                "behavior": "auto" if motion == "reduce" else "smooth",
            },
        }
    ]
    page.unroute(S3_URLS)
    context.close()
