"""The admin's audit events on a phone: stacked "Column: value" lines, no sideways box.

At 1280 px both tables (the Audit events list, an import's events) are the
tables they were.
"""

import pytest
from playwright.sync_api import expect

from imports.models import Status

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
from .factories import make_import

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING_REASON, allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_MESSAGE = "The VM import task import-ami-0123 was not found in this account. " * 3

# Each cell's label, as its ::before says it; its column's heading; and how it is laid out.
CELLS = """(table) => {
    const headings = [...table.tHead.rows[0].cells].map(
        (th) => (th.querySelector(".text") || th).textContent.trim());
    return [...table.tBodies[0].rows].flatMap((row) => [...row.cells].map((cell, column) => ({
        label: getComputedStyle(cell, "::before").content,
        heading: headings[column],
        display: getComputedStyle(cell).display,
    })));
}"""

SIDEWAYS = "(box) => box.scrollWidth - box.clientWidth"


@pytest.fixture(scope="module")
def browser():
    yield from launch()


@pytest.fixture
def failed_import(team, user):
    """An import with events whose details are long: what once pushed the table sideways."""
    user.is_superuser = user.is_staff = True
    user.save(update_fields=["is_superuser", "is_staff"])
    image_import = make_import(team, user, Status.IMPORTING, payload={"name": "web_base_" * 8})
    image_import.mark_failed(code="ClientException", message=LONG_MESSAGE)
    make_import(team, user).withdraw(user=user)
    return image_import


def admin_page(browser, live_server, user, viewport, url):
    context = browser.new_context(base_url=live_server.url, viewport=viewport, bypass_csp=True)
    page = context.new_page()
    sign_in(page, user)
    page.goto(url)
    return context, page


def assert_passes_axe(page):
    violations = axe_violations(page)
    assert not violations, "\n" + describe_violations(violations)


def test_the_audit_list_stacks_each_event_at_390_px(browser, live_server, user, failed_import):
    context, page = admin_page(browser, live_server, user, PHONE, "/admin/imports/auditevent/")
    table = page.locator("#result_list")
    expect(table).to_have_attribute("data-labelled", "true")

    cells = table.evaluate(CELLS)
    assert {cell["display"] for cell in cells} == {"block"}
    assert all(cell["label"] == f'"{cell["heading"]}: "' for cell in cells), cells
    assert {cell["heading"] for cell in cells} >= {"Created at", "Action", "Actor", "Detail"}
    assert page.locator("#changelist .results").evaluate(SIDEWAYS) <= 0
    assert horizontal_overflow(page) <= 0
    expect(table.locator("td.field-detail").filter(has_text="not found")).to_be_visible()
    assert_passes_axe(page)
    context.close()


def test_the_audit_list_s_sort_links_stay_in_sight_and_work_by_keyboard(
    browser, live_server, user, failed_import
):
    context, page = admin_page(browser, live_server, user, PHONE, "/admin/imports/auditevent/")
    sort_by_action = page.locator("#result_list thead th.column-action a")
    sort_by_action.focus()
    expect(sort_by_action).to_be_in_viewport()
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/imports/auditevent/?o=*")
    expect(page.locator("#result_list")).to_have_attribute("data-labelled", "true")
    context.close()


def test_an_import_s_events_stack_at_390_px(browser, live_server, user, failed_import):
    url = f"/admin/imports/imageimport/{failed_import.pk}/change/"
    context, page = admin_page(browser, live_server, user, PHONE, url)
    table = page.locator(".audit-events table")

    cells = table.evaluate(CELLS)
    assert {cell["display"] for cell in cells} == {"block"}
    assert all(cell["label"] == f'"{cell["heading"]}: "' for cell in cells), cells
    assert page.locator(".audit-events .table-scroll").evaluate(SIDEWAYS) <= 0
    assert horizontal_overflow(page) <= 0
    assert_passes_axe(page)
    context.close()


@pytest.mark.parametrize(
    "url, table",
    [("/admin/imports/auditevent/", "#result_list"), ("import", ".audit-events table")],
    ids=["audit list", "an import's events"],
)
def test_both_stay_tables_at_1280_px(browser, live_server, user, failed_import, url, table):
    if url == "import":
        url = f"/admin/imports/imageimport/{failed_import.pk}/change/"
    context, page = admin_page(browser, live_server, user, DESKTOP, url)
    cells = page.locator(table).evaluate(CELLS)
    assert {cell["display"] for cell in cells} == {"table-cell"}
    assert {cell["label"] for cell in cells} == {"none"}
    expect(page.locator(f"{table} thead")).to_be_visible()
    assert horizontal_overflow(page) <= 0
    context.close()
