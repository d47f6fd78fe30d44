"""Random bytes uploaded through the page end Failed with EC2's real message and a hint.

The emulator reads the uploaded object from moto's S3 (the s3_emulator
fixture), as EC2 reads the bucket, so the failure comes from the file's
bytes, not from a fault asked for.
"""

import os
import re

import pytest
from playwright.sync_api import expect

from fakeaws import disks, s3
from imports import tasks
from imports.models import ImageImport, Status

from .browser import (
    CHROMIUM_MISSING,
    CHROMIUM_MISSING_REASON,
    MIB,
    fixture_browser,  # noqa: F401 (a fixture: pytest finds it here)
    fixture_page,  # noqa: F401 (a fixture: pytest finds it here)
    sign_in,
)
from .factories import IMPORT_BUCKET, set_up_disk_imports
from .helpers import wait_for_status

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING_REASON, allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROLE = "vmimport-platform"


@pytest.fixture
def bucket(s3_emulator, live_server, team):
    """The team's bucket in moto, with the CORS rule for this live server, and its role."""
    set_up_disk_imports(team, role=ROLE)
    s3.set_up(s3_emulator.s3_endpoint, bucket=IMPORT_BUCKET, role=ROLE, origins=[live_server.url])


def test_random_bytes_end_failed_with_ec2s_message_and_a_hint(page, user, bucket, worker, tmp_path):
    junk = tmp_path / "export.raw"
    junk.write_bytes(os.urandom(6 * MIB))
    sign_in(page, user)
    page.goto("/imports/new")
    page.get_by_label("Name").fill("Web server base")
    page.get_by_label("Semantic version").fill("1.0.0")
    page.get_by_label("Platform").select_option("Linux")
    page.get_by_label("A disk file from this computer").check()
    page.get_by_label("Disk image file").set_input_files(str(junk))
    expect(page.locator("#disk-file-detected")).to_contain_text("could not be read")
    page.get_by_label("Disk format").select_option("raw")  # what the person believes it is

    page.get_by_role("button", name="Start import").click()

    expect(page).to_have_url(re.compile(r"/imports/\d+$"), timeout=30_000)
    image_import = wait_for_status(
        ImageImport.objects.get(), Status.IMPORTING, Status.FAILED, timeout=30
    )
    for _ in range(20):  # what beat does, until the image ends
        if image_import.status == Status.FAILED:
            break
        tasks.refresh_imports()
        image_import.refresh_from_db()
        page.wait_for_timeout(200)
    status = page.locator("#status")
    expect(status.locator(".status")).to_have_text("Failed", timeout=15_000)
    # Raw bytes with no partition table: what EC2 says of such a disk.
    expect(status).to_contain_text(disks.NO_PARTITIONS)
    expect(status).to_contain_text("EC2 found no partition it can boot from")
