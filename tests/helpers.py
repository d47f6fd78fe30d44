"""Waiting for the worker, racing threads, reading a Content-Security-Policy and the settings,
and a VM import task the emulator deletes."""

import runpy
import threading
import time
from pathlib import Path

import boto3
from botocore.config import Config
from django.db import connection

from config import settings as settings_module
from fakeaws import s3


def wait_for_status(image_import, *statuses, timeout=30):
    """The import once the worker has moved it to one of `statuses`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        image_import.refresh_from_db()
        if image_import.status in statuses:
            return image_import
        time.sleep(0.1)
    raise AssertionError(f"import {image_import.pk} stayed {image_import.status}, not {statuses}")


def at_once(action, times=4):
    """Run `action` in `times` threads released together; returns their results.

    Each thread closes its own database connection, as a web or worker
    process would at the end of its work.
    """
    barrier = threading.Barrier(times)
    results = []

    def run():
        barrier.wait()
        try:
            results.append(action())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == times, "a thread failed; see its traceback above"
    return results


class Statements:
    """What a block said to the database: its statements, and its transactions.

    Tests run inside a transaction, so each `transaction.atomic()` of the code
    shows as a SAVEPOINT (its BEGIN in production) and is counted apart.

        with Statements() as said:
            ...
        assert (said.statements, said.transactions) == (5, 2), said
    """

    def __enter__(self):
        from django.test.utils import CaptureQueriesContext

        self.context = CaptureQueriesContext(connection)
        self.context.__enter__()
        return self

    def __exit__(self, *exc):
        self.context.__exit__(*exc)
        sql = [query["sql"] for query in self.context.captured_queries]
        self.transactions = sum(line.startswith("SAVEPOINT") for line in sql)
        self.sql = [line for line in sql if "SAVEPOINT" not in line]
        self.statements = len(self.sql)

    def __repr__(self):
        return "\n".join(line[:160] for line in self.sql)


def csp_directives(policy):
    """A Content-Security-Policy's sources by directive; django-csp keeps no fixed order."""
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {name: sources for name, *sources in parts}


def read_settings():
    """config/settings.py as it reads the environment now.

    Not the settings this test run loaded: pytest-django swaps the mailer, for one.
    """
    return runpy.run_path(str(Path(settings_module.__file__)))


EMULATOR_SESSION = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test")


def emulator_client(service, url):
    """A boto3 client of the emulator at `url`, asking once, outside the portal's code."""
    return EMULATOR_SESSION.client(
        service,
        region_name="us-east-1",
        endpoint_url=url,
        config=Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def deleted_over_its_disk(emulator):
    """A VM import task EC2 deleted: ImportImage of a RAW disk.raw that is all zeros."""
    emulator_client("s3", emulator.s3_endpoint).put_object(
        Bucket=s3.UPLOAD_BUCKET, Key="uploads/disk.raw", Body=bytes(4096)
    )
    return (
        emulator_client("ec2", emulator.url)
        .import_image(
            Description="Zeros",
            DiskContainers=[
                {
                    "Format": "RAW",
                    "UserBucket": {"S3Bucket": s3.UPLOAD_BUCKET, "S3Key": "uploads/disk.raw"},
                }
            ],
        )
        .get("ImportTaskId")
    )
