"""Celery tasks: thin, take a primary key, re-read the row, safe to run twice.

The AWS call happens outside any transaction; each result is written by a
short transition of its own (see ImageImport). Because every attempt sends the
stored payload with its stored clientToken, a retry, a redelivered message
or a sweep can never create a second image: AWS answers with the original.
"""

import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import aws, metrics, signals
from .cache import ForgivingCache
from .models import ImageImport, Status

logger = logging.getLogger(__name__)


class PublishPause:
    """After a publish failed, this process leaves the broker alone for a while.

    A broker that hangs (its process stopped, its TCP still accepted) costs
    a publish its timeouts; without the pause, every submit in a row would
    pay them, as the cache's failures are paid once (imports.cache).
    """

    until = 0.0  # time.monotonic() before which nothing is published

    @classmethod
    def active(cls):
        return time.monotonic() < cls.until

    @classmethod
    def start(cls):
        cls.until = time.monotonic() + settings.BROKER_PUBLISH_PAUSE

    @classmethod
    def end(cls):
        cls.until = 0.0


def send_to_worker(pk):
    """Queue the AWS call for an import already recorded; True if it was queued."""
    # The import is already recorded: if the broker is down, the person still
    # gets their answer, and the sweeper sends the import once it is back.
    if PublishPause.active():
        logger.warning("The broker failed lately; import %s is left for the sweeper to send", pk)
        return False
    try:
        submit_import.delay(pk)
    except Exception:
        PublishPause.start()
        logger.exception("Could not queue import %s; the sweeper will send it later", pk)
        return False
    return True


def retry_delay(attempt):
    """Capped exponential backoff with jitter (half to all of the cap), in seconds."""
    # An import whose answer was lost retries without a limit: the exponent
    # stops growing long after the cap is reached.
    doubling = 2 ** min(attempt, 30)
    ceiling = min(settings.IMPORT_RETRY_MAX_DELAY, settings.IMPORT_RETRY_BASE_DELAY * doubling)
    return random.uniform(ceiling / 2, ceiling)


# The worker runs Celery's threads pool, where time limits do not apply: a
# call stuck past every AWS timeout (a DNS lookup that hangs) can outlive its
# lease, and the sweeper then sends the import again with the same client
# token, which AWS answers with the original. What keeps the stale attempt
# from undoing the new one is the attempt number its answers carry
# (ImageImport.answer_of). Under a prefork pool, the hard time limit also
# ends such a call before its lease runs out.
@shared_task(acks_late=True, ignore_result=True, time_limit=settings.IMPORT_LEASE_SECONDS - 5)
def submit_import(pk):
    # The claim reads the import's row: its target (region, role) is copied
    # on it. The team and the person are read only should it fail, for the
    # notifications, rather than joined (two wide rows) into every task.
    image_import = ImageImport.claim_queued(pk)
    if image_import is None:
        return  # gone, or another worker already has it
    attempt = image_import.attempts  # this claim's; a failed move reads the row again
    try:
        if image_import.is_disk_import and not image_import.vm_import_task_id:
            # The same ClientToken on every attempt: EC2 answers a retry with
            # the task it already started, never a second conversion.
            task_id = aws.import_image(
                image_import.import_image_payload, target=image_import.target
            )
            if not image_import.mark_vm_import_started(task_id) and (
                image_import.status != Status.SUBMITTING
            ):
                return  # cancelled or taken back meanwhile
        # Image Builder accepts a task still converting, and follows it.
        accepted = aws.import_vm_image(image_import.payload, target=image_import.target)
    except aws.AwsError as error:
        handle_submit_error(image_import, error, attempt)
        return
    image_import.mark_importing(
        image_arn=accepted.image_arn,
        request_id=accepted.request_id,
        client_token=accepted.client_token,
    )
    logger.info(
        "Import %s accepted by AWS: %s (AWS request %s)",
        image_import.pk,
        accepted.image_arn,
        accepted.request_id,
        extra={"import_id": image_import.pk, "aws_request_id": accepted.request_id},
    )


# How a retry's message ends while AWS may hold the image.
KEEPS_ASKING = (
    "so the portal keeps asking with the same client token until AWS answers: that way no "
    "second image is made."
)
# Appended to the message of an attempt whose answer was lost; the audit's
# retry events carry it, which is how a later attempt knows that AWS may hold
# the image, and how many answers were lost (lost_answers).
ASKING_AGAIN = f"It may have received the request, {KEEPS_ASKING}"
# Appended instead to an attempt that did not reach AWS after one whose
# answer was lost: the person still reads why the portal keeps asking, and
# lost_answers does not count this attempt, which never reached AWS.
ASKED_BEFORE = f"An earlier attempt may have reached it, {KEEPS_ASKING}"


def handle_submit_error(image_import, error, attempt):
    """Record attempt number `attempt`'s failure, unless a newer attempt holds the import."""
    if not error.retryable:
        image_import.mark_failed(code=error.code, message=error.message, attempt=attempt)
        return
    if error.outcome_unknown:
        # Never final: this request may have made the image (see gives_up).
        retry_later(image_import, error.code, f"{error.message} {ASKING_AGAIN}", attempt)
        return
    # Read only where it decides something: an attempt that did not reach
    # AWS, or one at the limit.
    lost = 0
    if not error.answered or attempt >= settings.IMPORT_MAX_ATTEMPTS:
        lost = lost_answers(image_import)
    if gives_up(error, attempt, lost):
        image_import.mark_failed(
            code=error.code,
            message=f"{error.message} (gave up after {attempt} attempts; "
            "AWS may still be recovering, submit again with a new import later)",
            attempt=attempt,
        )
        return
    message = error.message
    if lost and not error.answered:
        message = f"{message} {ASKED_BEFORE}"
    retry_later(image_import, error.code, message, attempt)


def gives_up(error, attempt, lost):
    """Whether this retryable failure, after `lost` attempts whose answer was lost, ends the import.

    Never while the outcome is unknown: a request sent whose answer was lost
    may have made the image, and failing the import would have the person
    submit again, with a new token, and make a second one. Such attempts do
    not count toward IMPORT_MAX_ATTEMPTS; the others (AWS's own error
    answers, connections that never reached AWS) do, as ever, except that
    once AWS may hold the image only an answer from AWS ends the import.
    """
    if error.outcome_unknown or attempt < settings.IMPORT_MAX_ATTEMPTS:
        return False
    if lost and not error.answered:
        return False
    return attempt - lost >= settings.IMPORT_MAX_ATTEMPTS


def lost_answers(image_import):
    """How many earlier attempts' answers were lost (their retry events say so).

    Any at all, and AWS may hold the image.
    """
    return image_import.events.filter(detail__contains=ASKING_AGAIN).count()


def retry_later(image_import, code, message, attempt):
    delay = retry_delay(attempt)
    if image_import.mark_retrying(code=code, message=message, delay=delay, attempt=attempt):
        metrics.RETRIES.labels(code).inc()
        logger.info(
            "Import %s: %s, attempt %s; retrying in %.0fs",
            image_import.pk,
            code,
            image_import.attempts,
            delay,
            extra={"import_id": image_import.pk},
        )
        submit_import.apply_async((image_import.pk,), countdown=delay)


@shared_task(ignore_result=True)
def requeue_stuck_imports():
    """Send again what a lost message or a killed worker left behind.

    A row still `queued` long after its last change has lost its message; a
    row still `submitting` past its lease lost its worker mid-call. Both are
    safe to send again because the clientToken makes the call idempotent.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.IMPORT_STUCK_AFTER)
    # Never attempted: its first message was lost (a broker down or restarted
    # as it was published), since nothing else keeps a new import waiting.
    unsent_cutoff = now - timedelta(seconds=settings.IMPORT_UNSENT_AFTER)
    stuck = ImageImport.objects.filter(
        Q(status=Status.QUEUED, updated_at__lt=cutoff)
        | Q(status=Status.QUEUED, attempts=0, updated_at__lt=unsent_cutoff)
        | Q(status=Status.SUBMITTING, lease_expires_at__lt=now)
        | Q(status=Status.SUBMITTING, lease_expires_at__isnull=True, updated_at__lt=cutoff)
    )
    requeued = 0
    for image_import in stuck.iterator():
        stuck_status = image_import.status
        never_sent = image_import.status == Status.QUEUED and image_import.attempts == 0
        stuck_before = unsent_cutoff if never_sent else cutoff
        if image_import.requeue(stuck_before=stuck_before, now=now):
            submit_import.delay(image_import.pk)
            metrics.SWEEPER_RESENDS.labels(stuck_status).inc()
            logger.warning(
                "Import %s was stuck in %s; sent again",
                image_import.pk,
                stuck_status,
                extra={"import_id": image_import.pk},
            )
            requeued += 1
    return requeued


@shared_task(ignore_result=True)
def expire_abandoned_uploads():
    """Give up uploads left unfinished (a closed tab, a lost laptop) and abort them in S3.

    The bucket's lifecycle rule (Check setup) is the safety net when S3
    cannot be reached now.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.IMPORT_UPLOAD_ABANDONED_AFTER)
    stale = ImageImport.objects.filter(status=Status.UPLOADING, updated_at__lt=cutoff)
    expired = 0
    for image_import in stale.iterator():
        if not image_import.mark_upload_abandoned(stale_before=cutoff):
            continue  # completed or cancelled meanwhile
        expired += 1
        if image_import.upload_id:
            abort_upload_quietly(image_import, image_import.upload_id)
    return expired


def abort_upload_quietly(image_import, upload_id):
    """Abort an import's multipart upload; a refusal is logged, not raised.

    The import ends whatever S3 says: the bucket's lifecycle rule (Check
    setup) removes an incomplete upload that could not be aborted now.
    """
    bucket = image_import.user_bucket
    try:
        aws.abort_multipart_upload(
            bucket["S3Bucket"], bucket["S3Key"], upload_id, target=image_import.target
        )
    except aws.AwsError as error:
        logger.warning(
            "Could not abort upload %s of import %s: %s", upload_id, image_import.pk, error
        )


REFRESH_PAUSE_KEY = "imports:refresh-paused"
REFRESH_LOCK_KEY = "imports:refresh-running"


@shared_task(ignore_result=True)
def refresh_imports():
    """Follow every due `importing` import: its EC2 VM import task and its image.

    One DescribeImportImageTasks call per 100 task ids and one GetImage per
    import, the GetImage calls side by side. Throttling pauses the whole
    refresher (longer each time) rather than failing anything; an error on
    one import is logged and never stops the others.
    """
    if cache.get(REFRESH_PAUSE_KEY, {}).get("until", 0) > time.time():
        return {"paused": True}
    # One cycle at a time: beat fires again while a long cycle still runs on
    # another worker, and a second one would only double the AWS calls.
    if not cache.add(REFRESH_LOCK_KEY, True, timeout=settings.IMPORT_REFRESH_LOCK_SECONDS):
        return {"busy": True}
    started = time.monotonic()
    try:
        due = list(ImageImport.objects.due_for_refresh())
        throttled = False
        for target, image_imports in group_by_target(due).items():
            throttled |= refresh_target(target, image_imports)
    finally:
        cache.delete(REFRESH_LOCK_KEY)
        metrics.REFRESH_CYCLE_SECONDS.observe(time.monotonic() - started)
    metrics.REFRESHED_IMPORTS.inc(len(due))
    if throttled:
        pause_refreshing()
    else:
        cache.delete(REFRESH_PAUSE_KEY)
    return {"refreshed": len(due), "throttled": throttled}


def group_by_target(image_imports):
    targets = {}
    for image_import in image_imports:
        targets.setdefault(image_import.target, []).append(image_import)
    return targets


def refresh_target(target, image_imports):
    """Refresh the imports of one account and region; True if AWS throttled any call."""
    throttled = False
    # A task EC2 has reported completed has nothing more to say (and parsing
    # its answer is most of a DescribeImportImageTasks call's cost): only the
    # others are asked about, while Image Builder goes on building.
    converting = [i.vm_import_task_id for i in image_imports if not i.task_completed]
    try:
        tasks = aws.describe_import_image_tasks(converting, target=target)
    except aws.AwsError as error:
        # The task's progress only adds detail; the image decides the status.
        throttled = aws.is_throttling(error)
        logger.warning("DescribeImportImageTasks failed in %s: %s", target.region, error)
        tasks = {}
    news = []
    missing = MissingInAws.load()
    with ThreadPoolExecutor(max_workers=settings.IMPORT_REFRESH_CONCURRENCY) as pool:
        images = pool.map(lambda image_import: fetch_image(image_import, target), image_imports)
        for image_import, image in zip(image_imports, images, strict=True):
            task_id = image_import.vm_import_task_id
            task = tasks.get(task_id)
            task_unknown = isinstance(task, aws.AwsError)  # EC2 does not know it
            gone = missing.ending_for(image_import, image)  # AWS no longer knows the image
            if isinstance(image, aws.AwsError):
                throttled |= aws.is_throttling(image)
                logger.warning("GetImage failed for import %s: %s", image_import.pk, image)
                image = None
            try:
                news += observed(image_import, None if task_unknown else task, image, gone)
            except Exception:
                logger.exception("Could not record the refresh of import %s", image_import.pk)
    missing.save()
    # Most answers change nothing and write nothing; the changed progress is
    # written in batches, and the whole cycle stamped in one UPDATE.
    try:
        ImageImport.record_progress(news)
    except Exception:
        logger.exception("Could not record the progress of %s imports", len(news))
    stamp_refreshed([i.pk for i in image_imports])
    return throttled


# The cycle's stamp is one UPDATE per this many imports: PostgreSQL takes at
# most 65,535 values bound to one statement, and the portal binds them on the
# server (DATABASE_PREPARED_STATEMENTS).
STAMP_BATCH = 10_000


def stamp_refreshed(pks):
    now = timezone.now()
    for start in range(0, len(pks), STAMP_BATCH):
        ImageImport.objects.filter(pk__in=pks[start : start + STAMP_BATCH]).update(refreshed_at=now)


def observed(image_import, task, image, ending=None):
    """An import's end is written at once (its own audited transition, its signal);
    its progress is returned as news for the batch (none when nothing is new).

    `ending` is an end the refresher found otherwise (the image gone from AWS);
    else the image's answer decides.
    """
    ending = ending or image_import.ending_for(image)
    if ending is None:
        news = image_import.progress_news(task=task, image=image)
        return [(image_import, *news)] if news else []
    # The task's news of the same answer is written first: the import would
    # otherwise end keeping the message of a cycle before ("preparing ami"),
    # where EC2 now says "completed", or why the task failed (which the
    # failure's hint reads). The image's state is the end's own to write.
    image_import.record_task_progress(task)
    ending()
    return []


IMAGE_NOT_FOUND = "ResourceNotFoundException"  # GetImage's answer for an image it does not have
MISSING_KEY = "imports:missing-in-aws"


class MissingInAws:
    """Imports whose image Image Builder says it does not know, cycle after cycle.

    An image deleted in AWS, or forgotten by a restarted emulator, is
    answered ResourceNotFoundException on every GetImage, and the import
    would stay `importing` for ever. One such answer is not enough to end it
    (a new image can be briefly unknown while AWS settles): it takes
    IMPORT_MISSING_CYCLES cycles in a row over IMPORT_MISSING_AFTER seconds.
    Any answer that finds the image starts the count again.

    Kept in the cache, as one entry {import id: (first seen, cycles)} read
    and written once per cycle (the refresher's lock lets one cycle run at a
    time); a cache lost or down only starts the counts again, which delays
    the end and never hastens it. An import that ended otherwise meanwhile
    (cancelled) is forgotten after a day, or twice IMPORT_MISSING_AFTER if
    longer (a count must outlive the wait it counts).
    """

    def __init__(self, seen):
        self.seen = seen
        self.changed = False

    @staticmethod
    def kept_seconds():
        return max(86400, 2 * settings.IMPORT_MISSING_AFTER)

    @classmethod
    def load(cls):
        seen = ForgivingCache().get(MISSING_KEY) or {}
        oldest = time.time() - cls.kept_seconds()
        missing = cls({pk: entry for pk, entry in seen.items() if entry[0] > oldest})
        missing.changed = len(missing.seen) != len(seen)
        return missing

    def save(self):
        if self.changed:
            ForgivingCache().set(MISSING_KEY, self.seen, self.kept_seconds())

    def ending_for(self, image_import, image):
        """Count this cycle's answer for the import; the end it calls for, or None.

        The end is left to the caller (observed), which first writes what EC2
        said of the VM import task in the same cycle.
        """
        if not image_not_found(image):
            if isinstance(image, aws.ImageState) and self.seen.pop(image_import.pk, None):
                self.changed = True  # found again
            return None
        first, cycles = self.seen.get(image_import.pk, (time.time(), 0))
        self.seen[image_import.pk] = (first, cycles + 1)
        self.changed = True
        if (
            cycles + 1 < settings.IMPORT_MISSING_CYCLES
            or time.time() - first < settings.IMPORT_MISSING_AFTER
        ):
            return None
        del self.seen[image_import.pk]
        return partial(
            image_import.mark_failed,
            code="ImageNotFound",
            message=missing_message(cycles + 1, time.time() - first),
        )


def image_not_found(image):
    """Whether Image Builder answered that it has no such image.

    Only that answer counts: EC2 no longer knowing the VM import task tells
    nothing while Image Builder builds from it, and Image Builder not
    answering (throttled, unreachable) tells nothing either way.
    """
    return isinstance(image, aws.AwsError) and image.code == IMAGE_NOT_FOUND


def missing_message(cycles, seconds):
    """The plain message of an import whose image Image Builder no longer has."""
    minutes = max(1, round(seconds / 60))
    return (
        f"Image Builder no longer has this import's image: it answered that the image does "
        f"not exist on {cycles} checks over {minutes} minute{'s' if minutes > 1 else ''}. "
        "The portal stopped following the import."
    )


def fetch_image(image_import, target):
    try:
        return aws.get_image(image_import.image_arn, target=target)
    except aws.AwsError as error:
        return error


def pause_refreshing():
    """Back off after throttling: 2, 4, 8 … up to IMPORT_REFRESH_MAX_PAUSE seconds."""
    previous = cache.get(REFRESH_PAUSE_KEY, {}).get("seconds", 1)
    seconds = min(previous * 2, settings.IMPORT_REFRESH_MAX_PAUSE)
    cache.set(REFRESH_PAUSE_KEY, {"until": time.time() + seconds, "seconds": seconds}, 3600)
    logger.warning("AWS is throttling the refresher; pausing it for %ss", seconds)


@shared_task(bind=True, ignore_result=True, max_retries=5)
def tag_ami_and_snapshots(self, pk):
    """Put a disk import's tags on the AMI and snapshots EC2 made (see queue_tagging)."""
    image_import = ImageImport.objects.filter(pk=pk).first()
    if image_import is None:
        return
    try:
        resources = aws.tag_imported_image(
            image_import.vm_import_task_id, image_import.tags, target=image_import.target
        )
    except aws.AwsError as error:
        if error.retryable and self.request.retries < self.max_retries:
            raise self.retry(countdown=retry_delay(self.request.retries)) from error
        image_import.note_tagging_failed(error)
        logger.warning(
            "Import %s: could not tag its AMI and snapshots: %s",
            pk,
            error,
            extra={"import_id": pk},
        )
        return
    if resources:
        image_import.note_tagged(resources)


@shared_task(ignore_result=True)
def requeue_lost_tagging():
    """Send again, once, the tagging of a disk import that left no trace.

    See ImageImportQuerySet.tagging_lost. Once: CreateTags sets rather than
    adds, so a second call is harmless, and the audit shows a resend with no
    outcome after it. A broker still down sends nothing and records nothing,
    for the next sweep to try again.
    """
    resent = 0
    for image_import in ImageImport.objects.tagging_lost().iterator():
        try:
            tag_ami_and_snapshots.delay(image_import.pk)
        except Exception:
            logger.exception("Could not queue the tagging of import %s again", image_import.pk)
            break
        image_import.note_tagging_resent()
        logger.warning(
            "Import %s: its tagging left no trace; sent again",
            image_import.pk,
            extra={"import_id": image_import.pk},
        )
        resent += 1
    return resent


def queue_tagging(sender, image_import, event, **kwargs):
    """On `import_ended`: a disk import that became available gets its tags on the AMI.

    Only for a disk file, whose VM import task the portal made with the same
    tags; an existing task's AMI belongs to whoever made it. Queued once the
    transition commits; should the message be lost (a broker outage),
    requeue_lost_tagging sends it again later, and the import is available
    either way.
    """
    if event != signals.AVAILABLE or not image_import.is_disk_import or not image_import.tags:
        return

    def send():
        try:
            tag_ami_and_snapshots.delay(image_import.pk)
        except Exception:
            logger.exception("Could not queue the tagging of import %s", image_import.pk)

    transaction.on_commit(send)
