"""The AWS clients a process shares among its threads, against the emulator over real HTTP."""

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor

from imports import aws

from .factories import valid_payload


def test_the_worker_s_threads_share_a_client_without_dropping_connections(
    emulator, caplog, settings
):
    # The worker runs Celery's threads pool: its calls in hand at once share
    # one client, whose connection pool must hold them all (botocore's
    # default of 10 drops the rest with urllib3's "Connection pool is full").
    emulator.latency(0.3, operation="ImportVmImage")
    threads = 16 + settings.IMPORT_REFRESH_CONCURRENCY

    def send(number):
        request = valid_payload(clientToken=str(uuid.uuid4()), name=f"thread-{number}")
        return aws.import_vm_image(request, target=aws.Target()).image_arn

    with (
        caplog.at_level(logging.WARNING, logger="urllib3"),
        ThreadPoolExecutor(max_workers=threads) as pool,
    ):
        arns = list(pool.map(send, range(threads)))

    assert len(set(arns)) == threads
    assert "Connection pool is full" not in caplog.text
