"""Every page as a person meets it, on a phone and on a desktop.

Each page, signed out and signed in, at 390 and 1280 px wide: axe-core finds
no violation of any impact, and the page is never wider than the window.
Rows are built with the factories, in every status a page can show.
"""

import re
from datetime import timedelta

import boto3
import pytest
from playwright.sync_api import expect

from imports.models import ApiToken, ImageImport, Membership, Status, Team
from imports.templatetags.portal import duration
from notifications import tasks as notification_tasks
from notifications.models import Delivery, Event, Webhook

from .browser import (
    CHROMIUM_MISSING,
    CHROMIUM_MISSING_REASON,
    DESKTOP,
    PHONE,
    axe_violations,
    describe_violations,
    elements_past_the_right_edge,
    goto_new_import,
    horizontal_overflow,
    launch,
    page_problems,
    sign_in,
)
from .factories import SEEDED_AMI, SEEDED_TASK, give_role_target, make_import, make_member

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING_REASON, allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_NAME = "Web server base image for the payments platform, hardened " * 3
ARN = "arn:aws:imagebuilder:us-east-1:123456789012:image/web-server-base-hardened/1.0.0/1"


@pytest.fixture(scope="module")
def browser():
    yield from launch()


@pytest.fixture
def portal(team, user, emulator):
    """alice, team admin of platform and viewer in qa, with imports in every state."""
    Membership.objects.filter(user=user, team=team).update(role=Membership.Role.ADMIN)
    # The team menu as wide as its longest name: one of the longest a team may have.
    qa = Team.objects.create(name="quality_assurance_and_release_engineering_" * 2)
    Membership.objects.create(user=user, team=qa, role=Membership.Role.VIEWER)
    make_member("bob", team)
    give_role_target(team)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    ApiToken.issue(user=user, team=team, name="ci")
    queued = make_import(team, user, payload={"name": LONG_NAME})
    importing = make_import(
        team,
        user,
        Status.IMPORTING,
        image_arn=ARN,
        progress=40,
        status_message="converting",
        image_state="BUILDING",
        payload={"name": "Database base", "tags": {"team": "platform", "cost-centre": "42"}},
    )
    available = make_import(
        team,
        user,
        Status.AVAILABLE,
        image_arn=ARN,
        progress=100,
        image_state="AVAILABLE",
        amis=[{"region": "us-east-1", "image": SEEDED_AMI, "accountId": "123456789012"}],
    )
    failed = make_import(
        team,
        user,
        Status.FAILED,
        attempts=1,
        error_code="ClientException",
        error_message="The VM import task import-ami-0123 was not found in this account.",
    )
    # A name of underscores has no place to wrap but anywhere.
    snake_case = make_import(team, user, payload={"name": "ubuntu_2204_web_server_base_" * 4})
    cancelled = make_import(team, user)
    cancelled.withdraw(user=user)
    return {
        "queued": queued,
        "importing": importing,
        "available": available,
        "failed": failed,
        "snake_case": snake_case,
        "cancelled": cancelled,
    }


def signed_in_pages(portal):
    importing = portal["importing"]
    return {
        "history": "/",
        "history, filtered to nothing": "/?status=failed&q=nothing-matches",
        "new import": "/imports/new",
        "import queued": f"/imports/{portal['queued'].pk}",
        "import importing": f"/imports/{importing.pk}",
        "import available": f"/imports/{portal['available'].pk}",
        "import failed": f"/imports/{portal['failed'].pk}",
        "cancel confirmation": f"/imports/{importing.pk}/cancel",
        "team": "/team",
        "remove member confirmation": "/team/members/{bob}/remove",
        "tokens": "/tokens",
        "revoke confirmation": "/tokens/{token}/revoke",
        "import named without spaces": f"/imports/{portal['snake_case'].pk}",
        "its cancel confirmation": f"/imports/{portal['snake_case'].pk}/cancel",
        "import cancelled": f"/imports/{portal['cancelled'].pk}",
        "add a webhook": "/team/webhooks/new",
        "profile": "/profile",
        "change password": "/accounts/password_change/",
        "password changed": "/accounts/password_change/done/",
        # What a person sees when something goes wrong (400, 405).
        "a page number that is none": "/?page=abc",
        "a poll of no imports": "/imports/in-flight?ids=abc",
        "a NUL in the search": "/?q=%00",
        "sign out by a link": "/accounts/logout/",
        "a team switch by a link": "/teams/switch",
    }


def audit(page, url):
    """What is wrong with the page at url: axe-core's violations and any overflow."""
    page.goto(url)
    page.wait_for_load_state("networkidle")  # htmx's first loads (the task picker)
    problems = []
    overflow = horizontal_overflow(page)
    if overflow > 0:
        problems.append(
            f"  {overflow}px wider than the {page.viewport_size['width']}px window: "
            + ", ".join(elements_past_the_right_edge(page))
        )
    violations = axe_violations(page)
    if violations:
        problems.append(describe_violations(violations))
    return problems


def report(found):
    return "\n".join(f"{name}:\n" + "\n".join(problems) for name, problems in found.items())


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1280px"])
def test_every_signed_in_page_passes_axe_and_fits_the_window(
    browser, live_server, portal, user, team, viewport
):
    # A user name as long as an e-mail address can make it.
    user.username = "alice.long.username.for.layout@example-corporation.com"
    user.set_password("pw-" + user.username)
    user.save(update_fields=["username", "password"])
    context = browser.new_context(base_url=live_server.url, viewport=viewport, bypass_csp=True)
    page = context.new_page()
    sign_in(page, user)
    bob = team.memberships.get(user__username="bob")
    token = ApiToken.objects.get(name="ci")
    found = {}
    for name, url in signed_in_pages(portal).items():
        problems = audit(page, url.format(bob=bob.pk, token=token.pk))
        if problems:
            found[name] = problems
    goto_new_import(page)
    page.get_by_role("button", name="Start import").click()  # every field left empty
    expect(page.locator(".error-summary")).to_be_visible()
    problems = page_problems(page)
    if problems:
        found["new import with errors"] = problems
    page.goto("/team/webhooks/new")
    page.get_by_label("Webhook URL").fill("ftp://hooks.example.com/x")
    page.get_by_role("button", name="Add the webhook").click()
    expect(page.get_by_label("Webhook URL")).to_be_focused()  # where the error is
    problems = page_problems(page)
    if problems:
        found["add a webhook with errors"] = problems
    context.close()
    assert not found, "\n" + report(found)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1280px"])
def test_the_signed_out_pages_pass_axe_and_fit_the_window(browser, live_server, db, viewport):
    context = browser.new_context(base_url=live_server.url, viewport=viewport, bypass_csp=True)
    page = context.new_page()
    found = {}
    for name, url in {
        "sign in": "/accounts/login/",
        "not found": "/no-such-page",
        "a NUL in a search": "/?q=%00",
        "sign out by a link": "/accounts/logout/",
    }.items():
        problems = audit(page, url)
        if problems:
            found[name] = problems
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("did not match")
    problems = page_problems(page)
    if problems:
        found["sign in, refused"] = problems
    # A form left open in another tab while the person signed in: its token is old.
    stale = context.new_page()
    stale.goto("/accounts/login/")
    page.goto("/accounts/login/")
    user = make_member("carol", Team.objects.create(name="carol's"))
    sign_in(page, user)
    stale.get_by_label("Username").fill(user.username)
    stale.get_by_label("Password").fill("pw-" + user.username)
    stale.get_by_role("button", name="Sign in").click()
    expect(stale.get_by_role("heading", level=1)).to_have_text("This form has expired")
    problems = page_problems(stale)
    if problems:
        found["a form from before signing in (CSRF)"] = problems
    context.close()
    assert not found, "\n" + report(found)


def test_the_history_is_a_list_of_cards_on_a_phone(browser, live_server, portal, user):
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    page = context.new_page()
    sign_in(page, user)
    row = page.locator(f"#import-{portal['importing'].pk}")
    box = row.bounding_box()
    assert box["width"] <= PHONE["width"]
    assert box["height"] < 320, f"a card {box['height']}px tall"
    expect(row.locator(".status")).to_have_text("Importing")
    expect(row).to_contain_text("Building")  # Image Builder's BUILDING, as every page says it
    expect(row.get_by_role("button", name="Copy image ARN of Database base")).to_be_visible()
    failed = page.locator(f"#import-{portal['failed'].pk}")
    expect(failed).to_contain_text("was not found in this account")
    context.close()


def test_new_import_opens_on_name_and_the_skip_link_reaches_the_main_content(
    browser, live_server, portal, user
):
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, user)
    goto_new_import(page)
    expect(page.get_by_label("Name")).to_be_focused()

    page.goto("/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    context.close()


def test_the_error_summary_links_to_each_field(browser, live_server, portal, user):
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, user)
    goto_new_import(page)
    page.get_by_role("button", name="Start import").click()

    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    summary.get_by_role("link", name=re.compile("^Semantic version")).click()
    expect(page.get_by_label("Semantic version")).to_be_focused()
    context.close()


def test_a_fixed_field_loses_its_red_border(browser, live_server, portal, user):
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, user)
    goto_new_import(page)
    page.get_by_role("button", name="Start import").click()
    version = page.get_by_label("Semantic version")
    field = page.locator(".field", has=version)
    expect(field).to_have_class(re.compile(r"\binvalid\b"))
    expect(version).to_have_attribute("aria-invalid", "true")

    version.fill("1.0.0")
    version.press("Tab")

    expect(page.locator("#errors-semanticVersion")).to_be_empty()
    expect(field).not_to_have_class(re.compile(r"\binvalid\b"))
    expect(version).to_have_attribute("aria-invalid", "false")
    context.close()


def test_an_invalid_tag_key_keeps_its_error_and_focus_follows_the_rows(
    browser, live_server, portal, user
):
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, user)
    goto_new_import(page)
    page.get_by_role("button", name="Add a tag").click()
    key = page.locator("#tags .tag-row").first.get_by_label("Key")
    expect(key).to_be_focused()  # the new row's Key, where the person types next
    key.fill("aws:owner")
    key.press("Tab")
    expect(page.locator("#errors-tags-0-key")).to_contain_text('may not begin with "aws:"')

    page.get_by_role("button", name="Add a tag").click()

    expect(page.locator("#tags .tag-row")).to_have_count(2)
    expect(page.locator("#tags .tag-row").nth(1).get_by_label("Key")).to_be_focused()
    expect(page.locator("#errors-tags-0-key")).to_contain_text('may not begin with "aws:"')
    expect(page.locator("#errors-tags-1-key")).to_be_empty()

    page.get_by_role("button", name="Remove tag 1").click()  # the row that took its place
    expect(page.locator("#tags .tag-row")).to_have_count(1)
    expect(page.locator("#tags .tag-row").first.get_by_label("Key")).to_be_focused()
    page.get_by_role("button", name="Remove tag 1").click()  # none left: Add a tag
    expect(page.get_by_role("button", name="Add a tag")).to_be_focused()
    context.close()


def test_a_name_longer_than_aws_allows_is_said_as_the_person_types(
    browser, live_server, portal, user
):
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, user)
    goto_new_import(page)
    name = page.get_by_label("Name")

    name.fill("n" * 2000)

    expect(name).to_have_value("n" * 2000)  # nothing cut without a word
    expect(page.locator("#errors-name")).to_contain_text(
        "Name must be at most 1024 characters; this one has 2000."
    )
    name.fill("n" * 20)
    expect(page.locator("#errors-name")).to_be_empty()
    context.close()


def test_picking_a_windows_task_sets_the_platform_and_warns_on_a_mismatch(
    browser, live_server, portal, user
):
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, user)
    goto_new_import(page)
    platform = page.get_by_label("Platform")
    platform.select_option("Linux")

    page.get_by_role("button", name=re.compile("^Use import-ami-0fedcba9876543210")).click()

    expect(platform).to_have_value("Windows")
    warning = page.locator("#platform-warning")
    expect(warning).to_be_hidden()
    platform.select_option("Linux")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("as Windows, but the platform chosen is Linux")

    page.get_by_role("button", name=re.compile(f"^Use {SEEDED_TASK}")).click()
    expect(platform).to_have_value("Linux")
    expect(warning).to_be_hidden()
    context.close()


def add_vm_import_tasks(count):
    """More VM import tasks in the emulator's account, as a busy team has."""
    ec2 = boto3.client("ec2", region_name="us-east-1")
    for number in range(count):
        disk = {"S3Bucket": "vm-exports", "S3Key": f"exports/extra-{number}.vmdk"}
        ec2.import_image(
            Description=f"Extra export {number}",
            DiskContainers=[{"Format": "VMDK", "UserBucket": disk}],
        )


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1280px"])
def test_a_long_task_list_scrolls_in_its_own_box_and_its_last_task_is_reached_by_keyboard(
    browser, live_server, portal, user, viewport
):
    add_vm_import_tasks(30)
    context = browser.new_context(base_url=live_server.url, viewport=viewport, bypass_csp=True)
    page = context.new_page()
    sign_in(page, user)
    goto_new_import(page)
    expect(page.get_by_text("Pick one of your VM import tasks (34)")).to_be_visible()
    box = page.locator("#task-picker .picker-list")

    # The list scrolls inside a box no taller than the window, so the rest
    # of the form stays within a screen of the task ID field.
    assert box.evaluate("e => e.scrollHeight > e.clientHeight")
    assert box.bounding_box()["height"] <= viewport["height"]
    uses = box.get_by_role("button", name=re.compile("^Use "))
    uses.first.focus()
    for _ in range(uses.count() - 1):
        page.keyboard.press("Tab")
    last = uses.last
    expect(last).to_be_focused()
    expect(last).to_be_in_viewport()  # scrolled into the box's view
    task_id = last.get_attribute("data-value")
    page.keyboard.press("Enter")
    expect(page.get_by_label("VM import task ID")).to_have_value(task_id)
    violations = axe_violations(page)
    assert not violations, describe_violations(violations)
    context.close()


def test_cancel_asks_first(browser, live_server, portal, user):
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, user)
    queued = portal["queued"]
    page.goto(f"/imports/{queued.pk}")

    page.get_by_role("link", name="Cancel this import…").click()
    expect(page.get_by_role("heading", name="Cancel this import?")).to_be_visible()
    queued.refresh_from_db()
    assert queued.status == Status.QUEUED  # asking changed nothing
    page.get_by_role("button", name="Yes, cancel the import").click()

    expect(page.get_by_role("status").filter(has_text="Cancelled before")).to_be_visible()
    queued.refresh_from_db()
    assert queued.is_cancelled
    context.close()


def test_the_audit_list_shows_every_column_at_1280_px(browser, live_server, portal, user):
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, user)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit").click()

    expect(page).to_have_url(re.compile("/admin/imports/auditevent/$"))
    expect(page.locator("#result_list")).to_contain_text(re.compile(r"\d\d:\d\d:\d\d UTC"))
    results = page.locator("#changelist .results")
    clipped = results.evaluate("(e) => e.scrollWidth - e.clientWidth")
    assert clipped <= 0, f"the audit list is {clipped}px wider than its box"
    assert horizontal_overflow(page) <= 0
    context.close()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1280px"])
def test_the_admin_audit_pages_pass_axe(browser, live_server, portal, user, team, viewport):
    user.is_superuser = user.is_staff = True
    user.save(update_fields=["is_superuser", "is_staff"])
    snake = portal["snake_case"]
    snake.claim()
    snake.mark_retrying(code="ServiceException", message="busy " + snake.name, delay=0)
    qa = Team.objects.get(name__startswith="quality_")
    context = browser.new_context(base_url=live_server.url, viewport=viewport, bypass_csp=True)
    page = context.new_page()
    found = {}
    page.goto("/admin/login/")
    violations = axe_violations(page)
    if violations:
        found["admin sign-in"] = [describe_violations(violations)]
    sign_in(page, user)
    for name, url in {
        "admin index": "/admin/",
        "audit events": "/admin/imports/auditevent/",
        "image imports": "/admin/imports/imageimport/",
        # Where teams and their first members are made (README).
        "add a team": "/admin/imports/team/add/",
        "a team and its members": f"/admin/imports/team/{team.pk}/change/",
        "a team of a long name": f"/admin/imports/team/{qa.pk}/change/",
        "audit events filtered": "/admin/imports/auditevent/?action__exact=import.cancelled",
        "audit events searched for nothing": "/admin/imports/auditevent/?q=nothing-at-all",
        "image imports filtered": "/admin/imports/imageimport/?status__exact=failed",
        "image imports searched": "/admin/imports/imageimport/?q=web",
        "an import named without spaces": f"/admin/imports/imageimport/{snake.pk}/change/",
        "an import cancelled": f"/admin/imports/imageimport/{portal['cancelled'].pk}/change/",
        "a user": f"/admin/auth/user/{user.pk}/change/",
        "add a user": "/admin/auth/user/add/",
        "add a group": "/admin/auth/group/add/",
    }.items():
        problems = audit(page, url)
        if problems:
            found[name] = problems
    context.close()
    assert not found, "\n" + report(found)


def test_an_import_s_time_so_far_keeps_counting_between_polls(browser, live_server, team, user):
    image_import = make_import(team, user, Status.IMPORTING)
    page = browser.new_page(base_url=live_server.url)
    sign_in(page, user)
    page.goto(f"/imports/{image_import.pk}")
    elapsed = page.locator("#status .elapsed")
    expect(elapsed).to_have_text(re.compile(r"^\d+s so far$"))
    shown = int(elapsed.inner_text().split("s")[0])
    # Nothing changes on the server: only the page's own count can move it.
    counted = shown
    for _ in range(20):
        page.wait_for_timeout(250)
        counted = int(elapsed.inner_text().split("s")[0])
        if counted >= shown + 2:
            break
    assert counted >= shown + 2, (shown, counted)
    expect(elapsed).to_have_attribute("aria-live", "off")  # not read out every second
    # The page's words for a time are the server's.
    for seconds in [0, 59, 60, 61, 3599, 3600, 7325]:
        assert page.evaluate(f"duration({seconds})") == duration(timedelta(seconds=seconds))

    image_import.mark_available(amis=[{"region": "us-east-1", "image": SEEDED_AMI}])
    expect(page.locator("#status .status")).to_have_text("Available", timeout=15_000)
    expect(elapsed).to_have_text(re.compile(r"^after \d+s$"))
    page.close()


def test_back_to_the_form_and_start_import_again_is_the_same_import(
    browser, live_server, user, emulator
):
    page = browser.new_page(base_url=live_server.url)
    sign_in(page, user)
    goto_new_import(page)
    page.get_by_label("Name").fill("Web server base")
    page.get_by_label("Semantic version").fill("1.0.0")
    page.get_by_label("Platform").select_option("Linux")
    page.get_by_label("VM import task ID").fill(SEEDED_TASK)
    page.get_by_role("button", name="Start import").click()
    expect(page).to_have_url(re.compile(r"/imports/\d+$"))
    first = ImageImport.objects.get()

    # The browser loads the form again (with a token of its own) and puts
    # back what was typed; the page puts back the token it sent.
    page.go_back()
    expect(page.get_by_label("Name")).to_have_value("Web server base")
    assert page.locator('input[name="clientToken"]').input_value() == first.client_token
    expect(page.locator("[data-client-token]")).to_have_text(first.client_token)
    page.get_by_role("button", name="Start import").click()

    expect(page).to_have_url(re.compile(rf"/imports/{first.pk}$"))
    assert ImageImport.objects.count() == 1
    page.close()


# What a receiver answered, as the sender records it: its body, often without a space.
LONG_ERROR = (
    'Answered 503: {"error":"service_unavailable",'
    '"request_id":"0123456789abcdef0123456789abcdef0123456789abcdef"}'
)


@pytest.fixture
def webhook_with_deliveries(team, user, monkeypatch):
    """ada, team admin, with a Slack webhook: a delivered test and an import's failed delivery."""
    monkeypatch.setattr(notification_tasks, "queue", lambda pks: None)  # no worker here
    admin = make_member("ada", team, Membership.Role.ADMIN)
    webhook = Webhook.add(
        team=team,
        url="https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX",
        kind=Webhook.Kind.SLACK,
        events=[Event.FAILED.value],
        by=admin,
    )
    Delivery.objects.create(
        channel=Delivery.Channel.WEBHOOK,
        event=Event.TEST,
        team=team,
        webhook=webhook,
        payload={"event": Event.TEST.value, "import": None, "sentBy": "ada"},
        status=Delivery.Status.DELIVERED,
        status_code=200,
        attempts=1,
    )
    make_import(team, user, Status.IMPORTING).mark_failed(code="X", message="broken")
    failed = Delivery.objects.get(event=Event.FAILED)
    Delivery.objects.filter(pk=failed.pk).update(
        status=Delivery.Status.FAILED, status_code=503, error=LONG_ERROR, attempts=8
    )
    return admin, failed


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1280px"])
def test_the_team_page_with_deliveries_fits_the_window_and_passes_axe(
    browser, live_server, webhook_with_deliveries, viewport
):
    admin, failed = webhook_with_deliveries
    context = browser.new_context(base_url=live_server.url, viewport=viewport, bypass_csp=True)
    page = context.new_page()
    sign_in(page, admin)
    page.goto("/team")
    row = page.locator(f"#delivery-{failed.pk}")
    expect(row).to_contain_text("503")

    overflow = horizontal_overflow(page)
    past = ", ".join(elements_past_the_right_edge(page))
    assert overflow <= 0, f"{overflow}px wider than the {viewport['width']}px window: {past}"
    violations = axe_violations(page)
    assert not violations, "\n" + describe_violations(violations)
    context.close()


def test_a_delivery_is_a_readable_card_on_a_phone_and_redelivers(
    browser, live_server, webhook_with_deliveries
):
    admin, failed = webhook_with_deliveries
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    page = context.new_page()
    sign_in(page, admin)
    page.goto("/team")
    card = page.locator(f"#delivery-{failed.pk}")
    box = card.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    # Each value is labelled on the card (the labels are CSS, not text content).
    for label, value in {
        "Status": "Failed",
        "Code": "503",
        "Attempts": "8",
        "Error": "service_unavailable",
    }.items():
        cell = card.locator(f'td[data-label="{label}"]')
        expect(cell).to_contain_text(value)
        cell_box = cell.bounding_box()
        assert cell_box["x"] + cell_box["width"] <= PHONE["width"], label
    # Each Redeliver button names its delivery, for a screen reader's list of buttons.
    redeliver = card.get_by_role("button", name=re.compile(r"^Redeliver the import failed of "))
    button = redeliver.bounding_box()
    assert button["x"] + button["width"] <= PHONE["width"]

    redeliver.focus()
    page.keyboard.press("Enter")

    expect(page.get_by_role("status").filter(has_text="Delivery queued again")).to_be_visible()
    assert Delivery.objects.filter(redelivery_of=failed).count() == 1
    context.close()


def words_split_over_lines(page, cell):
    """The words of a cell's text (up to 20 letters) that wrap mid-word onto a second line."""
    return cell.evaluate(
        """cell => {
          const split = [];
          const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
          for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            for (const match of node.data.matchAll(/\\S+/g)) {
              if (match[0].length > 20) continue;
              const range = document.createRange();
              range.setStart(node, match.index);
              range.setEnd(node, match.index + match[0].length);
              const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
              if (tops.size > 1) split.push(match[0]);
            }
          }
          return split;
        }"""
    )


def test_the_history_at_1280_px_gives_names_room_and_copies_only_what_there_is(
    browser, live_server, portal, team, user
):
    # A disk file still on its way: no VM import task yet, so nothing to copy.
    uploading = make_import(
        team,
        user,
        Status.UPLOADING,
        vm_import_task_id="",
        payload={"name": "Payments database base image, hardened for production"},
    )
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, user)

    row = page.locator(f"#import-{uploading.pk}")
    expect(row.locator(".cell-task")).to_have_text("—")
    expect(row.get_by_role("button", name=re.compile("^Copy"))).to_have_count(0)
    importing = page.locator(f"#import-{portal['importing'].pk}")
    expect(
        importing.get_by_role("button", name="Copy VM import task ID of Database base")
    ).to_be_visible()

    rows = page.locator("table.history tbody tr")
    for index in range(rows.count()):
        name = rows.nth(index).locator(".cell-name")
        assert name.bounding_box()["width"] >= 14 * 16, name.text_content()
        assert words_split_over_lines(page, name) == [], name.text_content()
    failed = page.locator(f"#import-{portal['failed'].pk}")
    name_width = failed.locator(".cell-name").bounding_box()["width"]
    status_width = failed.locator(".cell-status").bounding_box()["width"]
    assert status_width < name_width + 60, (name_width, status_width)
    assert horizontal_overflow(page) == 0
    context.close()


@pytest.mark.parametrize(
    "url, label, text_label",
    [
        ("/team/webhooks/new", "Webhook URL", "Name"),
        ("/profile", "E-mail address", None),
    ],
)
def test_url_and_email_fields_look_like_the_other_fields(
    browser, live_server, portal, user, url, label, text_label
):
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, user)
    page.goto(url)
    looks = """input => {
        const style = getComputedStyle(input);
        return [style.borderTopColor, style.borderTopWidth, style.borderTopLeftRadius,
                style.paddingLeft, style.fontSize, style.fontFamily];
    }"""
    field = page.get_by_label(label, exact=True)
    if text_label:
        expected = page.get_by_label(text_label, exact=True).evaluate(looks)
    else:
        page.goto("/team/webhooks/new")
        expected = page.get_by_label("Name", exact=True).evaluate(looks)
        page.goto(url)
    assert field.evaluate(looks) == expected
    box = field.bounding_box()
    assert box["width"] > 300  # as wide as the other fields, not the browser's default
    context.close()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1280px"])
def test_the_added_webhook_page_with_its_signing_steps_passes_axe_and_fits(
    browser, live_server, portal, user, settings, viewport
):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # a receiver on this machine: no DNS here
    context = browser.new_context(base_url=live_server.url, viewport=viewport, bypass_csp=True)
    page = context.new_page()
    sign_in(page, user)
    page.goto("/team/webhooks/new")
    page.get_by_label("Webhook URL").fill("http://127.0.0.1:9/hook")
    page.get_by_label("Kind").select_option("json")
    page.get_by_role("button", name="Add the webhook").click()

    expect(page.get_by_role("heading", name="How your receiver checks a message")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("The webhook to 127.0.0.1:9 is on")
    problems = page_problems(page)
    assert not problems, "\n".join(problems)
    context.close()
