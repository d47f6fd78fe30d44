"""The words an import is described by: its statuses and its sources.

A leaf both the models and the forms read, so that the history's filter,
the API's and the New import form's sources name the very values stored.
"""

from django.db import models


class Status(models.TextChoices):
    UPLOADING = "uploading", "Uploading"
    QUEUED = "queued", "Queued"
    SUBMITTING = "submitting", "Submitting"
    IMPORTING = "importing", "Importing"
    AVAILABLE = "available", "Available"
    FAILED = "failed", "Failed"


# A cancelled import ends `failed` with this error code (see the README's
# design notes): the five statuses stay as designed, and every page, the
# history's filter among them, names it apart.
CANCELLED = "Cancelled"


class Source(models.TextChoices):
    """Where the disk comes from; the first two go through EC2 ImportImage first."""

    UPLOAD = "upload", "A disk file uploaded from the browser"
    S3_OBJECT = "s3_object", "A disk file in the team's import bucket"
    VM_IMPORT_TASK = "vm_import_task", "An existing EC2 VM import task"


def status_label(status):
    """importing as every page says a status: Importing."""
    return Status(status).label if status in Status.values else status


def image_state_words(state):
    """Image Builder's BUILDING as people say it, "building"; the pages capitalise it."""
    return state.replace("_", " ").lower() if state else ""
