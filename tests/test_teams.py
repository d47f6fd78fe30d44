"""Team self-service: roles, the AWS target (with STS over HTTP), API tokens."""

import botocore.session
import pytest
from django.test import Client
from django.urls import reverse

from imports import aws, invitations, services, tasks, teams
from imports.models import Action, ApiToken, AuditEvent, ImageImport, Membership, Status
from imports.team_forms import AddMemberForm

from .factories import make_member, valid_payload

ROLE_ARN = "arn:aws:iam::210987654321:role/ImageBuilderImport"


@pytest.fixture
def team_admin(team):
    return make_member("ada", team, Membership.Role.ADMIN)


@pytest.fixture
def admin_client(client, team_admin):
    client.force_login(team_admin)
    return client


def set_target(client, **values):
    data = {
        "action": "target",
        "aws_region": "",
        "aws_account_id": "",
        "aws_role_arn": "",
        "import_bucket": "",
        "import_prefix": "",
        "vm_import_role": "vmimport",
    }
    return client.post(reverse("imports:team"), {**data, **values})


# -- the AWS target --------------------------------------------------------------


def test_a_team_admin_sets_the_target_and_it_is_audited(admin_client, team):
    response = set_target(
        admin_client, aws_region="eu-west-1", aws_account_id="210987654321", aws_role_arn=ROLE_ARN
    )
    assert response.status_code == 302
    team.refresh_from_db()
    assert (team.aws_region, team.aws_account_id, team.aws_role_arn) == (
        "eu-west-1",
        "210987654321",
        ROLE_ARN,
    )
    event = AuditEvent.objects.get(action=Action.TARGET_CHANGED)
    assert event.actor.username == "ada" and event.team == team
    assert "aws_region: (none) -> eu-west-1" in event.detail


@pytest.mark.parametrize(
    "values, message",
    [
        ({"aws_region": "Europe"}, "A region looks like"),
        ({"aws_account_id": "1234"}, "exactly 12 digits"),
        ({"aws_role_arn": "role/x"}, "A role ARN looks like"),
        ({"aws_account_id": "111111111111", "aws_role_arn": ROLE_ARN}, "in the target account"),
        # Imports would go to the worker's own account: the page would say another.
        ({"aws_account_id": "111111111111"}, "Without a role to assume, imports go to"),
        # Past the columns (a 500 on PostgreSQL before), and other scripts' digits.
        ({"aws_region": "us-" + "-".join(["abcdefghij"] * 3) + "-1"}, "A region looks like"),
        ({"aws_role_arn": ROLE_ARN.replace("aws", "aws" + "-x" * 1000)}, "A role ARN looks"),
        ({"aws_region": "eu-west-\u0661"}, "A region looks like"),
        ({"aws_account_id": "\u0661" * 12}, "exactly 12 digits"),
        ({"aws_role_arn": ROLE_ARN.replace("1", "\u0661")}, "A role ARN looks like"),
    ],
)
def test_a_wrong_target_says_which_rule_it_broke(admin_client, team, values, message):
    response = set_target(admin_client, **values)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not AuditEvent.objects.filter(action=Action.TARGET_CHANGED).exists()


def test_every_region_and_partition_aws_defines_is_taken(admin_client, team):
    # botocore's endpoints: AWS's own list, eusc-de-east-1 (four letters first) among them.
    partitions = botocore.session.get_session().get_component("data_loader").load_data("endpoints")
    for partition in partitions["partitions"]:
        role = ROLE_ARN.replace("arn:aws:", f"arn:{partition['partition']}:")
        for region in partition["regions"]:
            response = set_target(admin_client, aws_region=region, aws_role_arn=role)
            assert response.status_code == 302, (region, role)
            team.refresh_from_db()
            assert (team.aws_region, team.aws_role_arn) == (region, role)


def test_the_external_id_is_shown_to_team_admins_only_with_a_role(admin_client, client, user, team):
    assert team.external_id not in admin_client.get(reverse("imports:team")).content.decode()
    team.aws_role_arn = "arn:aws:iam::123456789012:role/Import"
    team.save()
    assert team.external_id in admin_client.get(reverse("imports:team")).content.decode()
    client.force_login(user)
    page = client.get(reverse("imports:team"))
    assert page.status_code == 200
    assert team.external_id not in page.content.decode()


def test_only_team_admins_change_the_team(user_client, team):
    assert set_target(user_client, aws_region="eu-west-1").status_code == 403
    team.refresh_from_db()
    assert team.aws_region == ""


def test_an_import_keeps_the_target_it_was_submitted_with(team, user):
    team.aws_region, team.aws_role_arn = "eu-west-1", ROLE_ARN
    team.save()
    image_import, _ = ImageImport.submit(team=team, user=user, payload=valid_payload())
    team.aws_region, team.aws_role_arn = "us-west-2", ""
    team.save()
    image_import.refresh_from_db()
    assert image_import.target == aws.Target("eu-west-1", ROLE_ARN, team.external_id)


def test_the_worker_assumes_the_teams_role_with_its_external_id(team, user, emulator):
    team.aws_role_arn = ROLE_ARN
    team.save()
    first, _ = ImageImport.submit(team=team, user=user, payload=valid_payload(clientToken="one"))
    second, _ = ImageImport.submit(team=team, user=user, payload=valid_payload(clientToken="two"))

    tasks.submit_import(first.pk)
    tasks.submit_import(second.pk)
    tasks.refresh_imports()

    calls = emulator.calls()
    assert [(r["RoleArn"], r["ExternalId"]) for r in calls["assumedRoles"]] == [
        (ROLE_ARN, team.external_id)
    ]  # once: the temporary credentials are reused until shortly before they expire
    assert ImageImport.objects.filter(status=Status.AVAILABLE).count() == 2


def test_without_a_role_no_role_is_assumed(image_import, emulator):
    tasks.submit_import(image_import.pk)
    assert emulator.calls()["assumedRoles"] == []


# -- members and roles --------------------------------------------------------------


def test_a_team_admin_adds_a_member_changes_a_role_and_removes_them(
    admin_client, team, django_user_model
):
    django_user_model.objects.create_user("carol")
    admin_client.post(
        reverse("imports:team"), {"action": "add_member", "username": "carol", "role": "viewer"}
    )
    carol = Membership.objects.get(team=team, user__username="carol")
    assert carol.role == "viewer"

    admin_client.post(
        reverse("imports:change_member"), {"membership": carol.pk, "role": "submitter"}
    )
    carol.refresh_from_db()
    assert carol.role == "submitter"

    remove = reverse("imports:remove_member", args=[carol.pk])
    confirm = admin_client.get(remove)
    assert confirm.status_code == 200
    assert "Remove carol from team platform?" in confirm.content.decode()
    assert Membership.objects.filter(pk=carol.pk).exists()  # asking removes nobody
    admin_client.post(remove)
    assert not Membership.objects.filter(pk=carol.pk).exists()

    actions = list(AuditEvent.objects.filter(team=team).values_list("action", "detail"))
    assert (Action.MEMBER_ADDED, "carol added as Viewer") in actions
    assert (Action.ROLE_CHANGED, "carol: Viewer -> Submitter") in actions
    assert (Action.MEMBER_REMOVED, "carol removed") in actions


def test_someone_another_team_admin_added_meanwhile_is_said_not_a_500(
    team, team_admin, django_user_model
):
    carol = django_user_model.objects.create_user("carol")
    form = AddMemberForm({"username": "carol", "role": "viewer"}, team=team)
    assert form.is_valid()  # this admin's check passed...
    team.add_member(carol, Membership.Role.ADMIN, by=team_admin)  # ...then the other's save
    done, problem = invitations.bring_in(team, form, by=team_admin)
    assert (done, problem) == (
        "carol was added to the team meanwhile, by another admin: their role there is left as "
        "it is.",
        None,
    )
    assert team.memberships.get(user=carol).role == Membership.Role.ADMIN
    assert AuditEvent.objects.filter(action=Action.MEMBER_ADDED).count() == 1


def test_a_removed_members_tokens_for_the_team_are_revoked_for_good(
    team, other_team, team_admin, client, django_user_model
):
    carol = django_user_model.objects.create_user("carol")
    membership = team.add_member(carol, Membership.Role.SUBMITTER, by=team_admin)
    other_team.add_member(carol, Membership.Role.SUBMITTER, by=team_admin)
    _, raw = ApiToken.issue(user=carol, team=team)
    _, elsewhere = ApiToken.issue(user=carol, team=other_team)

    membership.remove(by=team_admin)
    team.add_member(carol, Membership.Role.SUBMITTER, by=team_admin)  # back, later

    assert client.get("/api/imports", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    kept = client.get("/api/imports", headers={"Authorization": f"Bearer {elsewhere}"})
    assert kept.status_code == 200  # the other team's token is its own
    removed = AuditEvent.objects.get(action=Action.MEMBER_REMOVED)
    assert removed.detail == "carol removed; 1 API token revoked"


def test_adding_an_unknown_user_says_so(admin_client):
    response = admin_client.post(
        reverse("imports:team"), {"action": "add_member", "username": "nobody", "role": "viewer"}
    )
    assert "No active user is called" in response.content.decode()


def test_a_team_admin_cannot_demote_themselves(admin_client, team_admin):
    mine = team_admin.memberships.get()
    admin_client.post(reverse("imports:change_member"), {"membership": mine.pk, "role": "viewer"})
    mine.refresh_from_db()
    assert mine.role == "admin"


def test_members_of_another_team_cannot_be_touched(admin_client, outsider):
    theirs = outsider.memberships.get()
    response = admin_client.post(
        reverse("imports:change_member"), {"membership": theirs.pk, "role": "viewer"}
    )
    assert response.status_code == 404


def test_a_viewer_sees_the_imports_but_cannot_submit(client, team, image_import):
    viewer = make_member("vic", team, Membership.Role.VIEWER)
    client.force_login(viewer)
    assert image_import.name in client.get("/").content.decode()
    assert client.get(reverse("imports:detail", args=[image_import.pk])).status_code == 200
    assert client.post("/imports/new", valid_payload()).status_code == 403


# -- API tokens ------------------------------------------------------------------------


def test_a_token_is_shown_once_stored_hashed_and_listed(user_client, team):
    created = user_client.post(reverse("imports:tokens"), {"name": "CI", "team": team.pk})
    assert created.status_code == 302  # post/redirect/get: a reload creates nothing
    assert created["Cache-Control"] == "no-store"
    response = user_client.get(created["Location"])
    raw = response.context["new_token"]
    assert raw.startswith("vmip_") and raw in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    token = ApiToken.objects.get()
    assert token.digest != raw and token.name == "CI"
    assert token.prefix == raw[:11] and len(token.prefix) < len(raw) // 3
    listing = user_client.get(reverse("imports:tokens")).content.decode()
    assert "CI" in listing and raw not in listing
    assert f"<code>{token.prefix}…</code>" in listing  # two tokens told apart
    assert "vmip_" not in str(dict(user_client.session))  # the raw token left the session
    assert AuditEvent.objects.filter(action=Action.TOKEN_CREATED, team=team).exists()


def test_a_token_records_its_last_use(client, api_token, api_headers):
    client.get("/api/imports", headers=api_headers)
    assert ApiToken.objects.get().last_used_at is not None


def test_a_revoked_token_stops_working_and_the_revocation_is_audited(
    user_client, client, api_token, api_headers
):
    token = ApiToken.objects.get()
    user_client.post(reverse("imports:revoke_token", args=[token.pk]))
    assert client.get("/api/imports", headers=api_headers).status_code == 401
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(action=Action.TOKEN_REVOKED).count() == 1


def test_someone_elses_token_cannot_be_revoked(outsider_client, api_token):
    token = ApiToken.objects.get()
    response = outsider_client.post(reverse("imports:revoke_token", args=[token.pk]))
    assert response.status_code == 404


def test_a_token_for_a_team_you_are_not_in_is_refused(user_client, other_team):
    response = user_client.post(reverse("imports:tokens"), {"name": "x", "team": other_team.pk})
    assert response.context["new_token"] is None
    assert not ApiToken.objects.exists()


def test_tokens_act_with_their_users_role_in_their_team(client, team, user, other_team):
    Membership.objects.create(user=user, team=other_team, role=Membership.Role.VIEWER)
    _, raw = ApiToken.issue(user=user, team=other_team)
    response = client.post(
        "/api/imports",
        data=valid_payload(),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 403


# -- superusers ---------------------------------------------------------------------------


def test_a_superuser_sees_every_team(client, admin_user, image_import, other_team):
    client.force_login(admin_user)
    content = client.get("/").content.decode()
    assert other_team.name in content and image_import.team.name in content
    client.post("/teams/switch", {"team": image_import.team_id})
    assert client.get(reverse("imports:detail", args=[image_import.pk])).status_code == 200


def test_no_access_key_or_secret_is_stored_or_logged(team, user, emulator, caplog):
    from django.core import serializers

    team.aws_role_arn = ROLE_ARN
    team.save()
    image_import, _ = ImageImport.submit(team=team, user=user, payload=valid_payload())
    caplog.set_level("DEBUG")
    tasks.submit_import(image_import.pk)
    credentials = aws.client("imagebuilder", image_import.target)._request_signer._credentials
    frozen = credentials.get_frozen_credentials()  # what STS handed the worker
    everything = "".join(
        serializers.serialize("json", model.objects.all())
        for model in (ImageImport, AuditEvent, ApiToken, Membership, type(team))
    )
    for secret in (frozen.access_key, frozen.secret_key, frozen.token, "testing"):
        assert secret not in everything
        assert secret not in caplog.text


def test_a_team_set_up_through_the_admin_is_audited_and_sees_only_its_imports(
    admin_user, client, django_user_model, image_import
):
    from imports.models import Team

    newcomer = django_user_model.objects.create_user("nina", password="pw-nina")
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:imports_team_add"),
        {
            "name": "gamma",
            "aws_region": "eu-west-1",
            "aws_account_id": "",
            "aws_role_arn": "",
            "vm_import_role": "vmimport",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-user": newcomer.pk,
            "memberships-0-role": "submitter",
        },
    )
    assert response.status_code == 302, response.content[:500]
    gamma = Team.objects.get(name="gamma")
    assert AuditEvent.objects.filter(
        action=Action.MEMBER_ADDED, team=gamma, detail="nina added as Submitter"
    ).exists()

    client.force_login(newcomer)
    assert image_import.name not in client.get("/").content.decode()
    assert client.get(reverse("imports:detail", args=[image_import.pk])).status_code == 404
    _, raw = ApiToken.issue(user=newcomer, team=gamma)
    listed = client.get("/api/imports", headers={"Authorization": f"Bearer {raw}"}).json()
    assert listed["count"] == 0


def test_changing_a_target_and_a_role_in_the_admin_is_audited(admin_user, client, team, user):
    client.force_login(admin_user)
    membership = user.memberships.get()
    response = client.post(
        reverse("admin:imports_team_change", args=[team.pk]),
        {
            "name": team.name,
            "aws_region": "ap-south-1",
            "aws_account_id": "",
            "aws_role_arn": "",
            "vm_import_role": "vmimport",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-0-id": membership.pk,
            "memberships-0-team": team.pk,
            "memberships-0-user": user.pk,
            "memberships-0-role": "viewer",
        },
    )
    assert response.status_code == 302, response.content[:500]
    details = set(AuditEvent.objects.filter(team=team).values_list("detail", flat=True))
    assert "aws_region: (none) -> ap-south-1" in details
    assert "alice: Submitter -> Viewer" in details


# -- which team a person acts for: the session is written at sign-in and switch only


def test_sign_in_remembers_the_first_team(client, user, team):
    client.force_login(user)
    assert client.session[teams.SESSION_KEY] == team.pk


def test_reading_the_current_team_never_writes_the_session(client, user, team, other_team):
    Membership.objects.create(user=user, team=other_team, role=Membership.Role.VIEWER)
    client.force_login(user)
    session_key = client.session.session_key
    before = dict(client.session.items())
    for url in ("/", reverse("imports:team"), reverse("imports:tokens")):
        assert client.get(url).status_code == 200
    assert dict(client.session.items()) == before
    assert client.session.session_key == session_key


def test_switching_team_writes_the_session(client, user, team, other_team):
    Membership.objects.create(user=user, team=other_team, role=Membership.Role.VIEWER)
    client.force_login(user)
    client.post(reverse("imports:switch_team"), {"team": other_team.pk})
    assert client.session[teams.SESSION_KEY] == other_team.pk


def test_a_team_left_since_sign_in_falls_back_to_the_first(client, user, team, other_team):
    membership = Membership.objects.create(user=user, team=other_team)
    client.force_login(user)
    client.post(reverse("imports:switch_team"), {"team": other_team.pk})
    membership.delete()
    response = client.get("/")
    assert response.context["membership"].team == team


def test_the_target_names_the_region_and_account_it_falls_back_on(admin_client, settings):
    settings.AWS_REGION = "eu-west-1"
    content = admin_client.get(reverse("imports:team")).content.decode()
    assert "the AWS account of the worker&#x27;s own credentials" in content
    assert "region eu-west-1 (the portal&#x27;s default region)" in content


def test_revoking_a_token_asks_first(user_client, outsider, team, user):
    token, _ = ApiToken.issue(user=user, team=team, name="ci")
    outsider_client = Client()
    outsider_client.force_login(outsider)
    url = reverse("imports:revoke_token", args=[token.pk])
    confirm = user_client.get(url)
    assert confirm.status_code == 200
    assert f"({token.prefix}…)" in confirm.content.decode()
    token.refresh_from_db()
    assert token.is_active
    assert outsider_client.get(url).status_code == 404
    assert Client().get(url).status_code == 302
    assert user_client.put(url).status_code == 405
    user_client.post(url)
    token.refresh_from_db()
    assert not token.is_active


def test_a_team_admin_cannot_remove_themselves_nor_another_teams_member(
    admin_client, team_admin, outsider
):
    mine = team_admin.memberships.get()
    response = admin_client.post(reverse("imports:remove_member", args=[mine.pk]), follow=True)
    assert 'class="message message-error" role="alert"' in response.content.decode()
    assert Membership.objects.filter(pk=mine.pk).exists()
    theirs = outsider.memberships.get()
    assert admin_client.get(reverse("imports:remove_member", args=[theirs.pk])).status_code == 404
    assert admin_client.post(reverse("imports:remove_member", args=[theirs.pk])).status_code == 404


def test_a_team_naming_anothers_role_is_never_served_its_task_list(team, other_team, emulator):
    # A role ARN is no secret: the list fetched with one team's external ID
    # is that team's, and another naming the same role asks AWS itself.
    for each in (team, other_team):
        each.aws_role_arn = ROLE_ARN
        each.save()
    services.vm_import_tasks(team)
    services.vm_import_tasks(other_team)
    assumed = [r["ExternalId"] for r in emulator.calls()["assumedRoles"]]
    assert assumed == [team.external_id, other_team.external_id]


def test_a_link_to_an_import_of_another_of_ones_teams_offers_to_switch(
    user_client, user, team, other_team, outsider
):
    # A link in an e-mail: the import is in the team the person is not acting for.
    Membership.objects.create(user=user, team=other_team, role=Membership.Role.VIEWER)
    theirs, _ = ImageImport.submit(team=other_team, user=outsider, payload=valid_payload())
    url = reverse("imports:detail", args=[theirs.pk])

    offer = user_client.get(url)
    assert offer.status_code == 200
    page = offer.content.decode()
    assert f"Switch to {other_team.name}" in page and f"Stay in {team.name}" in page
    switched = user_client.post(
        reverse("imports:switch_team"), {"team": other_team.pk, "next": url}, follow=True
    )
    assert switched.redirect_chain[-1][0] == url
    assert "Web server base" in switched.content.decode()

    # Someone in neither team learns nothing: the same 404 as a missing import.
    stranger = Client()
    stranger.force_login(make_member("dave", team))
    assert stranger.get(url).status_code == 404
    assert stranger.get(reverse("imports:detail", args=[999999])).status_code == 404


def test_a_role_alone_names_the_account_imports_go_to(admin_client, team):
    set_target(admin_client, aws_role_arn=ROLE_ARN)
    team.refresh_from_db()
    assert team.aws_account_id == ROLE_ARN.split(":")[4]
    assert f"account {team.aws_account_id}" in team.target_summary
