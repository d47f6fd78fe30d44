"""A plain hint with the fix for each of EC2 VM import's documented failures."""

import pytest

from imports.hints import VM_IMPORT_HINTS, failure_hint
from imports.models import Status

from .factories import make_import

# Each message of the VM Import/Export User Guide's "Troubleshooting VM
# Import/Export" page that an image import can meet, in the guide's own
# words (docs.aws.amazon.com/vm-import/latest/userguide/
# vmimport-troubleshooting.html), with a phrase of the hint it must get.
TROUBLESHOOTING_PAGE = [
    (
        "InvalidParameter",
        "Message: Parameter disk-image-size=0 has an invalid format",
        "does not support this disk image format",
    ),
    (
        "InvalidParameter",
        "The service role <vmimport> does not exist or does not have sufficient permissions "
        "for the service to continue",
        "could not use the VM import role",
    ),
    ("Client.Unsupported", "No bootable partition found.", "no partition it can boot from"),
    ("ClientError", "ClientError: Footers not identical", "differencing VHD"),
    ("ClientError", "ClientError: Uncompressed data has invalid length", "VMDK file is damaged"),
    (
        "ClientError",
        "ERROR: Bucket imports-eu is not in the us-east-1 Region, it's in eu-west-1",
        "in another region",
    ),
    (
        "ClientError",
        "ERROR: File uses unsupported compression algorithm 0",
        "in OVA format instead of OVF format",
    ),
    ("ClientError", "Invalid S3 source location", "could not find the disk file in S3"),
    ("ClientError", "The given S3 bucket is not local to the Region", "in another region"),
    (
        "ClientError",
        "ClientError: Booter Networking failure/instance not reachable. Please retry after "
        "installation of .Net framework 3.5 SP1 or greater.",
        ".NET Framework 3.5 SP1",
    ),
    (
        "FirstBootFailure",
        "FirstBootFailure: This import request failed because the Windows instance failed to "
        "boot and establish network connectivity.",
        "did not boot and reach the network",
    ),
    (
        "ClientError",
        "ClientError: Invalid configuration - Could not read fstab",
        "more than one Linux system",
    ),
    (
        "ClientError",
        "ClientError: Unsupported configuration - Logical volume group activation failed",
        "logical volume (LVM)",
    ),
    (
        "ClientError",
        "ClientError: Unsupported configuration - Multiple directories found",
        "more than one Linux system",
    ),
]

# The failures the issue names beyond that page (the requirements page's
# kernel and boot rules, EC2's own disk validation wording, and the messages
# the emulator fails a bad disk with).
OTHER_FAILURES = [
    (
        "ClientError",
        "Disk validation failed [Unsupported specified file format]",
        "could not validate the disk file",
    ),
    (
        "ClientError",
        "ClientError: Disk validation failed [Invalid S3 source location]",
        "could not find the disk file in S3",
    ),
    (
        "ClientError",
        "ClientError: Disk validation failed [Unsupported OVA format]",
        "in OVA format instead of OVF format",
    ),
    ("ClientError", "ClientError: No valid partitions. Not a valid volume.", "boot from"),
    ("ClientError", "Unsupported kernel version 2.6.9", "does not support this Linux kernel"),
    (
        "ClientError",
        "UEFI partition detected. Conversion of UEFI-based disks is not supported",
        "boots with UEFI",
    ),
    ("ClientError", "Unknown OS / Missing OS files", "could not recognise the operating system"),
]


@pytest.mark.parametrize("code, message, hint", TROUBLESHOOTING_PAGE + OTHER_FAILURES)
def test_each_vm_import_failure_gets_its_own_hint(team, user, code, message, hint):
    image_import = make_import(
        team, user, status=Status.FAILED, error_code=code, error_message=message
    )
    assert hint in failure_hint(image_import)


def test_every_vm_import_hint_answers_a_known_failure():
    """No hint is dead text: each one is the first match of some message above."""
    answered = set()
    for _code, message, _hint in TROUBLESHOOTING_PAGE + OTHER_FAILURES:
        first = next(text for pattern, text in VM_IMPORT_HINTS if pattern.search(message))
        answered.add(first)
    assert answered == {text for _pattern, text in VM_IMPORT_HINTS}


def test_ec2s_last_status_message_is_read_too(team, user):
    image_import = make_import(
        team,
        user,
        status=Status.FAILED,
        error_code="ImageFailed",
        error_message="Image import failed.",
        status_message="ClientError: Footers not identical",
    )
    assert "header and footer differ" in failure_hint(image_import)


@pytest.mark.parametrize(
    "code, message, hint",
    [
        (
            "AccessDeniedException",
            "User is not authorized to perform imagebuilder:ImportVmImage",
            "lack of permissions",
        ),
        # AWS keeps a client token per account: another team used it there.
        (
            "IdempotentParameterMismatchException",
            "The clientToken 'abc' was already used with different parameters; "
            "use a new clientToken for a different request.",
            "already used in the AWS account",
        ),
    ],
    ids=["permissions", "a client token used in the account"],
)
def test_the_general_hints_answer(team, user, code, message, hint):
    image_import = make_import(
        team, user, status=Status.FAILED, error_code=code, error_message=message
    )
    assert hint in failure_hint(image_import)


@pytest.mark.parametrize(
    "code, message, hint",
    [
        (
            "ConnectionError",
            "Could not reach AWS Image Builder: the connection failed. (gave up after 8 "
            "attempts; AWS may still be recovering, submit again with a new import later)",
            "could not reach AWS",
        ),
        (
            "ImageNotFound",
            "Image Builder no longer has this import's image: it answered that the image does "
            "not exist on 30 checks over 5 minutes. The portal stopped following the import.",
            "gone from Image Builder",
        ),
    ],
    ids=["AWS not reached", "image gone"],
)
def test_failures_that_are_no_answer_of_aws_say_so(team, user, code, message, hint):
    # "AWS kept answering that it was busy" was the hint of a connection that
    # failed; and "does not exist" read as the VM import task named on the form.
    image_import = make_import(
        team, user, status=Status.FAILED, error_code=code, error_message=message
    )
    assert hint in failure_hint(image_import)
    assert "busy" not in failure_hint(image_import)
