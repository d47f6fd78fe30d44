# The history's search finds a disk file by its S3 key (so by its name):
# each disk import made before migration 0017 gets its key from the
# ImportImage request it keeps, and on PostgreSQL the column gets the same
# pg_trgm GIN index on UPPER(column::text) as migrations 0005 and 0014 gave
# the other searched columns, so that the search's alternatives stay one
# BitmapOr of index scans. Reads go on meanwhile; writes to the imports wait
# (README, "Several machines": 9.4 s at 100,000 disk imports).

from django.db import migrations
from django.db.models import Value
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce

INDEX = "imports_search_disk_key_trgm"


def fill_disk_keys(apps, schema_editor):
    ImageImport = apps.get_model("imports", "ImageImport")
    key = KT("import_image_payload__DiskContainers__0__UserBucket__S3Key")
    ImageImport.objects.exclude(source="vm_import_task").update(
        disk_key=Coalesce(key, Value(""))
    )


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} "
        "ON imports_imageimport USING gin (UPPER(disk_key::text) gin_trgm_ops)"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("imports", "0017_disk_key")]

    operations = [
        migrations.RunPython(fill_disk_keys, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
