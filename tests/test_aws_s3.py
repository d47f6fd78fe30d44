"""aws.py's S3 multipart calls and the part size, checked with botocore's Stubber."""

from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.stub import Stubber

from imports import aws

BUCKET = "platform-imports"
KEY = "vm-imports/0b6f2c1e/disk.vmdk"


@pytest.fixture
def s3_stub(aws_credentials):
    with Stubber(aws.client("s3")) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    "size, expected_part",
    [
        (1, 5 * aws.MiB),
        (12 * aws.MiB, 5 * aws.MiB),
        (160 * aws.MiB, 5 * aws.MiB),  # 32 parts of S3's smallest
        (160 * aws.MiB + 1, 6 * aws.MiB),  # then 1/32 of the file, in whole MiB
        (256 * aws.MiB, 8 * aws.MiB),
        (512 * aws.MiB, 16 * aws.MiB),  # up to 16 MiB
        (85 * aws.GiB, 16 * aws.MiB),
        (16 * aws.MiB * aws.S3_MAX_PARTS, 16 * aws.MiB),  # 156.25 GiB still fits 16 MiB parts
        (16 * aws.MiB * aws.S3_MAX_PARTS + 1, 17 * aws.MiB),  # then 10,000 parts at most
        (5 * aws.TiB, 525 * aws.MiB),
    ],
)
def test_the_part_size_keeps_every_file_within_10000_parts_of_at_least_5_mib(size, expected_part):
    assert aws.part_size(size) == expected_part
    assert aws.part_count(size) <= aws.S3_MAX_PARTS
    assert aws.S3_MIN_PART <= aws.part_size(size) <= aws.S3_MAX_PART


def test_a_one_byte_file_is_one_part():
    assert aws.part_count(1) == 1


def test_an_85_gib_image_needs_fewer_than_10000_parts():
    assert aws.part_count(85 * aws.GiB) == 5440


@pytest.mark.parametrize("size", [160 * aws.MiB, 256 * aws.MiB, 511 * aws.MiB, 1 * aws.GiB])
def test_a_mid_sized_file_keeps_at_least_32_parts_and_a_large_one_16_mib_parts(size):
    assert aws.part_count(size) >= 32 or aws.part_size(size) == 16 * aws.MiB


def test_a_file_over_5_tib_is_refused():
    with pytest.raises(ValueError, match="at most 5 TiB"):
        aws.part_size(5 * aws.TiB + 1)


def test_it_starts_a_multipart_upload_for_the_portals_key(s3_stub):
    s3_stub.add_response(
        "create_multipart_upload",
        {"Bucket": BUCKET, "Key": KEY, "UploadId": "up-1"},
        expected_params={"Bucket": BUCKET, "Key": KEY, "ContentType": "application/octet-stream"},
    )
    upload_id = aws.create_multipart_upload(BUCKET, KEY, target=aws.Target())
    assert upload_id == "up-1"


def test_a_presigned_url_names_one_key_one_upload_and_one_part(aws_credentials):
    url = aws.presign_parts(BUCKET, KEY, "up-1", [7], target=aws.Target())[7]
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    # Path-style: the test environment overrides the S3 endpoint, as the emulator will.
    assert parts.path == f"/{BUCKET}/{KEY}"
    assert query["uploadId"] == ["up-1"]
    assert query["partNumber"] == ["7"]
    assert query["X-Amz-Expires"] == ["3600"]
    assert "X-Amz-Signature" in query


def test_it_lists_the_parts_already_uploaded_across_pages(s3_stub):
    common = {"Bucket": BUCKET, "Key": KEY, "UploadId": "up-1", "MaxParts": 1000}
    s3_stub.add_response(
        "list_parts",
        {
            "Parts": [{"PartNumber": 1, "Size": 5 * aws.MiB, "ETag": '"a"'}],
            "IsTruncated": True,
            "NextPartNumberMarker": 1,
        },
        expected_params=common,
    )
    s3_stub.add_response(
        "list_parts",
        {"Parts": [{"PartNumber": 2, "Size": 3, "ETag": '"b"'}], "IsTruncated": False},
        expected_params={**common, "PartNumberMarker": 1},
    )
    assert aws.list_parts(BUCKET, KEY, "up-1", target=aws.Target()) == [
        {"PartNumber": 1, "Size": 5 * aws.MiB, "ETag": '"a"'},
        {"PartNumber": 2, "Size": 3, "ETag": '"b"'},
    ]


def test_it_completes_the_upload_with_the_parts_given(s3_stub):
    s3_stub.add_response(
        "complete_multipart_upload",
        {"Location": f"http://s3/{BUCKET}/{KEY}", "Bucket": BUCKET, "Key": KEY},
        expected_params={
            "Bucket": BUCKET,
            "Key": KEY,
            "UploadId": "up-1",
            "MultipartUpload": {"Parts": [{"PartNumber": 1, "ETag": '"a"'}]},
        },
    )
    location = aws.complete_multipart_upload(
        BUCKET, KEY, "up-1", [{"PartNumber": 1, "ETag": '"a"', "Size": 9}], target=aws.Target()
    )
    assert location == f"http://s3/{BUCKET}/{KEY}"


def test_it_aborts_an_upload(s3_stub):
    s3_stub.add_response(
        "abort_multipart_upload",
        {},
        expected_params={"Bucket": BUCKET, "Key": KEY, "UploadId": "up-1"},
    )
    aws.abort_multipart_upload(BUCKET, KEY, "up-1", target=aws.Target())


def test_an_s3_refusal_becomes_an_aws_error(s3_stub):
    s3_stub.add_client_error(
        "abort_multipart_upload", "NoSuchUpload", "The upload does not exist", 404
    )
    with pytest.raises(aws.AwsError) as error:
        aws.abort_multipart_upload(BUCKET, KEY, "up-1", target=aws.Target())
    assert error.value.code == "NoSuchUpload"
    assert not error.value.retryable
