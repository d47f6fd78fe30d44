"""A plain hint with the fix for each of EC2 VM import's documented failures."""

import pytest

from imports.hints import failure_hint
from imports.models import Status

from .factories import make_import


@pytest.mark.parametrize(
    "code, message, hint",
    [
        (
            "InvalidParameter",
            "The service role vmimport provided does not exist or does not have sufficient "
            "permissions for the service to continue",
            "could not use the VM import role",
        ),
        (
            "ClientError",
            "Disk validation failed [Unsupported specified file format]",
            "could not validate the disk file",
        ),
        ("ClientError", "Unsupported kernel version 2.6.9", "does not support this Linux kernel"),
        ("ClientError", "No bootable partition found", "no partition it can boot from"),
        (
            "ClientError",
            "UEFI partition detected. Conversion of UEFI-based disks is not supported",
            "boots with UEFI",
        ),
        ("ClientError", "Footers not identical", "header and footer differ"),
        ("ClientError", "Uncompressed data has invalid length.", "VMDK file is damaged"),
        (
            "ClientError",
            "Unsupported OVA format: compression method not supported",
            "OVA's compression",
        ),
        (
            "InvalidParameter",
            "The S3 bucket is not in the same region as the import task",
            "in another region",
        ),
        (
            "ClientError",
            "Unknown OS / Missing OS files",
            "could not recognise the operating system",
        ),
    ],
)
def test_each_vm_import_failure_gets_its_own_hint(team, user, code, message, hint):
    image_import = make_import(
        team, user, status=Status.FAILED, error_code=code, error_message=message
    )
    assert hint in failure_hint(image_import)


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


def test_the_older_hints_still_answer(team, user):
    image_import = make_import(
        team,
        user,
        status=Status.FAILED,
        error_code="AccessDeniedException",
        error_message="User is not authorized to perform imagebuilder:ImportVmImage",
    )
    assert "lack of permissions" in failure_hint(image_import)
