"""The team's import bucket, key prefix and VM import role: each rule at its edges."""

import pytest
from django.urls import reverse

from imports.models import Action, AuditEvent, Membership, Team
from imports.team_forms import AwsTargetForm

from .factories import make_member

VALID = {"import_bucket": "platform-imports", "import_prefix": "", "vm_import_role": "vmimport"}


pytestmark = pytest.mark.django_db  # the form looks for other teams' import areas


def target_form(team=None, **values):
    return AwsTargetForm(
        {"aws_region": "", "aws_account_id": "", "aws_role_arn": ""} | VALID | values,
        team=team or Team(name="new"),
    )


@pytest.mark.parametrize(
    "theirs, ours",
    [
        (("platform-imports", ""), ("platform-imports", "")),
        (("platform-imports", ""), ("platform-imports", "web/")),  # inside theirs
        (("platform-imports", "web/"), ("platform-imports", "")),  # around theirs
        (("platform-imports", "web/"), ("platform-imports", "web/old/")),
    ],
)
def test_a_team_may_not_import_from_another_teams_area(team, theirs, ours):
    # Uploads and the bucket picker act on the whole area: it would read and overwrite theirs.
    Team.objects.create(name="other", import_bucket=theirs[0], import_prefix=theirs[1])
    form = target_form(team, import_bucket=ours[0], import_prefix=ours[1])
    assert not form.is_valid()
    assert "Another team imports from" in form.errors["import_prefix"][0]


@pytest.mark.parametrize(
    "theirs, ours",
    [
        (("platform-imports", "web/"), ("platform-imports", "db/")),
        (("platform-imports", "team-a/"), ("platform-imports", "team-ab/")),
        (("other-bucket", ""), ("platform-imports", "")),
    ],
)
def test_teams_may_share_a_bucket_in_folders_apart(team, theirs, ours):
    Team.objects.create(name="other", import_bucket=theirs[0], import_prefix=theirs[1])
    team.import_bucket, team.import_prefix = ours
    team.save()
    form = target_form(team, import_bucket=ours[0], import_prefix=ours[1])
    assert form.is_valid(), form.errors  # its own area, kept, is no conflict


@pytest.mark.parametrize(
    "bucket",
    ["abc", "a" * 63, "my.bucket-1", "0bucket9", ""],
)
def test_it_accepts_bucket_names_s3_accepts(bucket):
    form = target_form(import_bucket=bucket)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["import_bucket"] == bucket


@pytest.mark.parametrize(
    "bucket, message",
    [
        ("ab", "3 to 63 characters; this one has 2"),
        ("a" * 64, "3 to 63 characters; this one has 64"),
        ("My-Bucket", "only lowercase letters, digits, dots and hyphens"),
        ("-bucket", "starts and ends with a letter or digit"),
        ("bucket-", "starts and ends with a letter or digit"),
        ("my_bucket", "only lowercase letters"),
        ("my..bucket", "two dots in a row"),
        ("192.168.5.4", "look like an IP address"),
        ("xn--bucket", "S3 reserves bucket names"),
        ("bucket-s3alias", "S3 reserves bucket names"),
    ],
)
def test_a_wrong_bucket_name_says_which_rule_it_broke(bucket, message):
    form = target_form(import_bucket=bucket)
    assert not form.is_valid()
    assert message in form.errors["import_bucket"][0]


@pytest.mark.parametrize(
    "prefix, cleaned",
    [
        ("", ""),
        ("vm-imports", "vm-imports/"),
        ("teams/web/", "teams/web/"),
        ("p" * 511, "p" * 511 + "/"),
    ],
)
def test_a_prefix_is_a_folder(prefix, cleaned):
    form = target_form(import_prefix=prefix)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["import_prefix"] == cleaned


@pytest.mark.parametrize(
    "prefix, message",
    [
        ("/vm-imports/", "does not start with a slash"),
        ("vm\nimports/", "control characters"),
        ("p" * 513, "at most 512 characters"),
        # 512 and the "/" that makes it a folder: 513 stored, one too many.
        ("p" * 512, "at most 512 characters, its closing / included"),
    ],
)
def test_a_wrong_prefix_says_which_rule_it_broke(prefix, message):
    form = target_form(import_prefix=prefix)
    assert not form.is_valid()
    assert message in form.errors["import_prefix"][0]


@pytest.mark.parametrize("role", ["v", "x" * 64, "vm+import=role,a.b@c_d-e"])
def test_it_accepts_iam_role_names(role):
    assert target_form(vm_import_role=role).is_valid()


@pytest.mark.parametrize(
    "role, message",
    [
        ("", "role name is required"),
        ("x" * 65, "1 to 64 characters"),
        ("arn:aws:iam::123456789012:role/vmimport", "a name, not an ARN"),
        ("vm import", "1 to 64 characters"),
        ("rôle", "1 to 64 characters"),
    ],
)
def test_a_wrong_role_name_says_which_rule_it_broke(role, message):
    form = target_form(vm_import_role=role)
    assert not form.is_valid()
    assert message in form.errors["vm_import_role"][0]


def test_a_team_admin_saves_the_bucket_prefix_and_role_and_it_is_audited(client, team):
    client.force_login(make_member("ada", team, Membership.Role.ADMIN))
    response = client.post(
        reverse("imports:team"),
        {
            "action": "target",
            "aws_region": "eu-west-1",
            "import_bucket": "platform-imports",
            "import_prefix": "vm-imports",
            "vm_import_role": "vmimport-platform",
        },
    )
    assert response.status_code == 302
    team.refresh_from_db()
    assert (team.import_bucket, team.import_prefix, team.vm_import_role) == (
        "platform-imports",
        "vm-imports/",
        "vmimport-platform",
    )
    detail = AuditEvent.objects.get(action=Action.TARGET_CHANGED).detail
    assert "import_bucket: (none) -> platform-imports" in detail
    assert "vm_import_role: vmimport -> vmimport-platform" in detail
