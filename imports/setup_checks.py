"""Check setup: is the team's AWS ready for disk imports, before one fails?

Each check is a small function that reads one thing through aws.py and
answers pass, warn or fail, with the fix in plain words. A check that the
portal itself may not read (AccessDenied) says so instead of guessing.
All of them together get CHECK_SETUP_SECONDS: the web waits for them.
"""

import fnmatch
import json
from dataclasses import dataclass

from django.conf import settings

from . import aws

PASS, WARN, FAIL = "pass", "warn", "fail"
VM_IMPORT_SERVICE = "vmie.amazonaws.com"
UPLOAD_METHODS = ("PUT",)


@dataclass(frozen=True)
class CheckResult:
    name: str
    outcome: str
    message: str
    fix: str = ""

    @property
    def passed(self):
        return self.outcome == PASS


# The checks' names, as the page lists them.
BUCKET_REGION = "Bucket exists in the target region"
CORS = "The bucket accepts uploads from the portal (CORS)"
LIFECYCLE = "Unfinished uploads are cleaned up (lifecycle rule)"


def role_check_name(role_name):
    return f"The role {role_name} exists, trusts VM import and may read the bucket"


def run_all(team, *, origin):
    """Every check for the team's bucket and role; `origin` is the portal's own."""
    target = aws.Target.for_team(team)
    if not team.import_bucket:
        return [
            CheckResult(
                "Import bucket",
                FAIL,
                "The team has no import bucket.",
                "A team admin sets the import bucket (and its region) above, then checks again.",
            )
        ]
    bucket, prefix, role = team.import_bucket, team.import_prefix, team.vm_import_role
    return within_time(
        [
            (BUCKET_REGION, lambda: check_bucket_region(bucket, target)),
            (CORS, lambda: check_cors(bucket, origin, target)),
            (role_check_name(role), lambda: check_role(role, bucket, prefix, target)),
            (LIFECYCLE, lambda: check_lifecycle(bucket, prefix, target)),
        ]
    )


def within_time(checks):
    """Run the (name, check) pairs in turn within CHECK_SETUP_SECONDS in all.

    The person waits on the page for every call the checks make, and each
    call alone may wait out the AWS timeouts (35 s): against an AWS that
    hangs, the checks would outlast gunicorn's timeout, and its worker,
    killed, would answer a bare 502. Within the budget each call gets at
    most the time left; once it is spent, the checks not yet run say so,
    and the ones done keep their results.
    """
    results = []
    with aws.time_budget(settings.CHECK_SETUP_SECONDS):
        for name, check in checks:
            try:
                results.append(check())
            except aws.OutOfTime:
                results.append(not_run(name))
    return results


# What to do when AWS did not answer: nothing in the team's setup is wrong yet.
WHEN_AWS_DID_NOT_ANSWER = (
    "Check again in a few minutes. If AWS still does not answer, check that the portal's "
    "machines can reach AWS (their network, proxy and firewall) and AWS's Health Dashboard."
)


def not_run(name):
    return CheckResult(
        name,
        WARN,
        "Not run: AWS did not answer the checks before this one in time "
        f"({settings.CHECK_SETUP_SECONDS} seconds for them all), so the portal stopped checking.",
        WHEN_AWS_DID_NOT_ANSWER,
    )


def refused(name, error, what):
    if not error.answered:  # a timeout, a lost connection: no verdict on the setup
        return CheckResult(
            name,
            FAIL,
            f"The portal could not read {what}: {error.message}",
            WHEN_AWS_DID_NOT_ANSWER,
        )
    return CheckResult(
        name,
        FAIL,
        f"The portal could not read {what}: {error.code}: {error.message}",
        "Allow the portal's AWS identity to read it (or check the name), then check again.",
    )


def check_bucket_region(bucket, target):
    name = BUCKET_REGION
    try:
        region = aws.bucket_region(bucket, target=target)
    except aws.AwsError as error:
        if error.code in ("NoSuchBucket", "404"):
            return CheckResult(
                name,
                FAIL,
                f"There is no bucket {bucket}.",
                f"Create it in {target.region}: aws s3 mb s3://{bucket} --region {target.region}",
            )
        return refused(name, error, f"the location of {bucket}")
    if region != target.region:
        return CheckResult(
            name,
            FAIL,
            f"{bucket} is in {region}, but imports go to {target.region}.",
            "EC2 VM import reads only buckets in its own region: use a bucket in "
            f"{target.region}, or change the team's region.",
        )
    return CheckResult(name, PASS, f"{bucket} exists in {region}.")


def cors_rule(origin):
    return {
        "AllowedOrigins": [origin],
        "AllowedMethods": ["PUT"],
        "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag"],
        "MaxAgeSeconds": 3600,
    }


def check_cors(bucket, origin, target):
    name = CORS
    try:
        rules = aws.bucket_cors_rules(bucket, target=target)
    except aws.AwsError as error:
        return refused(name, error, f"the CORS rules of {bucket}")
    for rule in rules:
        origins = rule.get("AllowedOrigins", [])
        methods = rule.get("AllowedMethods", [])
        exposed = {header.lower() for header in rule.get("ExposeHeaders", [])}
        if (
            (origin in origins or "*" in origins)
            and all(method in methods for method in UPLOAD_METHODS)
            and "etag" in exposed
        ):
            return CheckResult(name, PASS, f"A CORS rule lets {origin} upload parts.")
    configuration = json.dumps({"CORSRules": [*rules, cors_rule(origin)]})
    return CheckResult(
        name,
        FAIL,
        f"No CORS rule lets {origin} PUT parts and read their ETag, so browsers cannot upload.",
        f"Add this rule: aws s3api put-bucket-cors --bucket {bucket} "
        f"--cors-configuration '{configuration}'",
    )


def trusts_vm_import(policy):
    """Whether a trust policy lets VM import's service assume the role.

    IAM's grammar lets a Statement be one object, and a Principal be "*"
    (everyone, VM import among them) as well as {"Service": ...}.
    """
    for statement in as_list(policy.get("Statement")):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        actions = as_list(statement.get("Action"))
        principal = statement.get("Principal")
        if principal == "*":
            services = [VM_IMPORT_SERVICE]
        elif isinstance(principal, dict):
            services = as_list(principal.get("Service"))
        else:
            services = []
        if VM_IMPORT_SERVICE in services and {"sts:AssumeRole", "sts:*", "*"} & set(actions):
            return True
    return False


# What VM import's role must be allowed to read the team's disk files.
READ_ACCESS = (
    (("s3:GetBucketLocation", "s3:ListBucket"), "arn:aws:s3:::{bucket}"),
    (("s3:GetObject",), "arn:aws:s3:::{bucket}/{prefix}*"),
)


def read_access(bucket, prefix):
    """READ_ACCESS for this bucket and prefix: (actions, resource ARN) pairs."""
    return [(actions, arn.format(bucket=bucket, prefix=prefix)) for actions, arn in READ_ACCESS]


def read_access_in_words(bucket, prefix):
    """'s3:GetBucketLocation and s3:ListBucket on arn:... and s3:GetObject on arn:...'."""
    access = read_access(bucket, prefix)
    return " and ".join(f"{' and '.join(actions)} on {arn}" for actions, arn in access)


def check_role(role_name, bucket, prefix, target):
    name = role_check_name(role_name)
    try:
        role_arn, trust = aws.role_trust_policy(role_name, target=target)
    except aws.AwsError as error:
        if error.code == "NoSuchEntity":
            return CheckResult(
                name,
                FAIL,
                f"There is no IAM role {role_name}.",
                f"Create it with a trust policy for {VM_IMPORT_SERVICE} (the VM Import/Export "
                "User Guide's 'Required service role'), or set the right name above.",
            )
        return refused(name, error, f"the role {role_name}")
    if not trusts_vm_import(trust):
        return CheckResult(
            name,
            FAIL,
            f"{role_name} does not trust {VM_IMPORT_SERVICE}, so EC2 cannot assume it.",
            f'Add to its trust policy: {{"Effect": "Allow", "Principal": {{"Service": '
            f'"{VM_IMPORT_SERVICE}"}}, "Action": "sts:AssumeRole"}}',
        )
    return check_role_reads(name, role_name, role_arn, bucket, prefix, target)


def check_role_reads(name, role_name, role_arn, bucket, prefix, target):
    """The role's read access, by IAM's simulator, else by reading its own policies."""
    try:
        denied = []
        for actions, resource in read_access(bucket, prefix):
            denied += aws.role_may(role_arn, list(actions), [resource], target=target)
    except aws.AwsError as error:
        denied = denied_by_reading_policies(role_name, bucket, prefix, target)
        if denied is None and not error.answered:
            return refused(name, error, f"the permissions of {role_name}")
        if denied is None:
            return CheckResult(
                name,
                WARN,
                f"{role_name} exists and trusts VM import, but its permissions could not be "
                f"simulated: {error.code}: {error.message}",
                "Allow the portal iam:SimulatePrincipalPolicy to check them, or check by hand "
                f"that the role may {read_access_in_words(bucket, prefix)}.",
            )
    if denied:
        return CheckResult(
            name,
            FAIL,
            f"{role_name} may not {', '.join(denied)} on {bucket}.",
            f"Attach a policy allowing {read_access_in_words(bucket, prefix)}.",
        )
    return CheckResult(
        name, PASS, f"{role_name} trusts {VM_IMPORT_SERVICE} and may read {bucket}/{prefix}."
    )


def denied_by_reading_policies(role_name, bucket, prefix, target):
    """What the role's own Allow statements leave out, or None if they cannot be read.

    The fallback when IAM's simulator cannot be asked (no permission, or an
    IAM that lacks it, like the local emulator's): it reads the role's inline
    and attached policies and matches actions and resources with IAM's
    wildcards. It sees no Deny, condition or boundary, so it can only be as
    strict as the simulator, never stricter.
    """
    try:
        statements = aws.role_policy_statements(role_name, target=target)
    except aws.AwsError:
        return None
    denied = set()
    for actions, resource in read_access(bucket, prefix):
        for action in actions:
            if not any(allows(statement, action, resource) for statement in statements):
                denied.add(action)
    return sorted(denied)


def as_list(value):
    """A policy element, which IAM lets be one value (a statement, an action) or a list."""
    return [value] if isinstance(value, (str, dict)) else list(value or [])


def allows(statement, action, resource):
    return any(
        fnmatch.fnmatchcase(action.lower(), a.lower()) for a in as_list(statement.get("Action"))
    ) and any(fnmatch.fnmatchcase(resource, r) for r in as_list(statement.get("Resource")))


def covers(rule_prefix, prefix):
    return prefix.startswith(rule_prefix)


def in_days(days):
    """7 days, 1 day: as people write it."""
    return f"{days} day" if days == 1 else f"{days} days"


def check_lifecycle(bucket, prefix, target):
    name = LIFECYCLE
    try:
        rules = aws.bucket_lifecycle_rules(bucket, target=target)
    except aws.AwsError as error:
        return refused(name, error, f"the lifecycle rules of {bucket}")
    for rule in rules:
        rule_prefix = rule.get("Filter", {}).get("Prefix", rule.get("Prefix", ""))
        if (
            rule.get("Status") == "Enabled"
            and "AbortIncompleteMultipartUpload" in rule
            and covers(rule_prefix, prefix)
        ):
            days = rule["AbortIncompleteMultipartUpload"].get("DaysAfterInitiation")
            return CheckResult(name, PASS, f"Unfinished uploads are aborted after {in_days(days)}.")
    return CheckResult(
        name,
        WARN,
        "No lifecycle rule aborts unfinished multipart uploads: parts of abandoned uploads "
        "stay in the bucket, and are billed, until someone deletes them.",
        "Add a rule such as: aws s3api put-bucket-lifecycle-configuration --bucket "
        f"{bucket} --lifecycle-configuration '"
        + json.dumps(
            {
                "Rules": [
                    {
                        "ID": "abort-unfinished-uploads",
                        "Status": "Enabled",
                        "Filter": {"Prefix": prefix},
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                    }
                ]
            }
        )
        + "' (this replaces the bucket's lifecycle rules: merge with any you have).",
    )
