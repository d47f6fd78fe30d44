"""What EC2's VM import sees of a disk in S3: its format, by the file's own header.

Only the bytes that tell a format apart are read, with ranged GETs: the first
KiB (VMDK's sparse magic or descriptor, VHDX's signature, a dynamic VHD's
footer copy, a tar header, the MBR and the GPT header) and the last 512 bytes
(every VHD's footer).

    VMDK  "KDMV" at 0 (sparse, stream-optimised) or "# Disk DescriptorFile" text
    VHD   "conectix" in the last 512 bytes (fixed), and at 0 too (dynamic)
    VHDX  "vhdxfile" at 0
    OVA   a POSIX tar ("ustar" at 257) whose first member is the .ovf
    RAW   an MBR's 0x55AA at 510, or a GPT header ("EFI PART") at 512
"""

from dataclasses import dataclass

from botocore.exceptions import ClientError

from .s3 import read_range

HEAD_BYTES = 1024
FOOTER_BYTES = 512
FORMATS = ("OVA", "VHD", "VHDX", "VMDK", "RAW")

# EC2's StatusMessage for a task deleted over its disk. These three are
# what EC2 answers in reports of failed imports (EC2 documents no list):
UNSUPPORTED_FORMAT = "ClientError: Disk validation failed [Unsupported specified file format]"
UNSUPPORTED_OVA = "ClientError: Disk validation failed [Unsupported OVA format]"
NO_PARTITIONS = "ClientError: No valid partitions. Not a valid volume."
# A guess: the answer for an object that is not there (reports show it for a
# wrong bucket or key; a role without s3:ListBucket gets "[We do not have
# access to the given resource. Reason 403 Forbidden]" instead).
NO_SUCH_OBJECT = "ClientError: Disk validation failed [Invalid S3 source location]"


@dataclass(frozen=True)
class Disk:
    size: int | None  # bytes; None when there is no such object
    detected: str | None  # one of FORMATS, or None
    failure: str | None  # EC2's StatusMessage when the import must fail


def inspect_disk(s3, bucket, key, declared):
    """The disk at s3://bucket/key as an import of `declared` format finds it."""
    try:
        size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
        head = read_range(s3, bucket, key, 0, HEAD_BYTES - 1) if size else b""
        footer = head[-FOOTER_BYTES:] if size <= HEAD_BYTES else b""
        if size > HEAD_BYTES:
            footer = read_range(s3, bucket, key, size - FOOTER_BYTES, size - 1)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NoSuchBucket"):
            return Disk(None, None, NO_SUCH_OBJECT)
        raise
    detected = sniff(head, footer)
    return Disk(size, detected, failure_of(declared.upper(), detected, head))


def sniff(head, footer):
    """The format the header says, or None."""
    if head[:4] == b"KDMV" or head.startswith(b"# Disk DescriptorFile"):
        return "VMDK"
    if head[:8] == b"vhdxfile":
        return "VHDX"
    if head[:8] == b"conectix" or footer[:8] == b"conectix":
        return "VHD"
    if is_tar(head):
        return "OVA" if first_member(head).lower().endswith(".ovf") else None
    if head[510:512] == b"\x55\xaa" or head[512:520] == b"EFI PART":
        return "RAW"
    return None


def failure_of(declared, detected, head):
    if declared == detected:
        return None
    if declared == "OVA":
        return UNSUPPORTED_OVA
    if declared == "RAW":
        # Raw has no header to disagree with: EC2 reads the bytes as a volume
        # and finds no partition table in them.
        return NO_PARTITIONS
    # A guess: a recognised disk of another format than the one declared gets
    # the same answer as an unrecognised one.
    return UNSUPPORTED_FORMAT


def is_tar(head):
    return len(head) >= 512 and head[257:262] == b"ustar"


def first_member(head):
    return head[:100].split(b"\0", 1)[0].decode("utf-8", errors="replace")
