"""Invitations in a browser: a team admin invites by keyboard, the invited person joins.

At 390 px and 1280 px, each page fits the window and axe-core finds nothing.
"""

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail
from playwright.sync_api import expect

from imports.models import Membership

from .browser import (
    CHROMIUM_MISSING,
    CHROMIUM_MISSING_REASON,
    DESKTOP,
    PHONE,
    launch,
    page_problems,
    sign_in,
)
from .factories import make_member

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING_REASON, allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser():
    yield from launch()


def latest_link():
    """The newest invitation e-mail's link, path and query: PORTAL_URL is not the live server."""
    (link,) = re.findall(r"http://\S+/invitation\?\S+", mail.outbox[-1].body)
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def press_tab_until(page, locator, limit=60):
    """Tab through the page until `locator` has the focus, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if locator.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{locator} was never reached by Tab")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1280px"])
def test_a_team_admin_invites_by_keyboard_and_the_colleague_joins(
    browser, live_server, team, viewport
):
    mail.outbox = []
    ada = make_member("ada", team, Membership.Role.ADMIN)
    found = {}
    admin_context = browser.new_context(
        base_url=live_server.url, viewport=viewport, bypass_csp=True
    )
    page = admin_context.new_page()
    sign_in(page, ada)
    page.goto("/team")

    # By keyboard: to the address field, the role, and Add.
    address = page.get_by_label("Username or e-mail")
    press_tab_until(page, address)
    page.keyboard.type("grace.hopper.with.a.long.address@example-corporation.com")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Role", exact=True)).to_be_focused()
    page.keyboard.press("ArrowUp")  # Submitter -> Viewer
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Add", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Invitation sent to grace.hopper")).to_be_visible()
    expect(page.get_by_text("Invited", exact=True)).to_be_visible()
    found["team page, an invitation waiting"] = page_problems(page)

    resend = page.get_by_role("button", name=re.compile("^Send the invitation again to "))
    resend.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Invitation sent again")).to_be_visible()
    assert len(mail.outbox) == 2
    link = latest_link()

    # Unknown as a username, not an address: the error is said beside the field.
    page.get_by_label("Username or e-mail").fill("nobody")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_text("No active user is called 'nobody'")).to_be_visible()
    found["team page, a wrong member"] = page_problems(page)

    guest_context = browser.new_context(
        base_url=live_server.url, viewport=viewport, bypass_csp=True
    )
    guest = guest_context.new_page()
    guest.goto(link)
    expect(guest.get_by_role("heading", name="Join team platform")).to_be_visible()
    assert "token" not in guest.url  # moved to the session at once
    found["accept page"] = page_problems(guest)

    password = guest.get_by_label("New password", exact=True)
    press_tab_until(guest, password)
    guest.keyboard.type("grace")
    guest.keyboard.press("Tab")
    expect(guest.get_by_label("New password confirmation")).to_be_focused()
    guest.keyboard.type("grace")
    guest.keyboard.press("Enter")
    expect(guest.get_by_role("alert").first).to_contain_text("Your password was not set")
    found["accept page with errors"] = page_problems(guest)

    guest.get_by_label("New password", exact=True).fill("tall-ships-7")
    guest.get_by_label("New password confirmation").fill("tall-ships-7")
    guest.get_by_role("button", name="Set my password and join").click()
    expect(guest.get_by_role("heading", name=re.compile("^Imports"))).to_be_visible()
    expect(guest.get_by_text("you are in team platform as Viewer")).to_be_visible()
    found["history after joining"] = page_problems(guest)

    used = browser.new_context(base_url=live_server.url, viewport=viewport, bypass_csp=True)
    stale = used.new_page()
    stale.goto(link)
    expect(stale.get_by_role("heading", name="This invitation link does not work")).to_be_visible()
    found["a used link"] = page_problems(stale)

    for context in (admin_context, guest_context, used):
        context.close()
    found = {name: problems for name, problems in found.items() if problems}
    assert not found, "\n" + "\n".join(
        f"{name}:\n" + "\n".join(problems) for name, problems in found.items()
    )
