"""A disk file as the source: EC2 ImportImage's rules, and the API's JSON on the same form."""

import uuid

import botocore.session
import pytest

from imports import forms
from imports.forms import NewImportForm, RequestShapeError
from imports.models import Source

from .factories import IMPORT_BUCKET, IMPORT_PREFIX, disk_request, valid_payload

BUCKET, PREFIX = IMPORT_BUCKET, IMPORT_PREFIX
TOKEN = "0b6f2c1e-1d7e-4c55-9d61-1a2b3c4d5e6f"


def form_for(body, bucket=BUCKET, prefix=PREFIX):
    return NewImportForm.from_json(body, import_bucket=bucket, import_prefix=prefix)


def errors_for(body, **kwargs):
    form = form_for(body, **kwargs)
    assert not form.is_valid()
    return form.error_map()


def options(**values):
    return disk_request(importImageOptions=values)


def test_a_file_in_the_bucket_builds_both_requests():
    form = form_for(disk_request(description="Web", tags={"team": "web"}))
    assert form.is_valid(), form.error_map()
    submission = form.submission()
    assert submission["source"] == Source.S3_OBJECT
    assert submission["payload"] == {
        "clientToken": TOKEN,
        "name": "Web server base",
        "description": "Web",
        "semanticVersion": "1.0.0",
        "platform": "Linux",
        "tags": {"team": "web"},
    }
    assert submission["import_image_payload"] == {
        "Platform": "Linux",
        "Description": "Web",
        "DiskContainers": [
            {
                "Format": "VMDK",
                "UserBucket": {"S3Bucket": BUCKET, "S3Key": f"{PREFIX}web/disk1.vmdk"},
            }
        ],
        "TagSpecifications": [
            {"ResourceType": "import-image-task", "Tags": [{"Key": "team", "Value": "web"}]}
        ],
    }
    assert submission["upload_size"] is None


def test_every_import_image_option_reaches_the_request():
    body = options(
        architecture="arm64",
        bootMode="uefi",
        licenseType="BYOL",
        encrypted=True,
        kmsKeyId="alias/imports",
    )
    form = form_for(body)
    assert form.is_valid(), form.error_map()
    request = form.import_image_request()
    assert {
        k: request[k] for k in ("Architecture", "BootMode", "LicenseType", "Encrypted", "KmsKeyId")
    } == {
        "Architecture": "arm64",
        "BootMode": "uefi",
        "LicenseType": "BYOL",
        "Encrypted": True,
        "KmsKeyId": "alias/imports",
    }


def test_a_vm_import_task_request_is_unchanged_and_has_no_ec2_request():
    form = form_for(valid_payload())
    assert form.is_valid(), form.error_map()
    assert form.submission() == {
        "payload": valid_payload(),
        "source": Source.VM_IMPORT_TASK,
        "import_image_payload": None,
        "upload_size": None,
        "upload_fingerprint": "",
    }


def test_exactly_one_source_both_is_refused():
    with pytest.raises(RequestShapeError) as error:
        form_for(disk_request(vmImportTaskId="import-ami-0123456789abcdef0"))
    assert "exactly one source" in error.value.errors["diskContainer"][0]


def test_exactly_one_source_neither_is_refused():
    errors = errors_for(valid_payload(vmImportTaskId=None))
    assert errors["vmImportTaskId"] == [
        "A source is required: give vmImportTaskId for an existing VM import task, "
        "or diskContainer for a disk file in the team's import bucket."
    ]


def test_options_without_a_disk_are_refused():
    with pytest.raises(RequestShapeError) as error:
        form_for(valid_payload(importImageOptions={"architecture": "x86_64"}))
    assert "need a diskContainer" in error.value.errors["importImageOptions"][0]


@pytest.mark.parametrize(
    "body, member, message",
    [
        ({"diskContainer": "vmdk"}, "diskContainer", "must be a JSON object, not a string."),
        (
            {"diskContainer": {"format": 3}},
            "diskContainer.format",
            "diskContainer.format must be a JSON string, not a number.",
        ),
        ({"diskContainer": {"size": "1"}}, "diskContainer", "size: unknown member"),
        (
            {"diskContainer": {"format": "vmdk", "userBucket": {"s3Key": 1}}},
            "diskContainer.userBucket.s3Key",
            "diskContainer.userBucket.s3Key must be a JSON string, not a number.",
        ),
        (
            {"diskContainer": {"format": "vmdk", "userBucket": "x"}},
            "diskContainer.userBucket",
            "diskContainer.userBucket must be a JSON object, not a string.",
        ),
        (
            {"diskContainer": {"format": "vmdk", "userBucket": True}},
            "diskContainer.userBucket",
            "diskContainer.userBucket must be a JSON object, not a boolean.",
        ),
        (
            {"diskContainer": {"format": "vmdk", "userBucket": {"key": "x"}}},
            "diskContainer.userBucket",
            "userBucket.key: unknown member",
        ),
        (
            {"importImageOptions": {"encrypted": "true"}},
            "importImageOptions.encrypted",
            "importImageOptions.encrypted must be a JSON boolean, not a string.",
        ),
        (
            {"loggingConfiguration": {"logGroupName": 5}},
            "loggingConfiguration.logGroupName",
            "must be a JSON string, not a number.",
        ),
    ],
)
def test_nested_members_of_the_wrong_shape_are_refused(body, member, message):
    with pytest.raises(RequestShapeError) as error:
        form_for(disk_request(**body))
    assert message in " ".join(error.value.errors[member])


@pytest.mark.parametrize("disk_format", forms.DISK_FORMATS)
def test_every_disk_format_ec2_reads_is_accepted(disk_format):
    body = disk_request(
        diskContainer={
            "format": disk_format,
            "userBucket": {"s3Bucket": BUCKET, "s3Key": PREFIX + "d"},
        }
    )
    form = form_for(body)
    assert form.is_valid(), form.error_map()
    assert form.import_image_request()["DiskContainers"][0]["Format"] == disk_format.upper()


@pytest.mark.parametrize(
    "body, member, message",
    [
        (
            {
                "diskContainer": {
                    "format": "qcow2",
                    "userBucket": {"s3Bucket": BUCKET, "s3Key": PREFIX + "d"},
                }
            },
            "diskContainer.format",
            "Disk format must be one of ova, vmdk, vhd, vhdx, raw; qcow2 is not.",
        ),
        (
            {"diskContainer": {"userBucket": {"s3Bucket": BUCKET, "s3Key": PREFIX + "d"}}},
            "diskContainer.format",
            "Disk format is required for a disk file.",
        ),
        (
            {"diskContainer": {"userBucket": {"s3Bucket": BUCKET, "s3Key": PREFIX + "web.VMDK"}}},
            "diskContainer.format",
            "Disk format is required for a disk file. The file's name suggests vmdk.",
        ),
        (
            {
                "diskContainer": {
                    "format": "vmdk",
                    "userBucket": {"s3Bucket": "other-bucket", "s3Key": PREFIX + "d"},
                }
            },
            "diskContainer.userBucket.s3Bucket",
            "must be in the team's import bucket, platform-imports",
        ),
        (
            {
                "diskContainer": {
                    "format": "vmdk",
                    "userBucket": {"s3Bucket": BUCKET, "s3Key": "elsewhere/d"},
                }
            },
            "diskContainer.userBucket.s3Key",
            "must start with the team's prefix, vm-imports/",
        ),
        (
            {
                "diskContainer": {
                    "format": "vmdk",
                    "userBucket": {"s3Bucket": BUCKET, "s3Key": PREFIX + "web/"},
                }
            },
            "diskContainer.userBucket.s3Key",
            "names a folder",
        ),
        (
            {"diskContainer": {"format": "vmdk", "userBucket": {"s3Bucket": BUCKET}}},
            "diskContainer.userBucket.s3Key",
            "S3 key is required",
        ),
        (
            {
                "diskContainer": {
                    "format": "vmdk",
                    "userBucket": {
                        "s3Bucket": BUCKET,
                        "s3Key": PREFIX + "k" * (1025 - len(PREFIX)),
                    },
                }
            },
            "diskContainer.userBucket.s3Key",
            "at most 1024 characters; this one has 1025",
        ),
        ({"platform": "macOS"}, "platform", "Windows or Linux: EC2 VM import has no macOS"),
    ],
)
def test_a_wrong_disk_says_which_rule_it_broke(body, member, message):
    assert message in " ".join(errors_for(disk_request(**body))[member])


def test_a_key_of_1024_characters_is_accepted():
    key = PREFIX + "k" * (1024 - len(PREFIX))
    body = disk_request(
        diskContainer={"format": "raw", "userBucket": {"s3Bucket": BUCKET, "s3Key": key}}
    )
    assert form_for(body).is_valid()


def test_a_team_without_a_bucket_cannot_import_a_disk():
    errors = errors_for(disk_request(), bucket="", prefix="")
    assert "no import bucket" in errors["diskContainer"][0]


@pytest.mark.parametrize("platform", ["Windows", "Linux"])
def test_windows_and_linux_disks_are_accepted(platform):
    assert form_for(disk_request(platform=platform)).is_valid()


@pytest.mark.parametrize(
    "values, member, message",
    [
        (
            {"architecture": "amd64"},
            "architecture",
            "must be one of i386, x86_64, arm64; amd64 is not",
        ),
        (
            {"bootMode": "bios"},
            "bootMode",
            "must be one of legacy-bios, uefi, uefi-preferred; bios",
        ),
        ({"licenseType": "Free"}, "licenseType", "must be one of AWS, BYOL; Free is not"),
        ({"usageOperation": "RunInstance:0002"}, "usageOperation", "looks like RunInstances"),
        ({"usageOperation": "RunInstances:00022"}, "usageOperation", "looks like RunInstances"),
        (
            {"licenseType": "AWS", "usageOperation": "RunInstances:0002"},
            "usageOperation",
            "a license type or a usage operation, not both",
        ),
        ({"kmsKeyId": "alias/imports"}, "kmsKeyId", "needs encryption switched on"),
        ({"encrypted": True, "kmsKeyId": "my key"}, "kmsKeyId", "A KMS key is a key ID"),
    ],
)
def test_a_wrong_import_image_option_says_which_rule_it_broke(values, member, message):
    errors = errors_for(options(**values))
    assert message in " ".join(errors[f"importImageOptions.{member}"])


@pytest.mark.parametrize(
    "values",
    [
        {"architecture": "i386"},
        {"architecture": "x86_64"},
        {"bootMode": "legacy-bios"},
        {"bootMode": "uefi-preferred"},
        {"licenseType": "AWS"},
        {"usageOperation": "RunInstances"},
        {"usageOperation": "RunInstances:0800"},
        {"encrypted": True},
        {"encrypted": False},
        {"encrypted": True, "kmsKeyId": "1234abcd-12ab-34cd-56ef-1234567890ab"},
        {"encrypted": True, "kmsKeyId": "mrk-1234abcd12ab34cd56ef1234567890ab"},
        {"encrypted": True, "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab"},
    ],
)
def test_valid_import_image_options_are_accepted(values):
    form = form_for(options(**values))
    assert form.is_valid(), form.error_map()


def test_the_option_enums_are_ec2s_own():
    ec2 = botocore.session.get_session().get_service_model("ec2")
    boot_mode = ec2.operation_model("ImportImage").input_shape.members["BootMode"]
    assert tuple(boot_mode.enum) == forms.BOOT_MODES
    # EC2's architectures, less the Mac ones: VM import has no macOS.
    architectures = ec2.shape_for("ArchitectureValues").enum
    assert [a for a in architectures if not a.endswith("_mac")] == list(forms.ARCHITECTURES)


def test_the_form_offers_every_source():
    assert [value for value, _ in forms.SOURCES] == Source.values


# -- loggingConfiguration (ImportVmImage) -----------------------------------------


def test_a_log_group_reaches_the_import_vm_image_request():
    form = form_for(valid_payload(loggingConfiguration={"logGroupName": "/aws/imagebuilder/web"}))
    assert form.is_valid(), form.error_map()
    assert form.payload()["loggingConfiguration"] == {"logGroupName": "/aws/imagebuilder/web"}


@pytest.mark.parametrize(
    "name, valid",
    [
        ("/aws/imagebuilder/a", True),
        ("/aws/imagebuilder/" + "a" * (512 - 18), True),  # 512 characters
        ("/aws/imagebuilder/" + "a" * (513 - 18), False),  # 513
        ("/aws/imagebuilder/web_1.2-x/y", True),
        ("/aws/imagebuilder/", False),
        ("/aws/other/web", False),
        ("/aws/imagebuilder/web server", False),
    ],
)
def test_the_log_group_rules_at_both_edges(name, valid):
    form = form_for(valid_payload(loggingConfiguration={"logGroupName": name}))
    assert form.is_valid() is valid, form.error_map()


@pytest.mark.parametrize(
    "name, message",
    [
        ("/aws/imagebuilder/web server", "only letters, digits and - _ / ."),
        ("/aws/other/web", "inside /aws/imagebuilder/"),
        ("/aws/imagebuilder/" + "a" * 495, "at most 512 characters"),
    ],
)
def test_a_wrong_log_group_says_which_rule_it_broke(name, message):
    errors = errors_for(valid_payload(loggingConfiguration={"logGroupName": name}))
    assert message in errors["loggingConfiguration.logGroupName"][0]


# -- an upload: the portal chooses the key ------------------------------------------


def upload_form(**values):
    data = {
        "clientToken": TOKEN,
        "name": "Web",
        "semanticVersion": "1.0.0",
        "platform": "Linux",
        "source": "upload",
        "format": "ova",
        "fileName": "C:\\VMs\\My Web Server (final).ova",
        "fileSize": str(85 * 1024**3),
        "fileFingerprint": "0" * 64,
        **values,
    }
    return NewImportForm(
        forms.tag_formset_data([]) | data, import_bucket=BUCKET, import_prefix=PREFIX
    )


def test_an_upload_goes_to_a_key_the_portal_makes_under_the_prefix():
    form = upload_form()
    assert form.is_valid(), form.error_map()
    submission = form.submission()
    assert submission["source"] == Source.UPLOAD
    assert submission["upload_size"] == 85 * 1024**3
    assert submission["upload_fingerprint"] == "0" * 64
    assert submission["import_image_payload"]["DiskContainers"][0]["UserBucket"] == {
        "S3Bucket": BUCKET,
        "S3Key": f"{PREFIX}{TOKEN}/My-Web-Server-final-.ova",
    }


@pytest.mark.parametrize(
    "size, valid",
    [("1", True), ("0", False), (str(5 * 1024**4), True), (str(5 * 1024**4 + 1), False)],
)
def test_the_file_size_at_both_edges(size, valid):
    assert upload_form(fileSize=size).is_valid() is valid


@pytest.mark.parametrize(
    "values, member, message",
    [
        ({"fileSize": "0"}, "fileSize", "The file is empty"),
        ({"fileSize": str(5 * 1024**4 + 1)}, "fileSize", "at most 5 TiB"),
        ({"fileSize": ""}, "fileSize", "File size is required"),
        ({"fileName": ""}, "fileName", "File name is required"),
        ({"fileFingerprint": "ABC"}, "fileFingerprint", "64 lowercase hexadecimal characters"),
        ({"s3Key": "vm-imports/mine.ova"}, "diskContainer.userBucket.s3Key", "The portal chooses"),
        ({"source": "ftp"}, "source", "Source must be one of upload, s3_object, vm_import_task"),
    ],
)
def test_a_wrong_upload_says_which_rule_it_broke(values, member, message):
    form = upload_form(**values)
    assert not form.is_valid()
    assert message in " ".join(form.error_map()[member])


@pytest.mark.parametrize(
    "name, safe",
    [
        ("disk.vmdk", "disk.vmdk"),
        ("../../etc/passwd", "passwd"),
        ("C:\\\\Users\\\\me\\\\disk.vhd", "disk.vhd"),
        ("..", "disk"),
        ("é t é.raw", "e-t-e.raw"),
    ],
)
def test_file_names_become_safe_key_parts(name, safe):
    assert forms.safe_file_name(name) == safe


@pytest.mark.parametrize("token", ["../../other-team", "a/b", "..", "ünï", "a b"])
def test_an_uploads_folder_never_leaves_the_prefix_whatever_the_token(token):
    # The key's folder comes from the client token: one with "/" or ".."
    # would otherwise name a key in another folder (a teammate's file).
    form = upload_form(clientToken=token)
    assert form.is_valid(), form.errors
    key = form.disk_key()
    folder, name = key.removeprefix(IMPORT_PREFIX).split("/")
    assert folder.startswith("~") and str(uuid.UUID(folder[1:])) == folder[1:]
    assert name == "My-Web-Server-final-.ova"
    # Its UUID sent as a token of its own (a plain name) names another key.
    as_a_token = upload_form(clientToken=folder[1:])
    assert as_a_token.is_valid() and as_a_token.disk_key() != key
    again = upload_form(clientToken=token)
    assert again.is_valid() and again.disk_key() == key  # the same request, the same key


def test_an_uploads_folder_is_a_plain_client_token_itself():
    form = upload_form()
    assert form.is_valid(), form.errors
    assert form.disk_key() == f"{IMPORT_PREFIX}{TOKEN}/My-Web-Server-final-.ova"


@pytest.mark.parametrize(
    "body",
    [
        disk_request(
            description="Web tier",
            osVersion="22.04",
            tags={"team": "web", "cost-centre": "42"},
            loggingConfiguration={"logGroupName": "/aws/imagebuilder/imports"},
            importImageOptions={
                "architecture": "arm64",
                "bootMode": "uefi",
                "licenseType": "BYOL",
                "encrypted": True,
                "kmsKeyId": "alias/imports",
            },
        ),
        valid_payload(tags={"team": "web"}),  # an existing VM import task
    ],
    ids=["disk file", "vm import task"],
)
def test_an_imports_settings_fill_the_form_in_as_it_was(body):
    # "Start again with these settings": the same requests, with a new client token.
    first = form_for(body)
    assert first.is_valid(), first.error_map()
    submission = first.submission()
    recorded = dict(submission["payload"])
    if submission["source"] != Source.VM_IMPORT_TASK:
        # Once EC2 has started the disk's VM import task, the recorded request
        # names it; the new import's own ImportImage makes another.
        recorded["vmImportTaskId"] = "import-ami-0123456789abcdef0"
    initial, rows = NewImportForm.settings_of(
        recorded, submission["source"], submission["import_image_payload"] or {}
    )
    assert "clientToken" not in initial
    again = NewImportForm(
        {
            **{name: "on" if value is True else value for name, value in initial.items()},
            "clientToken": "8e0c2d4f-5a6b-4c7d-9e8f-0a1b2c3d4e5f",
            **forms.tag_formset_data(rows),
        },
        import_bucket=BUCKET,
        import_prefix=PREFIX,
    )
    assert again.is_valid(), again.error_map()
    assert again.payload() == {
        **submission["payload"],
        "clientToken": "8e0c2d4f-5a6b-4c7d-9e8f-0a1b2c3d4e5f",
    }
    assert again.import_image_request() == submission["import_image_payload"]
