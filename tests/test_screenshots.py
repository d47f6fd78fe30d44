"""The README's screenshots, made by the browser: `make screenshots`.

Deselected from the default run (they write into docs/screenshots/); run with
`pytest -m screenshots`. Each screenshot is a real page of the portal, on rows
built with the factories.
"""

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from imports.models import ImageImport, Membership, Status

from .activity import busy_team
from .browser import (
    CHROMIUM_MISSING,
    CHROMIUM_MISSING_REASON,
    DESKTOP,
    PHONE,
    goto_new_import,
    launch,
    sign_in,
)
from .factories import SEEDED_AMI, make_import, valid_payload

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING_REASON, allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.screenshots, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


@pytest.fixture(scope="module")
def browser():
    yield from launch()


def walked(team, user, name, version, *, retry=False):
    """An import walked through the worker's own transitions, so it has a timeline."""
    payload = valid_payload(clientToken=str(uuid.uuid4()), name=name, semanticVersion=version)
    image_import, _ = ImageImport.submit(team=team, user=user, payload=payload)
    image_import.claim()
    if retry:
        image_import.mark_retrying(
            code="ServiceUnavailableException", message="Service unavailable.", delay=4
        )
        image_import.claim()
    arn = f"arn:aws:imagebuilder:us-east-1:123456789012:image/{name.lower().replace(' ', '-')}"
    image_import.mark_importing(
        image_arn=f"{arn}/{version}/1",
        request_id=str(uuid.uuid4()),
        client_token=image_import.payload["clientToken"],  # AWS echoes the token it was sent
    )
    return image_import


@pytest.fixture
def imports(team, user):
    failed = make_import(
        team,
        user,
        Status.FAILED,
        attempts=1,
        error_code="ClientException",
        error_message="The VM import task import-ami-0aa11bb22cc33dd44 was not found.",
        payload={"name": "Legacy CRM", "semanticVersion": "0.9.0"},
    )
    available = walked(team, user, "Web server base", "1.2.0")
    ImageImport.objects.filter(pk=available.pk).update(progress=100, image_state="DISTRIBUTING")
    available.refresh_from_db()
    amis = [{"region": "us-east-1", "image": SEEDED_AMI, "accountId": "123456789012"}]
    available.mark_available(amis=amis)
    importing = walked(team, user, "Database base", "2.0.1", retry=True)
    ImageImport.objects.filter(pk=importing.pk).update(
        progress=62, status_message="converting", image_state="CREATING"
    )
    return {"failed": failed, "available": available, "importing": importing}


def shoot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_screenshots(browser, live_server, imports, user, admin_user, emulator):
    for viewport, suffix in [(DESKTOP, "desktop"), (PHONE, "phone")]:
        context = browser.new_context(base_url=live_server.url, viewport=viewport)
        page = context.new_page()
        sign_in(page, user)
        shoot(page, f"history-{suffix}")
        goto_new_import(page)
        expect(page.get_by_role("button", name="Use", exact=False).first).to_be_visible()
        shoot(page, f"new-import-{suffix}")
        page.goto(f"/imports/{imports['importing'].pk}")
        shoot(page, f"import-in-progress-{suffix}")
        page.goto(f"/imports/{imports['available'].pk}")
        shoot(page, f"import-available-{suffix}")
        page.goto("/team")
        shoot(page, f"team-{suffix}")
        page.goto("/tokens")
        shoot(page, f"tokens-{suffix}")
        context.close()

    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    page = context.new_page()
    page.goto("/admin/login/")
    page.get_by_label("Username").fill(admin_user.username)
    page.get_by_label("Password").fill("password")  # pytest-django's admin_user
    page.get_by_role("button", name="Log in").click()
    page.goto("/admin/imports/auditevent/")
    shoot(page, "audit-desktop")
    context.close()


def test_team_activity_screenshots(browser, live_server, team, user):
    """Apart from the others, so that the activity's can be made again alone (-k activity)."""
    Membership.objects.filter(user=user, team=team).update(role=Membership.Role.ADMIN)
    busy_team(team, user)
    for viewport, suffix in [(DESKTOP, "desktop"), (PHONE, "phone")]:
        context = browser.new_context(base_url=live_server.url, viewport=viewport)
        page = context.new_page()
        sign_in(page, user)
        page.goto("/team/activity")
        shoot(page, f"team-activity-{suffix}")
        context.close()
