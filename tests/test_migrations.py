"""Data migrations: what they fill in the rows written before them."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE_DISK_KEY = [("imports", "0017_disk_key")]  # the column, still empty
DISK_KEY = [("imports", "0018_disk_key_search")]


def migrate(targets=None):
    """The database migrated to `targets` (None: the latest); the models as they stood there."""
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    executor.loader.build_graph()  # what was applied, read again
    return executor.loader.project_state(targets).apps


@pytest.fixture
def before_disk_key():
    yield migrate(BEFORE_DISK_KEY)
    migrate()  # the latest again, whatever the test did


def test_0018_gives_each_earlier_disk_import_its_key_and_a_task_import_none(before_disk_key):
    apps = before_disk_key
    team = apps.get_model("imports", "Team").objects.create(name="platform")
    user = apps.get_model("auth", "User").objects.create(username="alice")
    ImageImport = apps.get_model("imports", "ImageImport")

    def recorded(name, source, import_image_payload):
        ImageImport.objects.create(
            team=team,
            submitted_by=user,
            payload={"name": name},
            client_token=name,
            name=name,
            platform="Linux",
            source=source,
            import_image_payload=import_image_payload,
        )

    container = {"Format": "OVA", "UserBucket": {"S3Bucket": "b", "S3Key": "in/web.ova"}}
    recorded("uploaded", "upload", {"DiskContainers": [container]})
    recorded("from a task", "vm_import_task", {})

    ImageImport = migrate(DISK_KEY).get_model("imports", "ImageImport")
    keys = dict(ImageImport.objects.values_list("name", "disk_key"))
    assert keys == {"uploaded": "in/web.ova", "from a task": ""}
