"""New import's bucket picker: the disk files already in the team's import bucket.

Against moto's S3 over real HTTP (the s3_emulator fixture).
"""

import pytest

from imports import aws

from .factories import IMPORT_BUCKET, IMPORT_PREFIX, set_up_disk_imports

URL = "/imports/new/bucket-files"


@pytest.fixture
def bucket(s3_emulator, team):
    set_up_disk_imports(team)
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=IMPORT_BUCKET)
    return s3


def put(s3, key, size=1024):
    s3.put_object(Bucket=IMPORT_BUCKET, Key=key, Body=b"\0" * size)


def test_the_files_under_the_teams_prefix_are_listed_newest_first(user_client, bucket):
    put(bucket, IMPORT_PREFIX + "web/old.vmdk", size=2048)
    put(bucket, IMPORT_PREFIX + "web/new.VHDX")
    put(bucket, IMPORT_PREFIX + "folder/")  # a console "folder": not a file
    put(bucket, IMPORT_PREFIX + "empty.raw", size=0)
    put(bucket, "elsewhere/other-team.ova")

    page = user_client.get(URL).content.decode()

    assert page.index("web/new.VHDX") < page.index("web/old.vmdk")
    assert 'data-format="vhdx"' in page and 'data-format="vmdk"' in page
    assert "2\xa0KiB" in page  # the size, in the units of the API's messages
    for absent in ("folder/", "empty.raw", "other-team.ova"):
        assert absent not in page


def test_a_file_without_a_known_extension_is_listed_without_a_format(user_client, bucket):
    put(bucket, IMPORT_PREFIX + "disk-export")
    page = user_client.get(URL).content.decode()
    assert "disk-export" in page and 'data-format=""' in page


def test_an_empty_prefix_says_how_to_put_a_file_there(user_client, bucket):
    page = user_client.get(URL).content.decode()
    assert f"No disk files under <code>s3://{IMPORT_BUCKET}/{IMPORT_PREFIX}</code>" in page


def test_a_bucket_that_cannot_be_listed_is_said_in_plain_words(user_client, s3_emulator, team):
    set_up_disk_imports(team)  # the bucket was never made
    response = user_client.get(URL)
    assert response.status_code == 200
    assert "could not be listed" in response.content.decode()


def test_a_team_without_a_bucket_is_told_who_sets_it(user_client, team):
    assert "a team admin sets it on the Team page" in user_client.get(URL).content.decode()


def test_the_new_import_page_points_the_key_field_at_the_picker(user_client, team):
    page = user_client.get("/imports/new").content.decode()
    assert 'list="bucket-files"' in page and 'hx-get="/imports/new/bucket-files"' in page


def test_the_extension_names_the_format():
    names = {"a.OVA": "ova", "b.vmdk": "vmdk", "c.vhd": "vhd", "d.vhdx": "vhdx", "e.img": "raw"}
    for name, disk_format in names.items():
        file = aws.BucketFile(key=f"prefix/{name}", size=1, last_modified=None)
        assert file.format == disk_format
    assert aws.BucketFile(key="prefix/f.qcow2", size=1, last_modified=None).format == ""
