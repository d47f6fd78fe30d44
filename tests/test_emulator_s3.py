"""The emulator's EC2 ImportImage reading real disks from S3 (moto's server).

The disks are made here with qemu-img (Debian's qemu-utils), uploaded to
moto, and imported through boto3 against the emulator, over real HTTP.
"""

import io
import os
import random
import shutil
import struct
import subprocess
import tarfile
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from fakeaws import disks, s3
from fakeaws.testing import running_emulator

from .factories import valid_payload as import_request

DISK_BYTES = 16 * 1024 * 1024
BUCKET = s3.UPLOAD_BUCKET
SESSION = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test")
DIRECT_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def client(service, url):
    return SESSION.client(
        service,
        region_name="us-east-1",
        endpoint_url=url,
        config=Config(
            retries={"total_max_attempts": 1},
            s3={"addressing_style": "path"},
            read_timeout=30,
            connect_timeout=5,
        ),
    )


# -- the disks ----------------------------------------------------------------


def raw_disk(path, *, gpt=False):
    """16 MiB with a partition table: an MBR (one Linux partition) or a protective MBR and GPT."""
    with open(path, "wb") as disk:
        disk.truncate(DISK_BYTES)
        first, count = (1, DISK_BYTES // 512 - 1) if gpt else (2048, DISK_BYTES // 512 - 2048)
        entry = struct.pack(
            "<B3sB3sII", 0, b"\0\x02\0", 0xEE if gpt else 0x83, b"\xff\xff\xff", first, count
        )
        disk.seek(446)
        disk.write(entry)
        disk.seek(510)
        disk.write(b"\x55\xaa")
        if gpt:
            disk.seek(512)
            disk.write(b"EFI PART" + struct.pack("<II", 0x10000, 92))
    return path


@pytest.fixture(scope="session")
def disk_files(tmp_path_factory):
    """{name: path} of real disks: qemu-img's vmdk, vpc (VHD) and vhdx, raw, an OVA, junk."""
    if shutil.which("qemu-img") is None:
        reason = "qemu-img is missing: install Debian's qemu-utils (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("disks")
    files = {
        "mbr.raw": raw_disk(folder / "mbr.raw"),
        "gpt.raw": raw_disk(folder / "gpt.raw", gpt=True),
    }
    for name, options in (
        ("disk.vmdk", ["-O", "vmdk"]),
        ("dynamic.vhd", ["-O", "vpc"]),
        ("fixed.vhd", ["-O", "vpc", "-o", "subformat=fixed"]),
        ("disk.vhdx", ["-O", "vhdx"]),
    ):
        files[name] = folder / name
        subprocess.run(
            ["qemu-img", "convert", "-f", "raw", *options, files["mbr.raw"], files[name]],
            check=True,
        )
    files["appliance.ova"] = ova(folder / "appliance.ova", files["disk.vmdk"], ovf_first=True)
    files["vmdk-first.ova"] = ova(folder / "vmdk-first.ova", files["disk.vmdk"], ovf_first=False)
    files["empty.vmdk"] = folder / "empty.vmdk"
    files["empty.vmdk"].write_bytes(b"")
    junk = random.Random(9).randbytes(1024 * 1024)
    assert disks.sniff(junk[:1024], junk[-512:]) is None  # no magic by chance
    files["random.img"] = folder / "random.img"
    files["random.img"].write_bytes(junk)
    return files


def ova(path, vmdk, *, ovf_first):
    """A tar of an .ovf descriptor and its .vmdk, as VMware and VirtualBox export one."""
    descriptor = (
        b'<?xml version="1.0"?>\n<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1">'
        b'<References><File ovf:href="disk.vmdk" ovf:id="file1"/></References></Envelope>\n'
    )
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as archive:
        info = tarfile.TarInfo("appliance.ovf")
        info.size = len(descriptor)
        members = [(info, io.BytesIO(descriptor)), (archive.gettarinfo(vmdk, "disk.vmdk"), None)]
        for member, content in members if ovf_first else reversed(members):
            if content is None:
                with open(vmdk, "rb") as handle:
                    archive.addfile(member, handle)
            else:
                archive.addfile(member, content)
    return path


def test_qemu_img_made_what_each_format_says_at_its_start(disk_files):
    heads = {name: path.read_bytes()[:8] for name, path in disk_files.items()}
    assert heads["disk.vmdk"][:4] == b"KDMV"
    assert heads["dynamic.vhd"] == b"conectix"
    assert disk_files["fixed.vhd"].read_bytes()[-512:][:8] == b"conectix"
    assert heads["disk.vhdx"] == b"vhdxfile"
    assert tarfile.is_tarfile(disk_files["appliance.ova"])


# -- the emulator reading them -------------------------------------------------


@pytest.fixture
def uploaded(s3_set_up, disk_files):
    """Upload one of the disks to the emulator's bucket; returns its key."""
    bucket = client("s3", s3_set_up.s3_endpoint)

    def upload(name):
        bucket.upload_file(str(disk_files[name]), BUCKET, f"uploads/{name}")
        return f"uploads/{name}"

    return upload


def import_image(emulator, key, disk_format, **request):
    return client("ec2", emulator.url).import_image(
        Description="from the tests",
        DiskContainers=[{"Format": disk_format, "UserBucket": {"S3Bucket": BUCKET, "S3Key": key}}],
        **request,
    )


def describe(emulator, task_id):
    ec2 = client("ec2", emulator.url)
    [task] = ec2.describe_import_image_tasks(ImportTaskIds=[task_id])["ImportImageTasks"]
    return task


@pytest.mark.parametrize(
    ("name", "disk_format"),
    [
        ("disk.vmdk", "VMDK"),
        ("dynamic.vhd", "VHD"),
        ("fixed.vhd", "VHD"),
        ("disk.vhdx", "VHDX"),
        ("mbr.raw", "RAW"),
        ("gpt.raw", "RAW"),
        ("appliance.ova", "OVA"),
        ("disk.vmdk", "vmdk"),  # EC2 takes the format in either case
    ],
)
def test_each_format_is_recognised_and_imported(s3_set_up, uploaded, disk_files, name, disk_format):
    task = describe(s3_set_up, import_image(s3_set_up, uploaded(name), disk_format)["ImportTaskId"])

    assert task["Status"] == "completed"
    assert task["ImageId"].startswith("ami-")
    [snapshot] = task["SnapshotDetails"]
    assert snapshot["DiskImageSize"] == disk_files[name].stat().st_size
    assert snapshot["UserBucket"] == {"S3Bucket": BUCKET, "S3Key": f"uploads/{name}"}


@pytest.mark.parametrize(
    ("name", "disk_format", "message"),
    [
        ("empty.vmdk", "VMDK", disks.UNSUPPORTED_FORMAT),
        ("empty.vmdk", "RAW", disks.NO_PARTITIONS),
        ("random.img", "VMDK", disks.UNSUPPORTED_FORMAT),
        ("random.img", "VHDX", disks.UNSUPPORTED_FORMAT),
        ("random.img", "RAW", disks.NO_PARTITIONS),
        ("random.img", "OVA", disks.UNSUPPORTED_OVA),
        # The header disagrees with the declared format.
        ("disk.vmdk", "VHD", disks.UNSUPPORTED_FORMAT),
        ("disk.vhdx", "VMDK", disks.UNSUPPORTED_FORMAT),
        ("dynamic.vhd", "RAW", disks.NO_PARTITIONS),
        ("disk.vmdk", "OVA", disks.UNSUPPORTED_OVA),
        ("vmdk-first.ova", "OVA", disks.UNSUPPORTED_OVA),
    ],
)
def test_a_bad_disk_ends_the_task_deleted_with_ec2s_message(
    s3_set_up, uploaded, name, disk_format, message
):
    task = describe(s3_set_up, import_image(s3_set_up, uploaded(name), disk_format)["ImportTaskId"])

    assert task["Status"] == "deleted"
    assert task["StatusMessage"] == message
    assert "ImageId" not in task


@pytest.mark.parametrize(
    ("name", "status"), [("disk.vmdk", "completed"), ("random.img", "deleted")]
)
def test_a_disk_named_by_an_s3_url_is_read_too(s3_set_up, uploaded, name, status):
    url = f"s3://{BUCKET}/{uploaded(name)}"
    task_id = client("ec2", s3_set_up.url).import_image(
        DiskContainers=[{"Format": "VMDK", "Url": url}]
    )["ImportTaskId"]

    assert describe(s3_set_up, task_id)["Status"] == status


def test_random_bytes_fail_with_the_real_message(s3_set_up, uploaded):
    task_id = import_image(s3_set_up, uploaded("random.img"), "VHD")["ImportTaskId"]

    assert describe(s3_set_up, task_id)["StatusMessage"] == (
        "ClientError: Disk validation failed [Unsupported specified file format]"
    )


def test_a_missing_object_fails_the_task(s3_set_up):
    task_id = import_image(s3_set_up, "uploads/never-uploaded.vmdk", "VMDK")["ImportTaskId"]

    task = describe(s3_set_up, task_id)
    assert task["Status"] == "deleted"
    assert task["StatusMessage"] == disks.NO_SUCH_OBJECT


def test_a_missing_bucket_fails_the_task(s3_emulator):
    task_id = import_image(s3_emulator, "uploads/disk.vmdk", "VMDK")["ImportTaskId"]

    assert describe(s3_emulator, task_id)["StatusMessage"] == disks.NO_SUCH_OBJECT


def test_only_the_headers_are_read_never_the_whole_disk(s3_set_up, uploaded, monkeypatch):
    key = uploaded("mbr.raw")
    ranges = []
    real_read_range = s3.read_range

    def read_range(s3_client, bucket, key, start, end):
        ranges.append((start, end))
        return real_read_range(s3_client, bucket, key, start, end)

    monkeypatch.setattr(disks, "read_range", read_range)  # the emulator runs in this process
    import_image(s3_set_up, key, "RAW")

    assert sum(end - start + 1 for start, end in ranges) <= 2048
    assert ranges == [(0, 1023), (DISK_BYTES - 512, DISK_BYTES - 1)]


def test_import_image_is_idempotent_by_client_token(s3_set_up, uploaded):
    key = uploaded("disk.vmdk")
    first = import_image(s3_set_up, key, "VMDK", ClientToken="upload-42")
    again = import_image(s3_set_up, key, "VMDK", ClientToken="upload-42")

    assert again["ImportTaskId"] == first["ImportTaskId"]
    assert s3_set_up.calls()["importTasksCreated"] == 1
    with pytest.raises(ClientError) as excinfo:
        import_image(s3_set_up, key, "VHD", ClientToken="upload-42")
    assert excinfo.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    assert s3_set_up.calls()["importTasksCreated"] == 1


# -- the walk, step by step ----------------------------------------------------


@pytest.fixture
def slow_s3_emulator(s3_emulator, moto_url):
    """Ten seconds a step, reading the same moto: advance() walks the tasks."""
    s3.set_up(moto_url)
    with running_emulator(step_seconds=10, s3_endpoint=moto_url) as emulator:
        yield emulator


def walk(emulator, task_id, steps):
    seen = []
    for _ in range(steps):
        task = describe(emulator, task_id)
        seen.append((task["Status"], task.get("Progress"), task.get("StatusMessage")))
        emulator.advance(10)
    return seen


def test_a_good_disk_walks_to_completed_with_an_ami_that_import_vm_image_takes(
    slow_s3_emulator, disk_files
):
    client("s3", slow_s3_emulator.s3_endpoint).upload_file(
        str(disk_files["disk.vhdx"]), BUCKET, "uploads/win.vhdx"
    )
    task_id = import_image(slow_s3_emulator, "uploads/win.vhdx", "VHDX", ClientToken="t-1")[
        "ImportTaskId"
    ]

    assert walk(slow_s3_emulator, task_id, 6) == [
        ("active", "10", "pending"),
        ("active", "30", "validating"),
        ("active", "50", "converting"),
        ("active", "70", "updating"),
        ("active", "90", "preparing ami"),
        ("completed", None, None),
    ]
    ami = describe(slow_s3_emulator, task_id)["ImageId"]
    imagebuilder = client("imagebuilder", slow_s3_emulator.url)
    arn = imagebuilder.import_vm_image(**import_request(vmImportTaskId=task_id))["imageArn"]
    slow_s3_emulator.advance(600)
    image = imagebuilder.get_image(imageBuildVersionArn=arn)["image"]
    assert image["state"]["status"] == "AVAILABLE"
    assert image["outputResources"]["amis"][0]["image"] == ami


def test_a_bad_disk_is_validated_then_deleted_and_its_image_fails(slow_s3_emulator, disk_files):
    client("s3", slow_s3_emulator.s3_endpoint).upload_file(
        str(disk_files["random.img"]), BUCKET, "uploads/junk.vmdk"
    )
    task_id = import_image(slow_s3_emulator, "uploads/junk.vmdk", "VMDK")["ImportTaskId"]
    imagebuilder = client("imagebuilder", slow_s3_emulator.url)
    arn = imagebuilder.import_vm_image(**import_request(vmImportTaskId=task_id))["imageArn"]
    assert imagebuilder.get_image(imageBuildVersionArn=arn)["image"]["state"] == {
        "status": "PENDING"
    }

    assert walk(slow_s3_emulator, task_id, 4) == [
        ("active", "10", "pending"),
        ("active", "30", "validating"),
        ("deleting", None, disks.UNSUPPORTED_FORMAT),
        ("deleted", None, disks.UNSUPPORTED_FORMAT),
    ]
    state = imagebuilder.get_image(imageBuildVersionArn=arn)["image"]["state"]
    assert state["status"] == "FAILED"
    assert task_id in state["reason"]
    assert disks.UNSUPPORTED_FORMAT in state["reason"]


# -- what `make run` sets up in moto -------------------------------------------


def test_set_up_makes_the_bucket_its_rules_and_the_vmimport_role(s3_emulator):
    s3.set_up(s3_emulator.s3_endpoint)
    s3.set_up(s3_emulator.s3_endpoint)  # idempotent: make run does it at every start

    bucket = client("s3", s3_emulator.s3_endpoint)
    assert bucket.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] is None  # us-east-1
    [cors] = bucket.get_bucket_cors(Bucket=BUCKET)["CORSRules"]
    assert set(cors["AllowedOrigins"]) == {"http://127.0.0.1:8000", "http://localhost:8000"}
    assert set(cors["AllowedMethods"]) == {"PUT", "GET", "POST", "HEAD"}
    assert cors["ExposeHeaders"] == ["ETag"]
    [rule] = bucket.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    iam = client("iam", s3_emulator.s3_endpoint)
    role = iam.get_role(RoleName="vmimport")["Role"]
    [statement] = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "vmie.amazonaws.com"}
    policy = iam.get_role_policy(RoleName="vmimport", PolicyName="vmimport")["PolicyDocument"]
    assert f"arn:aws:s3:::{BUCKET}/*" in policy["Statement"][0]["Resource"]
    assert "s3:GetObject" in policy["Statement"][0]["Action"]


def test_without_the_set_up_the_checks_answer_the_errors_the_portal_turns_into_fixes(
    s3_emulator,
):
    bucket = client("s3", s3_emulator.s3_endpoint)
    bucket.create_bucket(Bucket=BUCKET)  # a bucket someone made by hand, nothing else

    def error_code(call, **params):
        with pytest.raises(ClientError) as excinfo:
            call(**params)
        return excinfo.value.response["Error"]["Code"]

    assert error_code(bucket.get_bucket_cors, Bucket=BUCKET) == "NoSuchCORSConfiguration"
    assert (
        error_code(bucket.get_bucket_lifecycle_configuration, Bucket=BUCKET)
        == "NoSuchLifecycleConfiguration"
    )
    assert error_code(bucket.get_bucket_location, Bucket="no-such-bucket") == "NoSuchBucket"
    iam = client("iam", s3_emulator.s3_endpoint)
    assert error_code(iam.get_role, RoleName="vmimport") == "NoSuchEntity"


def test_a_browser_multipart_upload_through_presigned_urls_then_imports(s3_set_up, disk_files):
    bucket = SESSION.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=s3_set_up.s3_endpoint,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    content = disk_files["disk.vhdx"].read_bytes()
    part_size = 5 * 1024 * 1024  # S3's smallest part but the last
    key = "uploads/presigned.vhdx"
    upload_id = bucket.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(content), part_size), start=1):
        url = bucket.generate_presigned_url(
            "upload_part",
            Params={"Bucket": BUCKET, "Key": key, "UploadId": upload_id, "PartNumber": number},
        )
        request = urllib.request.Request(
            url,
            data=content[start : start + part_size],
            headers={"Content-Type": "application/octet-stream"},
            method="PUT",
        )
        with DIRECT_OPENER.open(request, timeout=30) as response:
            parts.append({"PartNumber": number, "ETag": response.headers["ETag"]})
    bucket.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )

    task = describe(s3_set_up, import_image(s3_set_up, key, "VHDX")["ImportTaskId"])
    assert task["Status"] == "completed"
    assert task["SnapshotDetails"][0]["DiskImageSize"] == len(content)
