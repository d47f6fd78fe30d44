"""Every URL the project routes, asked by every kind of person, with the answer expected.

The table below has an entry for each named portal URL; admin URLs follow
rules by the kind of admin view. A URL added without an entry fails
`test_every_routed_url_has_an_expectation`, so access is always decided on
purpose. Subjects: anonymous, an outsider (member of another team only), a
viewer, a submitter and a team admin of the import's team, and a superuser.
API calls use a token of the subject's own team (the superuser has none).
"""

import re

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from imports.apps import AUDITORS
from imports.models import ApiToken, ImageImport, Membership, Team
from notifications.models import Delivery, Event, Webhook

from .factories import make_member, valid_payload

SUBJECTS = ("anonymous", "outsider", "viewer", "submitter", "team_admin", "superuser")
LOGIN = "login"  # a redirect to the sign-in page


def same(status):
    return dict.fromkeys(SUBJECTS, status)


def signed_in(status, **overrides):
    return {**same(status), "anonymous": LOGIN, **overrides}


def api(status, **overrides):
    return {**same(status), "anonymous": 401, "superuser": 401, **overrides}


# name: (method, {subject: expected status or LOGIN})
EXPECTED = {
    "imports:history": ("get", signed_in(200)),
    "imports:new": ("get", signed_in(200, viewer=403)),
    "imports:validate": ("post", signed_in(200)),
    "imports:vm_import_tasks": ("get", signed_in(200)),
    "imports:bucket_files": ("get", signed_in(200)),
    "imports:detail": ("get", signed_in(200, outsider=404)),
    "imports:status": ("get", signed_in(200, outsider=404)),
    # Asked for no ids, it has nothing in flight to report: stop polling.
    "imports:history_poll": ("get", signed_in(286)),
    "imports:cancel": ("post", signed_in(302, outsider=404, viewer=403)),
    "imports:switch_team": ("post", signed_in(302, outsider=400)),
    "imports:team": ("get", signed_in(200)),
    # Reads only; the outsider checks their own team's setup.
    "imports:check_setup": ("post", signed_in(200, viewer=403)),
    "imports:team_activity": ("get", signed_in(403, team_admin=200, superuser=200)),
    # The import is not uploading: every upload step is refused with a 409.
    "imports:upload_create": ("post", signed_in(409, outsider=404, viewer=403)),
    "imports:upload": ("get", signed_in(409, outsider=404, viewer=403)),
    "imports:upload_part": ("get", signed_in(409, outsider=404, viewer=403)),
    "imports:upload_parts": ("get", signed_in(409, outsider=404, viewer=403)),
    "imports:upload_complete": ("post", signed_in(409, outsider=404, viewer=403)),
    "imports:change_member": ("post", signed_in(403, team_admin=302, superuser=302)),
    "imports:remove_member": ("get", signed_in(403, team_admin=200, superuser=200)),
    # Asked to send no one's invitation: back to the Team page, saying so.
    "imports:resend_invitation": ("post", signed_in(403, team_admin=302, superuser=302)),
    # For people with no password yet: without a working link, it says so.
    "imports:accept_invitation": ("get", same(200)),
    "imports:tokens": ("get", signed_in(200)),
    "imports:revoke_token": ("post", signed_in(404, submitter=302)),
    "api:imports": ("get", api(200)),
    "api:import": ("get", api(200, outsider=404)),
    "api:cancel": ("post", api(200, outsider=404, viewer=403)),
    "api:vm_import_tasks": ("get", api(200)),
    "notifications:profile": ("get", signed_in(200)),
    "notifications:add_webhook": ("get", signed_in(403, team_admin=200, superuser=200)),
    # Nothing was just added: back to the Team page.
    "notifications:webhook_added": ("get", signed_in(403, team_admin=302, superuser=302)),
    "notifications:change_webhook": ("post", signed_in(403, team_admin=302, superuser=302)),
    "notifications:remove_webhook": ("post", signed_in(403, team_admin=302, superuser=302)),
    "notifications:test_webhook": ("post", signed_in(403, team_admin=302, superuser=302)),
    "notifications:redeliver": ("post", signed_in(403, team_admin=302, superuser=302)),
    "api:openapi": ("get", same(200)),
    "login": ("get", same(200)),
    # For load balancers: no sign-in, nothing of anyone's shown.
    "healthz": ("get", same(200)),
    "readyz": ("get", same(200)),
    # Off without METRICS_TOKEN; with it, only its bearer reads (test_metrics.py).
    "metrics": ("get", same(404)),
    "logout": ("post", same(302)),
    "password_change": ("get", signed_in(200)),
    "password_change_done": ("get", signed_in(200)),
}

# Admin views by kind: staff only; read-only models refuse add, change and delete.
READ_ONLY_MODELS = {
    "imports_imageimport",
    "imports_auditevent",
    "imports_apitoken",
    "axes_accessattempt",
    "axes_accesslog",
    "axes_accessfailurelog",
}
ADMIN_ENTRY = {
    "anonymous": LOGIN,
    "outsider": LOGIN,
    "viewer": LOGIN,
    "submitter": LOGIN,
    "team_admin": LOGIN,
}
ADMIN_RULES = {
    "index": ("get", {**ADMIN_ENTRY, "superuser": 200}),
    "login": ("get", {**same(200), "superuser": 302}),
    "logout": ("post", same(302)),  # LOGOUT_REDIRECT_URL: back to the sign-in page
    "password_change": ("get", {**ADMIN_ENTRY, "superuser": 200}),
    "password_change_done": ("get", {**ADMIN_ENTRY, "superuser": 200}),
    "autocomplete": ("get", {**ADMIN_ENTRY, "superuser": 403}),  # no field asked for
    "jsi18n": ("get", {**ADMIN_ENTRY, "superuser": 200}),
    "view_on_site": ("get", {**ADMIN_ENTRY, "superuser": 404}),  # no model has a page
    "app_list": ("get", {**ADMIN_ENTRY, "superuser": 200}),
    "changelist": ("get", {**ADMIN_ENTRY, "superuser": 200}),
    "history": ("get", {**ADMIN_ENTRY, "superuser": 200}),
    "change": ("get", {**ADMIN_ENTRY, "superuser": 200}),
    "add": ("get", {**ADMIN_ENTRY, "superuser": 200}),
    "delete": ("get", {**ADMIN_ENTRY, "superuser": 200}),
    "password_change_user": ("get", {**ADMIN_ENTRY, "superuser": 200}),
    "export": ("get", {**ADMIN_ENTRY, "superuser": 200}),
}
READ_ONLY_OVERRIDES = {"add": 403, "delete": 403}


def walk(patterns, namespace=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = ":".join(filter(None, [namespace, pattern.namespace]))
            yield from walk(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield ":".join(filter(None, [namespace, pattern.name]))


ROUTED = sorted(set(walk(get_resolver().url_patterns)))
PORTAL = [name for name in ROUTED if not name.startswith("admin:")]
ADMIN = [name for name in ROUTED if name.startswith("admin:")]


def admin_rule(name):
    """(kind, model) of an admin URL name, e.g. ("changelist", "imports_team")."""
    short = name.removeprefix("admin:")
    if short == "auth_user_password_change":
        return "password_change_user", "auth_user"
    if short == "imports_auditevent_export":
        return "export", "imports_auditevent"
    match = re.fullmatch(r"(\w+?_\w+?)_(changelist|add|history|delete|change)", short)
    if match:
        return match[2], match[1]
    return short, None


def test_every_routed_url_has_an_expectation():
    missing = [name for name in PORTAL if name not in EXPECTED]
    missing += [name for name in ADMIN if admin_rule(name)[0] not in ADMIN_RULES]
    assert missing == [], f"decide who may use these URLs: {missing}"
    assert set(EXPECTED) <= set(PORTAL), "entries for URLs that no longer exist"


@pytest.fixture
def world(db, emulator, django_user_model):
    home = Team.objects.create(name="alpha")
    away = Team.objects.create(name="beta")
    people = {
        "outsider": make_member("outsider", away),
        "viewer": make_member("viewer", home, Membership.Role.VIEWER),
        "submitter": make_member("submitter", home, Membership.Role.SUBMITTER),
        "team_admin": make_member("team_admin", home, Membership.Role.ADMIN),
        "superuser": django_user_model.objects.create_superuser("root", password="pw"),
    }
    image_import, _ = ImageImport.submit(
        team=home, user=people["submitter"], payload=valid_payload()
    )
    token, _ = ApiToken.issue(user=people["submitter"], team=home)
    raw_tokens = {
        subject: ApiToken.issue(user=user, team=user.memberships.get().team)[1]
        for subject, user in people.items()
        if subject != "superuser"
    }
    return {
        "home": home,
        "people": people,
        "import": image_import,
        "token": token,
        "raw_tokens": raw_tokens,
    }


def url_for(name, world):
    """A URL of that name, with arguments pointing at the home team's objects."""
    image_import, home = world["import"], world["home"]
    args = {
        "imports:validate": ["name"],
        "imports:detail": [image_import.pk],
        "imports:status": [image_import.pk],
        "imports:cancel": [image_import.pk],
        "imports:upload_create": [image_import.pk],
        "imports:upload": [image_import.pk, "upload-1"],
        "imports:upload_part": [image_import.pk, "upload-1", 1],
        "imports:upload_parts": [image_import.pk, "upload-1"],
        "imports:upload_complete": [image_import.pk, "upload-1"],
        "imports:revoke_token": [world["token"].pk],
        "imports:remove_member": [world["people"]["viewer"].memberships.get().pk],
        "api:import": [image_import.pk],
        "api:cancel": [image_import.pk],
        "notifications:change_webhook": [webhook_of(home).pk],
        "notifications:remove_webhook": [webhook_of(home).pk],
        "notifications:test_webhook": [webhook_of(home).pk],
        "notifications:redeliver": [delivery_of(home).pk],
        "admin:view_on_site": [1, 1],
        "admin:app_list": ["imports"],
        "admin:auth_user_password_change": [world["people"]["viewer"].pk],
    }.get(name)
    if (
        args is None
        and name.startswith("admin:")
        and admin_rule(name)[0] in ("history", "change", "delete")
    ):
        model = admin_rule(name)[1]
        args = [admin_object_id(model, world)]
    url = reverse(name, args=args)
    if name == "admin:autocomplete":
        url += "?app_label=imports&model_name=team&field_name=missing"
    return url, home


def webhook_of(team):
    webhook, _ = Webhook.objects.get_or_create(team=team, url="https://hooks.example.com/x")
    return webhook


def delivery_of(team):
    return Delivery.objects.create(
        channel=Delivery.Channel.WEBHOOK,
        event=Event.TEST,
        team=team,
        webhook=webhook_of(team),
        payload={"event": "webhook.test", "import": None},
    )


def admin_model(model):
    app_label, model_name = model.split("_", 1)
    return apps.get_model(app_label, model_name)


def admin_object_id(model, world):
    model_class = admin_model(model)
    if model_class.__name__ == "Group":
        return Group.objects.get(name=AUDITORS).pk
    if model_class._meta.app_label == "axes":
        return model_class.objects.values_list("pk", flat=True).first() or 1
    return model_class.objects.first().pk


def data_for(name, world):
    if name == "imports:switch_team":
        return {"team": world["home"].pk}
    if name == "imports:change_member":
        viewer = world["people"]["viewer"].memberships.get()
        return {"membership": viewer.pk, "role": "viewer"}
    if name == "imports:validate":
        return valid_payload()
    return {}


def ask(subject, name, method, world):
    client = Client()
    headers = {}
    if subject != "anonymous":
        if name.startswith("api:"):
            raw = world["raw_tokens"].get(subject)
            if raw:
                headers["Authorization"] = f"Bearer {raw}"
        else:
            client.force_login(world["people"][subject])
    url, _ = url_for(name, world)
    return getattr(client, method)(url, data_for(name, world), headers=headers)


def check(response, expected):
    if expected == LOGIN:
        assert response.status_code == 302
        assert "login" in response["Location"]
    else:
        assert response.status_code == expected, response.content[:300]


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("name", PORTAL)
def test_portal_and_api_urls(world, name, subject):
    method, expected = EXPECTED[name]
    check(ask(subject, name, method, world), expected[subject])


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("name", ADMIN)
def test_admin_urls(world, name, subject):
    kind, model = admin_rule(name)
    method, expected = ADMIN_RULES[kind]
    response = ask(subject, name, method, world)
    status = expected[subject]
    if subject == "superuser" and model in READ_ONLY_MODELS and kind in READ_ONLY_OVERRIDES:
        status = READ_ONLY_OVERRIDES[kind]
    if (
        subject == "superuser"
        and model
        and model.startswith("axes_")
        and kind in ("history", "change", "delete")
    ):
        # Only sign-ins leave axes records here; for a missing one the admin
        # redirects with a message.
        status = 200 if admin_model(model).objects.exists() else 302
    check(response, status)


def test_auditors_read_every_admin_list_and_change_nothing(world, django_user_model):
    auditor = django_user_model.objects.create_user("audit", is_staff=True)
    auditor.groups.add(Group.objects.get(name=AUDITORS))
    client = Client()
    client.force_login(auditor)
    for name in ADMIN:
        kind, model = admin_rule(name)
        if model is None or model.startswith("axes_"):
            continue
        url, _ = url_for(name, world)
        status = client.get(url).status_code
        if kind in ("changelist", "change", "history", "export"):
            assert status == 200, name
        elif kind in ("add", "delete", "password_change_user"):
            assert status == 403, name
