"""The VM import task picker's "Use": only what fits the form, and said plainly."""

import re

import pytest
from playwright.sync_api import expect

from .browser import (
    CHROMIUM_MISSING,
    CHROMIUM_MISSING_REASON,
    DESKTOP,
    PHONE,
    axe_violations,
    describe_violations,
    goto_new_import,
    horizontal_overflow,
    launch,
    sign_in,
)
from .factories import SEEDED_TASK, give_role_target

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING_REASON, allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WINDOWS_TASK = "import-ami-0fedcba9876543210"  # "Windows Server 2022 base", seeded


@pytest.fixture(scope="module")
def browser():
    yield from launch()


@pytest.fixture
def new_import(browser, live_server, team, user, emulator):
    """New import for alice, a submitter, her team's tasks listed by the emulator."""
    give_role_target(team)
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, user)
    goto_new_import(page)
    yield page
    context.close()


def use(page, task_id):
    page.get_by_role("button", name=re.compile(f"^Use {task_id}")).click()


def test_use_fills_the_task_its_platform_and_its_os_version_and_says_so(new_import):
    page = new_import
    use(page, SEEDED_TASK)
    expect(page.get_by_label("VM import task ID")).to_have_value(SEEDED_TASK)
    expect(page.get_by_label("Platform")).to_have_value("Linux")
    expect(page.get_by_label("OS version")).to_have_value("22.04")
    expect(page.locator("#task-filled")).to_have_text(
        f"Filled in VM import task {SEEDED_TASK}, platform Linux and OS version 22.04"
        " (read from its description: check it)."
    )
    expect(page.locator("#task-filled")).to_have_attribute("role", "status")


def test_another_task_replaces_the_os_version_the_first_one_filled_in(new_import):
    # A Linux task's 22.04 must not stay on the form once a Windows task is used.
    page = new_import
    use(page, SEEDED_TASK)
    expect(page.get_by_label("OS version")).to_have_value("22.04")

    use(page, WINDOWS_TASK)

    expect(page.get_by_label("Platform")).to_have_value("Windows")
    expect(page.get_by_label("OS version")).to_have_value("2022")
    expect(page.locator("#task-filled")).to_contain_text("platform Windows and OS version 2022")


def test_an_os_version_the_person_typed_is_kept_and_pointed_out_when_the_platform_moves(
    new_import,
):
    page = new_import
    page.get_by_label("Platform").select_option("Windows")
    page.get_by_label("OS version").fill("2019")

    use(page, SEEDED_TASK)

    expect(page.get_by_label("Platform")).to_have_value("Linux")
    expect(page.get_by_label("OS version")).to_have_value("2019")
    expect(page.locator("#task-filled")).to_have_text(
        f"Filled in VM import task {SEEDED_TASK} and platform Linux."
        " Check the OS version you typed, 2019: the platform is now Linux."
    )


def test_a_task_of_unknown_platform_leaves_its_os_version_out_of_a_windows_form(new_import):
    page = new_import
    # EC2 reports no platform for a task it has not yet looked into; the
    # seeded tasks all have one, so this one's is taken off the button.
    page.evaluate(f"document.querySelector('[data-value=\"{SEEDED_TASK}\"]').dataset.platform = ''")
    page.get_by_label("Platform").select_option("Windows")

    use(page, SEEDED_TASK)

    expect(page.get_by_label("Platform")).to_have_value("Windows")
    expect(page.get_by_label("OS version")).to_have_value("")
    expect(page.locator("#task-filled")).to_have_text(
        f"Filled in VM import task {SEEDED_TASK}. The OS version 22.04 in its description"
        " was not filled in: EC2 does not say which platform the task is, so it may not"
        " be a Windows version."
    )


def test_a_used_task_without_an_os_version_takes_out_the_one_the_last_filled_in(new_import):
    page = new_import
    use(page, SEEDED_TASK)
    page.evaluate(
        f"document.querySelector('[data-value=\"{WINDOWS_TASK}\"]').dataset.osVersion = ''"
    )

    use(page, WINDOWS_TASK)

    expect(page.get_by_label("OS version")).to_have_value("")
    expect(page.locator("#task-filled")).to_have_text(
        f"Filled in VM import task {WINDOWS_TASK} and platform Windows."
        " The OS version 22.04, from the task used before, was taken out."
    )


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1280px"])
def test_use_by_keyboard_lands_on_the_task_field_and_the_page_passes_axe(
    browser, live_server, team, user, emulator, viewport
):
    give_role_target(team)
    context = browser.new_context(base_url=live_server.url, viewport=viewport, bypass_csp=True)
    page = context.new_page()
    sign_in(page, user)
    goto_new_import(page)
    button = page.get_by_role("button", name=re.compile(f"^Use {WINDOWS_TASK}"))
    button.focus()
    page.keyboard.press("Enter")

    expect(page.get_by_label("VM import task ID")).to_be_focused()
    expect(page.locator("#task-filled")).to_contain_text("platform Windows")
    page.wait_for_load_state("networkidle")  # the fields' checks, as they change
    assert horizontal_overflow(page) <= 0
    violations = axe_violations(page)
    assert not violations, "\n" + describe_violations(violations)
    context.close()
