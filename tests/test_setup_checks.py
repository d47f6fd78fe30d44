"""Check setup: each check passes and fails on what S3 and IAM answer (botocore Stubber)."""

import json

import boto3
import pytest
from botocore.stub import Stubber
from django.urls import reverse

from imports import aws, setup_checks
from imports.models import Membership

from .factories import IMPORT_BUCKET, IMPORT_PREFIX, make_member, set_up_disk_imports

ORIGIN = "https://portal.example.com"
TARGET = aws.Target(region="eu-west-1")
ROLE = "vmimport"
ROLE_ARN = "arn:aws:iam::123456789012:role/vmimport"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "vmie.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:Externalid": "vmimport"}},
        }
    ],
}


@pytest.fixture
def s3(aws_credentials):
    with Stubber(aws.client("s3", TARGET)) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def iam(aws_credentials):
    with Stubber(aws.client("iam", TARGET)) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def bucket(**extra):
    return {"Bucket": IMPORT_BUCKET, **extra}


# -- the bucket's region ------------------------------------------------------------


def test_a_bucket_in_the_target_region_passes(s3):
    s3.add_response("get_bucket_location", {"LocationConstraint": "eu-west-1"}, bucket())
    result = setup_checks.check_bucket_region(IMPORT_BUCKET, TARGET)
    assert result.outcome == "pass"


def test_a_bucket_in_another_region_fails_with_the_fix(s3):
    s3.add_response("get_bucket_location", {}, bucket())  # S3's answer for us-east-1
    result = setup_checks.check_bucket_region(IMPORT_BUCKET, TARGET)
    assert result.outcome == "fail"
    assert result.message == f"{IMPORT_BUCKET} is in us-east-1, but imports go to eu-west-1."
    assert "use a bucket in eu-west-1" in result.fix


def test_a_missing_bucket_fails_with_how_to_make_it(s3):
    s3.add_client_error("get_bucket_location", "NoSuchBucket", "The bucket does not exist", 404)
    result = setup_checks.check_bucket_region(IMPORT_BUCKET, TARGET)
    assert result.outcome == "fail"
    assert (
        result.fix == f"Create it in eu-west-1: aws s3 mb s3://{IMPORT_BUCKET} --region eu-west-1"
    )


def test_a_bucket_the_portal_may_not_read_says_so(s3):
    s3.add_client_error("get_bucket_location", "AccessDenied", "Access Denied", 403)
    result = setup_checks.check_bucket_region(IMPORT_BUCKET, TARGET)
    assert result.outcome == "fail"
    assert "could not read the location" in result.message and "AccessDenied" in result.message


# -- CORS -----------------------------------------------------------------------------


def cors(*rules):
    return {"CORSRules": list(rules)}


def test_a_cors_rule_for_the_portal_passes(s3):
    s3.add_response(
        "get_bucket_cors", cors(setup_checks.cors_rule(ORIGIN)), expected_params=bucket()
    )
    assert setup_checks.check_cors(IMPORT_BUCKET, ORIGIN, TARGET).outcome == "pass"


@pytest.mark.parametrize(
    "rule",
    [
        {
            "AllowedOrigins": ["https://other.example.com"],
            "AllowedMethods": ["PUT"],
            "ExposeHeaders": ["ETag"],
        },
        {"AllowedOrigins": [ORIGIN], "AllowedMethods": ["GET"], "ExposeHeaders": ["ETag"]},
        {"AllowedOrigins": [ORIGIN], "AllowedMethods": ["PUT"]},  # the ETag stays hidden
    ],
)
def test_a_cors_rule_that_misses_something_fails_with_a_rule_to_add(s3, rule):
    s3.add_response("get_bucket_cors", cors(rule), expected_params=bucket())
    result = setup_checks.check_cors(IMPORT_BUCKET, ORIGIN, TARGET)
    assert result.outcome == "fail"
    configuration = json.loads(result.fix.split("--cors-configuration '")[1].rstrip("'"))
    assert configuration["CORSRules"] == [rule, setup_checks.cors_rule(ORIGIN)]


def test_no_cors_configuration_fails(s3):
    s3.add_client_error("get_bucket_cors", "NoSuchCORSConfiguration", "none", 404)
    result = setup_checks.check_cors(IMPORT_BUCKET, ORIGIN, TARGET)
    assert result.outcome == "fail"
    assert f"put-bucket-cors --bucket {IMPORT_BUCKET}" in result.fix


# -- the role -------------------------------------------------------------------------


def get_role(iam, trust=TRUST):
    iam.add_response(
        "get_role",
        {
            "Role": {
                "Path": "/",
                "RoleName": ROLE,
                "RoleId": "AROAEXAMPLEEXAMPLE0001",
                "Arn": ROLE_ARN,
                "CreateDate": "2026-01-01T00:00:00Z",
                "AssumeRolePolicyDocument": json.dumps(trust),
            }
        },
        expected_params={"RoleName": ROLE},
    )


def simulate(iam, actions, resource, denied=()):
    iam.add_response(
        "simulate_principal_policy",
        {
            "EvaluationResults": [
                {
                    "EvalActionName": action,
                    "EvalDecision": "implicitDeny" if action in denied else "allowed",
                }
                for action in actions
            ]
        },
        expected_params={
            "PolicySourceArn": ROLE_ARN,
            "ActionNames": actions,
            "ResourceArns": [resource],
        },
    )


BUCKET_ACTIONS = ["s3:GetBucketLocation", "s3:ListBucket"]


def test_a_role_that_trusts_vm_import_and_may_read_the_bucket_passes(iam):
    get_role(iam)
    simulate(iam, BUCKET_ACTIONS, f"arn:aws:s3:::{IMPORT_BUCKET}")
    simulate(iam, ["s3:GetObject"], f"arn:aws:s3:::{IMPORT_BUCKET}/{IMPORT_PREFIX}*")
    result = setup_checks.check_role(ROLE, IMPORT_BUCKET, IMPORT_PREFIX, TARGET)
    assert result.outcome == "pass", result


def test_a_missing_role_fails_with_how_to_make_it(iam):
    iam.add_client_error("get_role", "NoSuchEntity", "The role cannot be found", 404)
    result = setup_checks.check_role(ROLE, IMPORT_BUCKET, IMPORT_PREFIX, TARGET)
    assert result.outcome == "fail"
    assert result.message == "There is no IAM role vmimport."


def test_a_role_that_does_not_trust_vm_import_fails(iam):
    get_role(
        iam,
        trust={
            **TRUST,
            "Statement": [{**TRUST["Statement"][0], "Principal": {"Service": "ec2.amazonaws.com"}}],
        },
    )
    result = setup_checks.check_role(ROLE, IMPORT_BUCKET, IMPORT_PREFIX, TARGET)
    assert result.outcome == "fail"
    assert "does not trust vmie.amazonaws.com" in result.message


ALLOW_VM_IMPORT = TRUST["Statement"][0]


@pytest.mark.parametrize(
    "statements",
    [
        ALLOW_VM_IMPORT,  # one statement, not a list of them
        {**ALLOW_VM_IMPORT, "Action": ["sts:AssumeRole", "sts:TagSession"]},
        {**ALLOW_VM_IMPORT, "Principal": {"Service": ["ec2.amazonaws.com", "vmie.amazonaws.com"]}},
        {**ALLOW_VM_IMPORT, "Principal": "*"},  # everyone, VM import among them
    ],
)
def test_every_shape_iam_allows_a_trust_in_is_read(iam, statements):
    get_role(iam, trust={**TRUST, "Statement": statements})
    simulate(iam, BUCKET_ACTIONS, f"arn:aws:s3:::{IMPORT_BUCKET}")
    simulate(iam, ["s3:GetObject"], f"arn:aws:s3:::{IMPORT_BUCKET}/{IMPORT_PREFIX}*")
    result = setup_checks.check_role(ROLE, IMPORT_BUCKET, IMPORT_PREFIX, TARGET)
    assert result.outcome == "pass", result


@pytest.mark.parametrize(
    "statements",
    [
        {**ALLOW_VM_IMPORT, "Effect": "Deny"},
        {**ALLOW_VM_IMPORT, "Principal": {"AWS": "arn:aws:iam::123456789012:root"}},
        {**ALLOW_VM_IMPORT, "Action": "sts:TagSession"},
        [],
    ],
)
def test_a_trust_in_any_shape_that_leaves_vm_import_out_fails(iam, statements):
    get_role(iam, trust={**TRUST, "Statement": statements})
    result = setup_checks.check_role(ROLE, IMPORT_BUCKET, IMPORT_PREFIX, TARGET)
    assert result.outcome == "fail"
    assert "does not trust vmie.amazonaws.com" in result.message


def test_a_role_that_may_not_read_the_objects_fails_naming_the_actions(iam):
    get_role(iam)
    simulate(iam, BUCKET_ACTIONS, f"arn:aws:s3:::{IMPORT_BUCKET}", denied=["s3:ListBucket"])
    simulate(
        iam,
        ["s3:GetObject"],
        f"arn:aws:s3:::{IMPORT_BUCKET}/{IMPORT_PREFIX}*",
        denied=["s3:GetObject"],
    )
    result = setup_checks.check_role(ROLE, IMPORT_BUCKET, IMPORT_PREFIX, TARGET)
    assert result.outcome == "fail"
    assert result.message == f"vmimport may not s3:ListBucket, s3:GetObject on {IMPORT_BUCKET}."


def test_a_role_whose_policies_cannot_be_simulated_is_a_warning(iam):
    get_role(iam)
    iam.add_client_error("simulate_principal_policy", "AccessDenied", "not allowed", 403)
    result = setup_checks.check_role(ROLE, IMPORT_BUCKET, IMPORT_PREFIX, TARGET)
    assert result.outcome == "warn"


# -- the lifecycle rule ---------------------------------------------------------------------


def lifecycle(prefix="", status="Enabled", abort=True):
    rule = {"ID": "r", "Status": status, "Filter": {"Prefix": prefix}}
    if abort:
        rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": 7}
    return {"Rules": [rule]}


@pytest.mark.parametrize("prefix", ["", "vm-", IMPORT_PREFIX])
def test_a_rule_aborting_unfinished_uploads_under_the_prefix_passes(s3, prefix):
    s3.add_response("get_bucket_lifecycle_configuration", lifecycle(prefix), bucket())
    result = setup_checks.check_lifecycle(IMPORT_BUCKET, IMPORT_PREFIX, TARGET)
    assert result.outcome == "pass"
    assert result.message == "Unfinished uploads are aborted after 7 days."


@pytest.mark.parametrize(
    "answer",
    [
        lifecycle(status="Disabled"),
        lifecycle(abort=False),
        lifecycle(prefix="other/"),
    ],
)
def test_no_rule_aborting_unfinished_uploads_is_a_warning(s3, answer):
    s3.add_response("get_bucket_lifecycle_configuration", answer, bucket())
    result = setup_checks.check_lifecycle(IMPORT_BUCKET, IMPORT_PREFIX, TARGET)
    assert result.outcome == "warn"
    assert "AbortIncompleteMultipartUpload" in result.fix


def test_no_lifecycle_configuration_is_a_warning(s3):
    s3.add_client_error(
        "get_bucket_lifecycle_configuration", "NoSuchLifecycleConfiguration", "none", 404
    )
    assert setup_checks.check_lifecycle(IMPORT_BUCKET, IMPORT_PREFIX, TARGET).outcome == "warn"


# -- the button -----------------------------------------------------------------------------


def test_a_team_without_a_bucket_is_told_to_set_one(client, team):
    client.force_login(make_member("ada", team, Membership.Role.ADMIN))
    response = client.post(reverse("imports:check_setup"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Fail:" in page and "The team has no import bucket." in page


def test_check_setup_shows_every_check_as_an_htmx_partial(client, team, aws_credentials):
    set_up_disk_imports(team, role=ROLE)
    team.aws_region = "eu-west-1"
    team.save()
    client.force_login(make_member("ada", team, Membership.Role.ADMIN))
    with Stubber(aws.client("s3", TARGET)) as s3, Stubber(aws.client("iam", TARGET)) as iam:
        s3.add_response("get_bucket_location", {"LocationConstraint": "eu-west-1"}, bucket())
        s3.add_response(
            "get_bucket_cors", cors(setup_checks.cors_rule("http://testserver")), bucket()
        )
        get_role(iam)
        simulate(iam, BUCKET_ACTIONS, f"arn:aws:s3:::{IMPORT_BUCKET}")
        simulate(iam, ["s3:GetObject"], f"arn:aws:s3:::{IMPORT_BUCKET}/{IMPORT_PREFIX}*")
        s3.add_client_error(
            "get_bucket_lifecycle_configuration", "NoSuchLifecycleConfiguration", "none", 404
        )
        response = client.post(reverse("imports:check_setup"), headers={"HX-Request": "true"})
        s3.assert_no_pending_responses()
        iam.assert_no_pending_responses()
    page = response.content.decode()
    assert page.strip().startswith('<div id="setup-checks"')
    assert page.count("Pass:") == 3 and page.count("Warning:") == 1


def test_a_viewer_may_not_run_the_checks(client, team):
    client.force_login(make_member("vic", team, Membership.Role.VIEWER))
    assert client.post(reverse("imports:check_setup")).status_code == 403


# -- against the local emulator's real IAM and S3 (moto), as `make run` has them


def emulator_team(team, bucket="vm-import-portal-uploads"):
    team.import_bucket, team.import_prefix, team.vm_import_role = bucket, "", "vmimport"
    team.save()
    return team


def test_the_emulators_set_up_passes_every_check(s3_set_up, team):
    # moto has no IAM policy simulator: the role's own policies are read instead.
    results = setup_checks.run_all(emulator_team(team), origin="http://127.0.0.1:8000")
    assert [(r.name, r.outcome) for r in results if not r.passed] == []
    assert len(results) == 4


def test_without_the_set_up_each_check_fails_with_its_fix(s3_emulator, team):
    boto3.client("s3", endpoint_url=s3_emulator.s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket="bare-bucket"
    )
    results = setup_checks.run_all(
        emulator_team(team, bucket="bare-bucket"), origin="http://127.0.0.1:8000"
    )
    assert [r.outcome for r in results] == [
        setup_checks.PASS,
        setup_checks.FAIL,
        setup_checks.FAIL,
        setup_checks.WARN,
    ]
    assert all(r.fix for r in results if not r.passed)


def test_a_role_whose_policies_do_not_read_the_bucket_fails(s3_set_up, team):
    iam = boto3.client("iam", endpoint_url=s3_set_up.s3_endpoint, region_name="us-east-1")
    for name in iam.list_role_policies(RoleName="vmimport")["PolicyNames"]:
        iam.delete_role_policy(RoleName="vmimport", PolicyName=name)
    result = setup_checks.check_role(
        "vmimport", "vm-import-portal-uploads", "", aws.Target(region="us-east-1")
    )
    assert result.outcome == setup_checks.FAIL
    assert "s3:GetObject" in result.message and "Attach a policy" in result.fix
