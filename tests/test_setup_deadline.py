"""Check setup within its time budget, against an AWS that accepts and never answers.

The person waits for every call the checks make; each could wait out the
AWS timeouts, and together they outlasted gunicorn's timeout (a bare 502).
The budget is shrunk here so that the tests are fast; AWS_READ_TIMEOUT is
left longer than it, so that only the budget can end the calls in time.
"""

import runpy
import time
from pathlib import Path

import pytest
from botocore.stub import Stubber
from django.urls import reverse

from imports import aws, setup_checks
from imports.models import Membership

from .factories import IMPORT_BUCKET, make_member, set_up_disk_imports
from .sockets import hanging_server

ROOT = Path(__file__).resolve().parent.parent
TARGET = aws.Target(region="eu-west-1")
BUDGET = 3.0
SLACK = 2.0  # the test's own work around the checks (2 CPUs, shared)


@pytest.fixture
def hanging_aws(aws_credentials, monkeypatch, settings):
    """S3, IAM and STS at a port that accepts connections and never answers."""
    settings.CHECK_SETUP_SECONDS = BUDGET
    settings.AWS_READ_TIMEOUT = 10  # longer than the budget: only the budget ends the calls
    with hanging_server() as port:
        for service in ("S3", "IAM", "STS"):
            monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", f"http://127.0.0.1:{port}")
        aws.clear_clients()
        yield port


@pytest.fixture
def team_set_up(team):
    set_up_disk_imports(team, role="vmimport")
    team.aws_region = "eu-west-1"
    team.save()
    return team


def outcomes(results):
    return [(result.name, result.outcome) for result in results]


def timed(action):
    started = time.monotonic()
    result = action()
    return result, time.monotonic() - started


def test_a_call_gets_no_more_than_the_time_left_and_then_none_is_made(hanging_aws):
    with aws.time_budget(BUDGET):
        with pytest.raises(aws.AwsError) as raised:
            aws.bucket_region(IMPORT_BUCKET, target=TARGET)
        started = time.monotonic()
        with pytest.raises(aws.OutOfTime):
            aws.bucket_cors_rules(IMPORT_BUCKET, target=TARGET)
        assert time.monotonic() - started < 0.1  # not sent at all

    error = raised.value
    assert (error.code, error.message) == ("ConnectionError", "AWS S3 did not answer in time.")
    assert error.outcome_unknown and not error.answered


def test_the_budget_bounds_the_whole_call_not_each_read(hanging_aws):
    started = time.monotonic()
    with aws.time_budget(BUDGET), pytest.raises(aws.AwsError):
        aws.bucket_region(IMPORT_BUCKET, target=TARGET)
    assert BUDGET - 0.1 < time.monotonic() - started < BUDGET + SLACK


def test_a_nested_budget_ends_with_its_outer_one(hanging_aws):
    started = time.monotonic()
    with aws.time_budget(BUDGET), aws.time_budget(60), pytest.raises(aws.AwsError):
        aws.bucket_region(IMPORT_BUCKET, target=TARGET)
    assert time.monotonic() - started < BUDGET + SLACK


def test_the_checks_done_keep_their_results_and_the_rest_say_they_were_not_run(
    hanging_aws, team_set_up
):
    # S3 answers (Stubber, before anything is sent); IAM hangs.
    with Stubber(aws.client("s3", TARGET)) as s3:
        s3.add_response(
            "get_bucket_location", {"LocationConstraint": "eu-west-1"}, {"Bucket": IMPORT_BUCKET}
        )
        s3.add_response(
            "get_bucket_cors",
            {"CORSRules": [setup_checks.cors_rule("http://testserver")]},
            {"Bucket": IMPORT_BUCKET},
        )
        results, seconds = timed(
            lambda: setup_checks.run_all(team_set_up, origin="http://testserver")
        )
        s3.assert_no_pending_responses()  # the lifecycle rule was not asked for

    assert seconds < BUDGET + SLACK
    assert outcomes(results) == [
        (setup_checks.BUCKET_REGION, setup_checks.PASS),
        (setup_checks.CORS, setup_checks.PASS),
        (setup_checks.role_check_name("vmimport"), setup_checks.FAIL),
        (setup_checks.LIFECYCLE, setup_checks.WARN),
    ]
    role, lifecycle = results[2:]
    assert (
        role.message
        == "The portal could not read the role vmimport: AWS IAM did not answer in time."
    )
    assert lifecycle.message == (
        "Not run: AWS did not answer the checks before this one in time "
        "(3.0 seconds for them all), so the portal stopped checking."
    )
    assert role.fix == lifecycle.fix == setup_checks.WHEN_AWS_DID_NOT_ANSWER
    assert "Check again in a few minutes" in lifecycle.fix


def test_check_setup_against_a_hanging_aws_answers_within_its_budget(
    client, hanging_aws, team_set_up
):
    client.force_login(make_member("ada", team_set_up, Membership.Role.ADMIN))

    response, seconds = timed(
        lambda: client.post(reverse("imports:check_setup"), headers={"HX-Request": "true"})
    )

    assert response.status_code == 200
    assert seconds < BUDGET + SLACK
    page = response.content.decode()
    assert f"could not read the location of {IMPORT_BUCKET}: AWS S3 did not answer in time" in page
    assert page.count("Fail:") == 1 and page.count("Warning:") == 3
    assert page.count("Not run: AWS did not answer the checks before this one in time") == 3


def test_a_team_role_whose_assume_role_hangs_is_bounded_too(hanging_aws, team_set_up):
    # The credentials come from STS AssumeRole inside the first call: the
    # budget bounds it as it does the call.
    team_set_up.aws_role_arn = "arn:aws:iam::123456789012:role/portal-access"
    team_set_up.save()

    results, seconds = timed(lambda: setup_checks.run_all(team_set_up, origin="http://testserver"))

    assert seconds < BUDGET + SLACK
    assert [result.outcome for result in results] == [setup_checks.FAIL] + [setup_checks.WARN] * 3


def test_the_default_budget_ends_well_inside_gunicorn_s_timeout(settings):
    # The calls end within the budget; the page still has to be rendered.
    gunicorn = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))
    assert gunicorn["timeout"] - settings.CHECK_SETUP_SECONDS >= 15


def test_a_role_whose_permissions_aws_did_not_answer_for_says_so_not_to_allow_the_simulator(
    aws_credentials,
):
    # A gateway's 504 in IAM's place: no verdict on the role, and nothing for
    # the team to allow; before, the fix offered was iam:SimulatePrincipalPolicy.
    role_arn = "arn:aws:iam::123456789012:role/vmimport"
    with Stubber(aws.client("iam", TARGET)) as iam:
        iam.add_client_error("simulate_principal_policy", "504", "Gateway Timeout", 504)
        iam.add_client_error("list_role_policies", "504", "Gateway Timeout", 504)
        result = setup_checks.check_role_reads(
            "Role", "vmimport", role_arn, IMPORT_BUCKET, "vm-imports/", TARGET
        )

    assert result.outcome == setup_checks.FAIL
    assert (
        result.message == "The portal could not read the permissions of vmimport: Gateway Timeout"
    )
    assert result.fix == setup_checks.WHEN_AWS_DID_NOT_ANSWER
