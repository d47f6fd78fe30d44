"""The portal's form and the emulator, request by request: do they agree with AWS?

The form follows the seed spec (docs/spec/ImportVmImage.txt); the emulator
follows botocore's model of Image Builder and the API reference's rules the
model lacks. One table of ImportVmImage requests goes through both: the
form's `from_json(body).is_valid()`, and the running emulator over real HTTP
(with boto3 when botocore will send the request as it is, raw HTTP when it
would refuse it or make up a clientToken). Each case states what AWS does
with it; where the portal decides otherwise on purpose, the case names the
reason, and the test asserts exactly that difference.
"""

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError

from fakeaws import validation
from fakeaws.testing import running_emulator
from imports.forms import NewImportForm, RequestShapeError

from .factories import SEEDED_TASK, valid_payload


@dataclass(frozen=True)
class Reason:
    """Why the portal's form decides a request otherwise than AWS, on purpose."""

    name: str
    why: str


PORTAL_TRIMS_WHITESPACE = Reason(
    "PORTAL_TRIMS_WHITESPACE",
    "Django's form fields strip surrounding whitespace before checking lengths, patterns "
    "and choices, and the portal sends the stripped value; AWS judges the value as sent.",
)
PORTAL_DROPS_BLANK_MEMBERS = Reason(
    "PORTAL_DROPS_BLANK_MEMBERS",
    "An empty optional member (description, osVersion, an empty tags map, a blank tag row) "
    "is left out of what the portal sends; AWS refuses it (min 1).",
)
PORTAL_REFUSES_NUL_CHARACTERS = Reason(
    "PORTAL_REFUSES_NUL_CHARACTERS",
    "Django's CharField refuses NUL characters; the model allows any character in a name.",
)
PORTAL_REFUSES_UNKNOWN_MEMBERS = Reason(
    "PORTAL_REFUSES_UNKNOWN_MEMBERS",
    "The portal's JSON API refuses members it does not know; Image Builder ignores them.",
)
SEED_CLIENT_TOKEN_MAX_36 = Reason(
    "SEED_CLIENT_TOKEN_MAX_36",
    "The seed spec allows a clientToken of 36 characters at most; botocore's model, 64.",
)
SEED_TAG_KEY_PATTERN = Reason(
    "SEED_TAG_KEY_PATTERN",
    "The portal admits only the tag key characters both the API reference's pattern and "
    "botocore's model ^(?!aws:)[a-zA-Z0-9\\s_.:/=+\\-@]*$ admit: not the model's spaces and @.",
)
PORTAL_KEEPS_LOGS_UNDER_IMAGEBUILDER = Reason(
    "PORTAL_KEEPS_LOGS_UNDER_IMAGEBUILDER",
    "The portal takes only log groups under /aws/imagebuilder/, where Image Builder's "
    "service-linked role may write; the model's pattern admits any name.",
)
ABSENT = object()  # a member left out of the body (None sends JSON null)


@dataclass(frozen=True)
class Case:
    name: str
    changes: dict  # over valid_payload(): a member's value, None for null, ABSENT to drop it
    aws_accepts: bool  # what the model (and the API reference) says
    portal_differs: Reason | None = None
    body: object = ABSENT  # a whole body instead of changes, for bodies that are no object

    @property
    def portal_accepts(self):
        return self.aws_accepts if self.portal_differs is None else not self.aws_accepts

    def request(self):
        if self.body is not ABSENT:
            return self.body
        body = valid_payload()
        for member, value in self.changes.items():
            if value is ABSENT:
                body.pop(member, None)
            else:
                body[member] = value
        return body


def tags(count):
    return {f"key{n}": "v" for n in range(count)}


CASES = [
    Case("a valid request", {}, True),
    Case(
        "every member set",
        {"description": "Base", "osVersion": "22.04", "tags": {"team": "web", "cost": "42"}},
        True,
    ),
    # clientToken: 1 to 64 (the seed: 36)
    Case("clientToken of 1", {"clientToken": "x"}, True),
    Case("clientToken of 36", {"clientToken": "x" * 36}, True),
    Case("clientToken of 37", {"clientToken": "x" * 37}, True, SEED_CLIENT_TOKEN_MAX_36),
    Case("clientToken of 64", {"clientToken": "x" * 64}, True, SEED_CLIENT_TOKEN_MAX_36),
    Case("clientToken of 65", {"clientToken": "x" * 65}, False),
    Case("clientToken empty", {"clientToken": ""}, False),
    Case("clientToken absent", {"clientToken": ABSENT}, False),
    Case("clientToken null", {"clientToken": None}, False),
    Case("clientToken a number", {"clientToken": 5}, False),
    # name: 1 to 1024
    Case("name of 1", {"name": "n"}, True),
    Case("name of 1024", {"name": "n" * 1024}, True),
    Case("name of 1025", {"name": "n" * 1025}, False),
    Case("name empty", {"name": ""}, False),
    Case("name absent", {"name": ABSENT}, False),
    Case("name of spaces", {"name": "   "}, True, PORTAL_TRIMS_WHITESPACE),
    Case("name of 1024 and a space", {"name": "n" * 1024 + " "}, False, PORTAL_TRIMS_WHITESPACE),
    Case("name with a NUL", {"name": "a\x00b"}, True, PORTAL_REFUSES_NUL_CHARACTERS),
    Case("name a number", {"name": 5}, False),
    Case("name an array", {"name": ["n"]}, False),
    # description: optional, 1 to 1024
    Case("description of 1", {"description": "d"}, True),
    Case("description of 1024", {"description": "d" * 1024}, True),
    Case("description of 1025", {"description": "d" * 1025}, False),
    Case("description empty", {"description": ""}, False, PORTAL_DROPS_BLANK_MEMBERS),
    Case("description null", {"description": None}, True),
    # semanticVersion: ^[0-9]+\.[0-9]+\.[0-9]+$, each node at most 2^30-1
    Case("version 0.0.0", {"semanticVersion": "0.0.0"}, True),
    Case("version 2021.01.01", {"semanticVersion": "2021.01.01"}, True),
    Case("version of two nodes", {"semanticVersion": "1.0"}, False),
    Case("version of four nodes", {"semanticVersion": "1.0.0.0"}, False),
    Case("version with a build", {"semanticVersion": "1.0.0/1"}, False),
    Case("version with a v", {"semanticVersion": "v1.0.0"}, False),
    Case("version with a suffix", {"semanticVersion": "1.0.0-beta"}, False),
    Case("version with wide digits", {"semanticVersion": "\uff11.0.0"}, False),
    Case("version empty", {"semanticVersion": ""}, False),
    Case("version a number", {"semanticVersion": 1.0}, False),
    Case("version nodes at 2^30-1", {"semanticVersion": "1073741823.1073741823.1073741823"}, True),
    Case("version major of 2^30", {"semanticVersion": "1073741824.0.0"}, False),
    Case("version patch of 2^30", {"semanticVersion": "0.0.1073741824"}, False),
    Case("version with zeros ahead", {"semanticVersion": "01.0.0001073741823"}, True),
    Case("version zeros and 2^30", {"semanticVersion": "0001073741824.0.0"}, False),
    Case("version then a newline", {"semanticVersion": "1.0.0\n"}, False, PORTAL_TRIMS_WHITESPACE),
    Case("version after a space", {"semanticVersion": " 1.0.0"}, False, PORTAL_TRIMS_WHITESPACE),
    # platform: Windows | Linux | macOS, case and all
    Case("platform Windows", {"platform": "Windows"}, True),
    Case("platform macOS", {"platform": "macOS"}, True),
    Case("platform linux", {"platform": "linux"}, False),
    Case("platform MacOS", {"platform": "MacOS"}, False),
    Case("platform empty", {"platform": ""}, False),
    Case("platform absent", {"platform": ABSENT}, False),
    Case("platform after a space", {"platform": " Linux"}, False, PORTAL_TRIMS_WHITESPACE),
    Case("platform an array", {"platform": ["Linux"]}, False),
    # osVersion: optional, at least 1
    Case("osVersion of 1", {"osVersion": "7"}, True),
    Case("osVersion of 5000", {"osVersion": "o" * 5000}, True),
    Case("osVersion empty", {"osVersion": ""}, False, PORTAL_DROPS_BLANK_MEMBERS),
    Case("osVersion a number", {"osVersion": 22.04}, False),
    # vmImportTaskId: 1 to 1024 (a task that does not exist is refused after validation)
    Case("vmImportTaskId of 1024", {"vmImportTaskId": "i" * 1024}, True),
    Case("vmImportTaskId of 1025", {"vmImportTaskId": "i" * 1025}, False),
    Case("vmImportTaskId empty", {"vmImportTaskId": ""}, False),
    Case("vmImportTaskId absent", {"vmImportTaskId": ABSENT}, False),
    # tags: 1 to 50; keys 1 to 128 of the pattern; values up to 256
    Case("tags 50", {"tags": tags(50)}, True),
    Case("tags 51", {"tags": tags(51)}, False),
    Case("tags empty", {"tags": {}}, False, PORTAL_DROPS_BLANK_MEMBERS),
    Case("tags null", {"tags": None}, True),
    Case("tag key of 128", {"tags": {"k" * 128: "v"}}, True),
    Case("tag key of 129", {"tags": {"k" * 129: "v"}}, False),
    Case("tag key empty", {"tags": {"": "v"}}, False),
    Case("tag key and value empty", {"tags": {"": ""}}, False),
    Case("tag value of 256", {"tags": {"team": "v" * 256}}, True),
    Case("tag value of 257", {"tags": {"team": "v" * 257}}, False),
    Case("tag value empty", {"tags": {"team": ""}}, True),
    Case(
        "tag value of 256 and a space",
        {"tags": {"t": "v" * 256 + " "}},
        False,
        PORTAL_TRIMS_WHITESPACE,
    ),
    Case("tag key aws:", {"tags": {"aws:team": "web"}}, False),
    Case("tag key AWS: (the rule is case-sensitive)", {"tags": {"AWS:team": "web"}}, True),
    Case("tag key space then aws:", {"tags": {" aws:team": "web"}}, True, PORTAL_TRIMS_WHITESPACE),
    Case(
        "tag keys alike once stripped",
        {"tags": {"team": "a", "team ": "b"}},
        True,
        PORTAL_TRIMS_WHITESPACE,
    ),
    Case("tag key of every allowed sign", {"tags": {"Cost-center/2024.q1:x=y+z_": "v"}}, True),
    Case("tag key with a space", {"tags": {"team name": "web"}}, True, SEED_TAG_KEY_PATTERN),
    Case("tag key with a tab", {"tags": {"team\tname": "web"}}, True, SEED_TAG_KEY_PATTERN),
    Case("tag key with an @", {"tags": {"owner@corp": "web"}}, True, SEED_TAG_KEY_PATTERN),
    Case("tag key with a comma", {"tags": {"a,b": "web"}}, False),
    Case("tag key with a semicolon", {"tags": {"a;b": "web"}}, False),
    Case("tag key with a <", {"tags": {"a<b": "web"}}, False),
    Case("tag key not ASCII", {"tags": {"\u00e9quipe": "web"}}, False),
    Case("tag key with a !", {"tags": {"team!": "web"}}, False),
    Case("tag value a number", {"tags": {"team": 1}}, False),
    Case("tags an array", {"tags": [["team", "web"]]}, False),
    Case("tags a string", {"tags": "team=web"}, False),
    # members beyond the seed spec
    # (the seed has no loggingConfiguration; the portal takes the model's)
    Case("loggingConfiguration empty", {"loggingConfiguration": {}}, True),
    Case(
        "loggingConfiguration with a log group",
        {"loggingConfiguration": {"logGroupName": "/aws/imagebuilder/web"}},
        True,
    ),
    Case(
        "log group empty",
        {"loggingConfiguration": {"logGroupName": ""}},
        False,
        PORTAL_DROPS_BLANK_MEMBERS,
    ),
    Case(
        "log group outside /aws/imagebuilder/",
        {"loggingConfiguration": {"logGroupName": "/my/logs"}},
        True,
        PORTAL_KEEPS_LOGS_UNDER_IMAGEBUILDER,
    ),
    Case("loggingConfiguration a string", {"loggingConfiguration": "/aws/x"}, False),
    Case("a member nobody defines", {"colour": "red"}, True, PORTAL_REFUSES_UNKNOWN_MEMBERS),
    # bodies that are no JSON object
    Case("a body that is an array", {}, False, body=[valid_payload()]),
    Case("a body that is a string", {}, False, body="name=web"),
]


# -- the two judges ------------------------------------------------------------


def portal_accepts(body):
    try:
        return NewImportForm.from_json(body).is_valid()
    except RequestShapeError:
        return False


SESSION = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test")
DIRECT_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def emulator():
    with running_emulator(step_seconds=0) as emulator:
        emulator.imagebuilder = SESSION.client(
            "imagebuilder",
            region_name="us-east-1",
            endpoint_url=emulator.url,
            config=Config(retries={"total_max_attempts": 1}, read_timeout=10),
        )
        yield emulator


def send(emulator, body):
    """(how it went, HTTP status, error code, message) for one ImportVmImage request."""
    # botocore makes up a clientToken when there is none, so that request goes raw.
    if isinstance(body, dict) and "clientToken" in body:
        try:
            emulator.imagebuilder.import_vm_image(**body)
            return "boto3", 200, None, None
        except ClientError as error:
            answer = error.response
            return (
                "boto3",
                answer["ResponseMetadata"]["HTTPStatusCode"],
                answer["Error"]["Code"],
                answer["Error"]["Message"],
            )
        except ParamValidationError:
            pass  # botocore refuses it client-side: send it as it is
    request = urllib.request.Request(
        f"{emulator.url}/ImportVmImage",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    try:
        with DIRECT_OPENER.open(request, timeout=10) as response:
            return "raw", response.status, None, None
    except urllib.error.HTTPError as error:
        return (
            "raw",
            error.code,
            error.headers["x-amzn-ErrorType"],
            json.loads(error.read())["message"],
        )


def emulator_accepts(emulator, body):
    via, status, code, message = send(emulator, body)
    if status == 200:
        return True
    assert (status, code) in {(400, "ClientException"), (400, "SerializationException")}, (
        via,
        status,
        code,
        message,
    )
    # Past validation the service looks the VM import task up: a task that
    # does not exist says nothing about the request's shape.
    task = body.get("vmImportTaskId") if isinstance(body, dict) else None
    return task != SEEDED_TASK and message == (
        f"vmImportTaskId: the VM import task {task!r} does not exist in us-east-1."
    )


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_portal_and_the_emulator_agree_but_where_a_reason_says(emulator, case):
    emulator.reset()  # cases reuse clientTokens
    body = case.request()

    verdicts = {"portal": portal_accepts(body), "emulator": emulator_accepts(emulator, body)}

    assert verdicts == {"portal": case.portal_accepts, "emulator": case.aws_accepts}


def test_every_case_has_its_own_name():
    assert len({case.name for case in CASES}) == len(CASES)


# -- the reasons, held to the documents they cite --------------------------------

SEED_SPEC = Path(__file__).resolve().parent.parent / "docs" / "spec" / "ImportVmImage.txt"


def test_the_seed_and_the_model_differ_as_the_seed_reasons_say():
    model = validation.operation_model("imagebuilder", "ImportVmImage").input_shape.members
    seed = SEED_SPEC.read_text(encoding="utf-8")

    assert "Minimum length of 1. Maximum length of 36.\nRequired: Yes" in seed
    assert model["clientToken"].metadata["max"] == 64
    assert "^(?!aws:)[a-zA-Z+-=._:/]+$" in seed
    assert model["tags"].key.metadata["pattern"] == r"^(?!aws:)[a-zA-Z0-9\s_.:/=+\-@]*$"
    assert "loggingConfiguration" not in seed
    assert "loggingConfiguration" in model
