"""fakeaws.validation and fakeaws.query: botocore's models, walked as AWS applies them."""

from datetime import UTC, datetime

import pytest
from botocore.serialize import create_serializer

from fakeaws import query, validation
from fakeaws.validation import ShapeError, Violation, compiled, describe, violations


def input_shape(service, operation):
    return validation.operation_model(service, operation).input_shape


ASSUME_ROLE = input_shape("sts", "AssumeRole")
STS_TAG_KEY_RULES = (
    "Member must have length less than or equal to 128, "
    "Member must have length greater than or equal to 1, "
    r"Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+"
)


def assume_role(**members):
    return {"RoleArn": "arn:aws:iam::210987654321:role/R", "RoleSessionName": "s1", **members}


# -- patterns -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        # Unanchored, and still the whole value must match (STS refuses "my session").
        (r"[\w+=,.@-]*", "my session", False),
        (r"[\w+=,.@-]*", "my-session", True),
        # Anchored: `$` must not let a final newline through, as re.search would.
        (r"^[0-9]+\.[0-9]+\.[0-9]+$", "1.0.0\n", False),
        (r"^[0-9]+\.[0-9]+\.[0-9]+$", "1.0.0", True),
        # Java's defaults: \w and \s are ASCII.
        (r"[\w]+", "équipe", False),
        (r"^(?!aws:)[a-zA-Z0-9\s_.:/=+\-@]*$", "cost\u00a0center", False),
        (r"^(?!aws:)[a-zA-Z0-9\s_.:/=+\-@]*$", "cost center", True),
        # Java's Unicode categories, which Python's re does not know.
        (r"[\p{L}\p{Z}\p{N}_.:/=+\-@]+", "Équipe 42", True),
        (r"[\p{L}\p{Z}\p{N}_.:/=+\-@]+", "team!", False),
        (r"\P{N}+", "abc", True),
        (r"\P{N}+", "a1", False),
    ],
)
def test_patterns_match_the_whole_value_as_aws_does(pattern, value, matches):
    assert bool(compiled(pattern).fullmatch(value)) is matches


# -- the walk -----------------------------------------------------------------


def test_a_valid_request_breaks_nothing():
    assert violations(ASSUME_ROLE, assume_role(DurationSeconds=900, ExternalId="team-42")) == []


def test_each_broken_rule_is_one_violation_in_aws_words():
    found = violations(ASSUME_ROLE, {"RoleSessionName": "x", "DurationSeconds": 43201})

    assert describe(found) == (
        "3 validation errors detected: "
        "Value null at 'roleArn' failed to satisfy constraint: Member must not be null; "
        "Value 'x' at 'roleSessionName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 2; "
        "Value '43201' at 'durationSeconds' failed to satisfy constraint: "
        "Member must have value less than or equal to 43200"
    )


def test_a_structure_in_a_list_is_named_by_its_position():
    tags = [{"Key": "team", "Value": "data"}, {"Key": "team!", "Value": "data"}]

    [found] = violations(ASSUME_ROLE, assume_role(Tags=tags))

    assert str(found) == (
        "Value 'team!' at 'tags.2.member.key' failed to satisfy constraint: "
        r"Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+"
    )


def test_plain_values_in_a_list_are_reported_once_for_the_list():
    [found] = violations(ASSUME_ROLE, assume_role(TransitiveTagKeys=["ok", "bad!", "bad?"]))

    assert found == Violation(
        ("TransitiveTagKeys",),
        ["ok", "bad!", "bad?"],
        f"Member must satisfy constraint: [{STS_TAG_KEY_RULES}]",
    )
    assert str(found).startswith("Value '[ok, bad!, bad?]' at 'transitiveTagKeys' failed")


def test_a_collection_too_long_breaks_its_own_length():
    [found] = violations(ASSUME_ROLE, assume_role(TransitiveTagKeys=["k"] * 51))

    assert found.constraint == "Member must have length less than or equal to 50"


def test_a_map_reports_its_keys_and_its_values_once_each():
    shape = input_shape("imagebuilder", "ImportVmImage").members["tags"]
    tags = {"aws:a": "v", "aws:b": "v" * 257, "c": "v" * 257}

    found = violations(shape, tags, ("tags",))

    kinds = [violation.constraint.split(":")[0] for violation in found]
    assert kinds == ["Map keys must satisfy constraint", "Map value must satisfy constraint"]
    assert str(found[0]).startswith(f"Value '{{aws:a=v, aws:b={'v' * 257}, c=")


@pytest.mark.parametrize(
    ("members", "location", "expected"),
    [
        ({"RoleSessionName": 5}, ("RoleSessionName",), "string"),
        ({"DurationSeconds": True}, ("DurationSeconds",), "integer"),
        ({"DurationSeconds": 900.5}, ("DurationSeconds",), "integer"),
        ({"Tags": {"Key": "k"}}, ("Tags",), "list"),
        ({"Tags": [{"Key": 1, "Value": "v"}]}, ("Tags", 1, "Key"), "string"),
        ({"TransitiveTagKeys": ["k", 2]}, ("TransitiveTagKeys", 2), "string"),
    ],
)
def test_a_value_of_another_type_is_a_shape_error_where_it_is(members, location, expected):
    with pytest.raises(ShapeError) as excinfo:
        violations(ASSUME_ROLE, assume_role(**members))

    assert (excinfo.value.location, excinfo.value.expected) == (location, expected)


def test_statuses_come_from_the_error_trait_of_the_model():
    statuses = validation.error_statuses("imagebuilder")

    assert {code: statuses[code] for code in statuses if code in AWS_STATUSES} == AWS_STATUSES


AWS_STATUSES = {
    "ClientException": 400,
    "ServiceException": 500,
    "ServiceUnavailableException": 503,
    "ResourceNotFoundException": 404,
    "InvalidRequestException": 400,
    "IdempotentParameterMismatchException": 400,
    "CallRateLimitExceededException": 429,
}


# -- the query protocol -------------------------------------------------------


def serialised(protocol, service, operation, params):
    """The form fields botocore sends, as the emulator receives them (text)."""
    model = validation.operation_model(service, operation)
    body = create_serializer(protocol).serialize_to_request(params, model)["body"]
    return {name: str(value) for name, value in body.items()}


def test_ec2_fields_read_back_into_the_members_botocore_sent():
    params = {
        "DiskContainers": [
            {"Format": "vmdk", "UserBucket": {"S3Bucket": "exports", "S3Key": "a.vmdk"}},
            {"Url": "https://example.com/b.vmdk"},
        ],
        "TagSpecifications": [
            {"ResourceType": "import-image-task", "Tags": [{"Key": "team", "Value": "data"}]}
        ],
        "DryRun": False,
        "ClientData": {"UploadSize": 1.5, "UploadStart": datetime(2024, 5, 1, tzinfo=UTC)},
    }
    fields = serialised("ec2", "ec2", "ImportImage", params)
    assert "TagSpecification.1.Tag.1.Key" in fields

    members, unknown = query.decode(input_shape("ec2", "ImportImage"), fields, ec2=True)

    assert (members, unknown) == (params, [])


def test_sts_fields_read_back_into_the_members_botocore_sent():
    params = assume_role(
        DurationSeconds=900,
        Tags=[{"Key": "team", "Value": "data"}],
        TransitiveTagKeys=["team"],
        PolicyArns=[{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}],
    )
    fields = serialised("query", "sts", "AssumeRole", params)
    assert "Tags.member.1.Key" in fields

    members, unknown = query.decode(ASSUME_ROLE, fields, ec2=False)

    assert (members, unknown) == (params, [])


def test_fields_that_name_no_member_are_reported():
    fields = {"Action": "DescribeImportImageTasks", "Version": "2016-11-15", "Colour": "red"}

    members, unknown = query.decode(
        input_shape("ec2", "DescribeImportImageTasks"), fields, ec2=True
    )

    assert (members, unknown) == ({}, ["Colour"])


@pytest.mark.parametrize(
    ("field", "text", "expected"),
    [("MaxResults", "ten", "integer"), ("DryRun", "yes", "boolean")],
)
def test_a_field_that_is_not_of_its_members_type_is_a_shape_error(field, text, expected):
    with pytest.raises(ShapeError) as excinfo:
        query.decode(input_shape("ec2", "DescribeImportImageTasks"), {field: text}, ec2=True)

    assert (excinfo.value.location, excinfo.value.expected) == ((field,), expected)
