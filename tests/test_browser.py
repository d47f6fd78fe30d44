"""The portal in a real browser: what a person sees, end to end.

Playwright drives Debian's Chromium against pytest-django's live server. A
real Celery worker runs in this process and its boto3 calls travel over
HTTP to the project's AWS emulator, so the status panel's htmx polling shows
the worker's results as they happen.
"""

import re

import pytest
from playwright.sync_api import expect

from imports import tasks
from imports.models import ImageImport, Membership, Status
from notifications.models import Webhook

from .browser import (
    CHROMIUM_MISSING,
    CHROMIUM_MISSING_REASON,
    launch,
    sign_in,
    wait_for_pickers,
)
from .factories import SEEDED_AMI, SEEDED_TASK, make_import, make_member, valid_payload
from .helpers import wait_for_status
from .receivers import HttpReceiver, verify

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING_REASON, allow_module_level=True)

# The status panel polls every 2 s; allow several polls on a busy machine.
POLLED = 15_000
IMAGE_ARN = re.compile(r"^arn:aws:imagebuilder:us-east-1:123456789012:image/")
DETAIL_URL = re.compile(r"/imports/\d+$")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser():
    yield from launch()


def open_page(browser, live_server, **context_options):
    """A page in a fresh context (its own cookies), closed once the page is quiet."""
    context = browser.new_context(base_url=live_server.url, **context_options)
    page = context.new_page()
    yield page
    # Let the last htmx request (the task picker loads as the form opens)
    # finish before the emulator stops and the database is flushed under it.
    page.wait_for_load_state("networkidle")
    context.close()


@pytest.fixture
def page(browser, live_server):
    yield from open_page(browser, live_server)


@pytest.fixture
def page_without_js(browser, live_server):
    yield from open_page(browser, live_server, java_script_enabled=False)


def open_new_import(page, *, scripts=True):
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New import").click()
    expect(page.get_by_role("heading", name="New import")).to_be_visible()
    # The heading shows before htmx has wired the fields (at DOMContentLoaded):
    # a field left before then sends no check, so wait for the page's load.
    page.wait_for_load_state("load")
    if scripts:  # without JavaScript no picker ever loads
        wait_for_pickers(page)


def fill_form(page, *, name="Web server base", semantic_version="1.0.0", platform="Linux"):
    page.get_by_label("Name").fill(name)
    page.get_by_label("Semantic version").fill(semantic_version)
    page.get_by_label("Platform").select_option(platform)


def errors_under(page, field_name):
    """The message list under a field, which live validation replaces."""
    return page.locator(f"#errors-{field_name}")


def tag_rows(page):
    return page.locator("#tags .tag-row")


def test_the_new_import_page_says_nothing_is_sent_to_aws(page, user, emulator):
    sign_in(page, user)
    open_new_import(page)

    expect(page.get_by_role("note")).to_have_text("Local AWS emulator: nothing is sent to AWS.")


def test_a_field_is_checked_when_the_person_leaves_it(page, user, emulator):
    sign_in(page, user)
    open_new_import(page)
    version = page.get_by_label("Semantic version")

    version.fill("1.0.0/1")
    version.press("Tab")

    expect(errors_under(page, "semanticVersion")).to_have_text(
        re.compile("AWS assigns the build number after the slash itself")
    )
    expect(page).to_have_url(re.compile("/imports/new$"))  # nothing was submitted

    version.fill("1.0.0")
    version.press("Tab")

    expect(errors_under(page, "semanticVersion")).to_be_empty()
    assert not ImageImport.objects.exists()


def test_tag_rows_are_added_checked_and_removed_keeping_the_other_rows(page, user, emulator):
    sign_in(page, user)
    open_new_import(page)
    add_tag = page.get_by_role("button", name="Add a tag")

    add_tag.click()
    expect(tag_rows(page)).to_have_count(1)
    add_tag.click()
    expect(tag_rows(page)).to_have_count(2)

    first, second = tag_rows(page).nth(0), tag_rows(page).nth(1)
    first.get_by_label("Key").fill("aws:owner")
    first.get_by_label("Key").press("Tab")
    expect(errors_under(page, "tags-0-key")).to_have_text(
        re.compile('Tag keys may not begin with "aws:"')
    )
    second.get_by_label("Key").fill("team")
    second.get_by_label("Value").fill("platform")

    page.get_by_role("button", name="Remove tag 1").click()

    expect(tag_rows(page)).to_have_count(1)
    expect(tag_rows(page).first.get_by_label("Key")).to_have_value("team")
    expect(tag_rows(page).first.get_by_label("Value")).to_have_value("platform")


def test_enter_in_a_field_starts_the_import_and_keeps_the_tags(page, user, emulator, worker):
    sign_in(page, user)
    open_new_import(page)
    page.get_by_role("button", name="Add a tag").click()
    tag_rows(page).first.get_by_label("Key").fill("team")
    fill_form(page)
    page.get_by_label("VM import task ID").fill(SEEDED_TASK)

    page.get_by_label("Name").press("Enter")

    expect(page).to_have_url(DETAIL_URL)
    assert ImageImport.objects.get().payload["tags"] == {"team": ""}


def test_an_import_shows_its_image_arn_then_its_ami_without_a_reload(page, user, emulator, worker):
    # AWS answers slowly, so the page is open before the image ARN exists
    # and only the status panel's polling can bring it.
    emulator.latency(3, operation="ImportVmImage")
    sign_in(page, user)
    open_new_import(page)
    fill_form(page)

    page.get_by_role("button", name=re.compile(f"^Use {SEEDED_TASK}")).click()
    expect(page.get_by_label("VM import task ID")).to_have_value(SEEDED_TASK)
    # "Ubuntu 22.04 web server (VMware OVA export)": the version it names is offered.
    expect(page.get_by_label("OS version")).to_have_value("22.04")
    page.get_by_role("button", name="Start import").click()

    expect(page).to_have_url(DETAIL_URL)
    expect(page.get_by_role("heading", name="Web server base")).to_be_visible()
    expect(page.locator("#image-arn")).to_have_count(0)
    page.evaluate("window.stillTheSamePage = true")  # a reload would lose it

    expect(page.locator("#image-arn")).to_have_text(IMAGE_ARN, timeout=POLLED)
    status = page.locator("#status .status")
    expect(status).to_have_text("Importing")
    # The task is the person's, not one the portal started: not the portal's to cancel.
    refusal = page.locator("#status .cancel-form")
    expect(refusal).to_contain_text("which the portal did not start")
    expect(page.get_by_role("link", name="Cancel this import…")).to_have_count(0)

    tasks.refresh_imports()  # what beat does every few seconds

    expect(status).to_have_text("Available", timeout=POLLED)
    expect(page.locator("#status code.ami")).to_have_text(SEEDED_AMI)
    # The rest of the page follows the status: nothing to say of cancelling a finished import.
    expect(refusal).to_have_count(0)
    expect(page.locator("#timeline")).to_contain_text("Importing → Available")
    assert page.evaluate("window.stillTheSamePage") is True


def test_a_double_click_on_submit_makes_one_import(page, user, emulator, worker):
    sign_in(page, user)
    open_new_import(page)
    fill_form(page)
    page.get_by_label("VM import task ID").fill(SEEDED_TASK)

    # Both clicks post the form with its one clientToken: the second finds
    # the import the first recorded instead of making another.
    page.get_by_role("button", name="Start import").dblclick()

    expect(page).to_have_url(DETAIL_URL)
    expect(page.locator("#image-arn")).to_have_text(IMAGE_ARN, timeout=POLLED)
    assert ImageImport.objects.count() == 1
    assert emulator.calls()["imagesCreated"] == 1


def test_without_javascript_the_pickers_say_to_type_instead_of_loading(page_without_js, user):
    page = page_without_js
    sign_in(page, user)
    open_new_import(page, scripts=False)
    for picker, instead in (
        ("#task-picker", "type the task ID above"),
        ("#file-picker", "type the file's key above"),
    ):
        # Located by CSS: Playwright's text matching skips <noscript>.
        expect(page.locator(f"{picker} noscript p")).to_be_visible()
        expect(page.locator(f"{picker} noscript p")).to_contain_text(instead)
        expect(page.locator(f"{picker} p", has_text="Loading")).to_be_hidden()  # it never ends


def test_without_javascript_tags_are_added_and_the_form_submits(
    page_without_js, user, emulator, worker
):
    page = page_without_js
    sign_in(page, user)
    open_new_import(page, scripts=False)
    fill_form(page)
    page.get_by_label("VM import task ID").fill(SEEDED_TASK)

    page.get_by_role("button", name="Add a tag").click()  # a full page round trip

    expect(tag_rows(page)).to_have_count(1)
    expect(page.get_by_label("Name")).to_have_value("Web server base")
    tag_rows(page).first.get_by_label("Key").fill("team")
    tag_rows(page).first.get_by_label("Value").fill("platform")
    page.get_by_role("button", name="Start import").click()

    expect(page).to_have_url(DETAIL_URL)
    # The status panel says where the import is (no flash message that
    # would outlive its truth); the worker may already have moved it on.
    expect(page.locator("#status")).to_contain_text(
        re.compile(
            "Import recorded; the worker is sending it to AWS|Sending the request|AWS accepted"
        )
    )
    expect(page.get_by_role("row", name="team platform")).to_be_visible()
    # Nothing polls without JavaScript: the person reloads once the worker is done.
    wait_for_status(ImageImport.objects.get(), Status.IMPORTING)
    page.reload()
    expect(page.locator("#image-arn")).to_have_text(IMAGE_ARN)


def test_two_teams_each_see_only_their_own_imports(browser, live_server, user, outsider, emulator):
    """alice (team platform) and mallory (team data), side by side in two browsers."""
    from imports.models import ImageImport

    ImageImport.submit(
        team=user.memberships.get().team, user=user, payload=valid_payload(name="Platform base")
    )
    ImageImport.submit(
        team=outsider.memberships.get().team, user=outsider, payload=valid_payload(name="Data base")
    )
    for person, own, other in [
        (user, "Platform base", "Data base"),
        (outsider, "Data base", "Platform base"),
    ]:
        for page in open_page(browser, live_server):
            sign_in(page, person)
            expect(page.get_by_role("link", name=own)).to_be_visible()
            expect(page.get_by_role("link", name=other)).to_have_count(0)


def test_the_history_follows_every_import_in_flight_with_one_poll(page, user, team, emulator):
    first = make_import(team, user, Status.IMPORTING, name="First in flight")
    second = make_import(team, user, Status.QUEUED, name="Second in flight")
    polls = []
    page.on("request", lambda request: "/imports/in-flight" in request.url and polls.append(1))
    sign_in(page, user)
    first_row = page.locator(f"#import-{first.pk} .status")
    second_row = page.locator(f"#import-{second.pk} .status")
    expect(first_row).to_have_text("Importing")

    first.mark_available(amis=[])
    second.mark_failed(code="ClientException", message="no such task")

    expect(first_row).to_have_text("Available", timeout=POLLED)
    expect(second_row).to_have_text("Failed", timeout=POLLED)
    settled = len(polls)
    page.wait_for_timeout(4000)  # longer than the 3 s interval
    assert len(polls) == settled, "the page kept polling with nothing in flight"
    assert settled >= 1


# Headless pages are always "visible": this makes the page believe it is a
# background tab, and records each Notification the page creates (the real
# one is still made, with the permission Playwright granted).
BACKGROUND_TAB = """
Object.defineProperty(document, "hidden", { get: () => true });
Object.defineProperty(document, "visibilityState", { get: () => "hidden" });
window.notificationsShown = [];
const RealNotification = window.Notification;
function RecordingNotification(title, options) {
  window.notificationsShown.push({ title, body: options && options.body });
  return new RealNotification(title, options);
}
Object.defineProperty(RecordingNotification, "permission", {
  get: () => RealNotification.permission,
});
RecordingNotification.requestPermission = (...args) => RealNotification.requestPermission(...args);
window.Notification = RecordingNotification;
"""


@pytest.fixture
def background_page(browser, live_server):
    for page in open_page(browser, live_server, permissions=["notifications"]):
        page.add_init_script(BACKGROUND_TAB)
        yield page


def notifications_shown(page):
    # Polled from here: wait_for_function evaluates strings, which the CSP forbids.
    for _ in range(POLLED // 250):
        shown = page.evaluate("window.notificationsShown")
        if shown:
            return shown
        page.wait_for_timeout(250)
    raise AssertionError("the page showed no notification")


def test_a_background_import_page_notifies_when_the_import_ends(background_page, user, team):
    page = background_page
    image_import = make_import(team, user, Status.IMPORTING, name="Web server base")
    sign_in(page, user)
    page.goto(f"/imports/{image_import.pk}")
    expect(page).to_have_title(re.compile(r"^Importing · Web server base"))
    assert page.evaluate("Notification.permission") == "granted"
    assert page.evaluate("window.notificationsShown") == []

    image_import.mark_available(amis=[{"region": "us-east-1", "image": SEEDED_AMI}])

    assert notifications_shown(page) == [
        {"title": "Web server base: Available", "body": f"Import #{image_import.pk} is available."}
    ]
    expect(page).to_have_title(re.compile(r"^Available · Web server base"))


def test_a_background_history_notifies_for_each_import_that_ends(background_page, user, team):
    page = background_page
    running = make_import(team, user, Status.IMPORTING, name="Still running")
    ending = make_import(team, user, Status.IMPORTING, name="About to fail")
    sign_in(page, user)
    expect(page).to_have_title(re.compile(r"^\(2 running\) Imports"))

    ending.mark_failed(code="ClientException", message="no such task")

    shown = notifications_shown(page)
    assert [notification["title"] for notification in shown] == ["About to fail: Failed"]
    expect(page).to_have_title(re.compile(r"^\(1 running\) Imports"))
    assert running.status == Status.IMPORTING


def test_a_person_who_has_not_decided_is_offered_the_permission(page, user, team):
    running = make_import(team, user, Status.IMPORTING, name="Running")
    sign_in(page, user)
    offer = page.get_by_role("button", name="Notify me")
    expect(offer).to_be_visible()
    page.goto(f"/imports/{running.pk}")
    expect(offer).to_be_visible()

    running.mark_available(amis=[{"region": "us-east-1", "image": SEEDED_AMI}])

    # Nothing is left to tell of: the offer goes with the last running import.
    expect(page.locator("#status .status")).to_have_text("Available", timeout=POLLED)
    expect(offer).to_have_count(0)


def test_the_offer_goes_and_comes_back_with_the_running_imports_shown(page, user, team):
    make_import(team, user, Status.IMPORTING, name="Running")
    make_import(team, user, Status.AVAILABLE, name="Done")
    sign_in(page, user)
    offer = page.get_by_role("button", name="Notify me")
    names = page.locator("#history-table .cell-name a")
    expect(offer).to_be_visible()

    page.get_by_label("Status").select_option("available")
    expect(names).to_have_text(["Done"])
    expect(offer).to_have_count(0)

    page.get_by_label("Status").select_option("")  # Any: the running import again
    expect(names).to_have_text(["Done", "Running"])
    expect(offer).to_be_visible()


def test_a_team_admin_adds_a_webhook_sees_its_secret_once_and_tests_it(
    page, team, settings, worker
):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on this machine
    admin = make_member("ada", team, Membership.Role.ADMIN)
    with HttpReceiver() as receiver:
        sign_in(page, admin)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Team").click()
        page.get_by_role("link", name="Add a webhook").click()
        page.get_by_label("Webhook URL").fill(receiver.url("/portal-hook"))
        page.get_by_label("Kind").select_option(label="Generic JSON, signed")
        page.get_by_role("button", name="Add the webhook").click()

        secret = page.locator("#webhook-secret").text_content()
        assert secret == Webhook.objects.get().secret
        assert page.url.endswith("/team/webhooks/added")  # a redirect: a reload adds nothing
        page.reload()
        expect(page).to_have_title(re.compile(r"^Team "))
        expect(page.get_by_text(secret)).to_have_count(0)
        assert Webhook.objects.count() == 1
        page.get_by_role("button", name="Send a test message").click()
        expect(page.get_by_role("status").filter(has_text="Test message queued")).to_be_visible()

        delivery_row = page.locator("table.deliveries tbody tr").first
        for _ in range(40):  # the worker sends it; the page shows it on the next load
            page.reload()
            if "Delivered" in (delivery_row.text_content() or ""):
                break
            page.wait_for_timeout(250)
        expect(delivery_row).to_contain_text("Test message")
        expect(delivery_row).to_contain_text("Delivered")
        expect(delivery_row).to_contain_text("200")
        page.screenshot(path="/tmp/browser-webhooks.png", full_page=True)

    (request,) = receiver.requests
    assert request["path"] == "/portal-hook"
    assert verify(secret, request["headers"], request["body"])
