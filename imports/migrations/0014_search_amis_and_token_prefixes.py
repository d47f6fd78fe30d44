# The history's search also finds an AMI ID (in the `amis` JSON) and the
# first characters of a client token (imports.forms.search_condition):
# `UPPER(amis::text) LIKE UPPER('%"ami-0123%')` and
# `UPPER(client_token::text) LIKE UPPER('0f3a%')`. On PostgreSQL each gets a
# pg_trgm GIN index on that very expression, as migration 0005 gave the
# other three searched columns: the search's alternatives are answered
# together (a BitmapOr), so one alternative without an index would make the
# whole search a scan of the table. SQLite keeps the plain scan.

from django.db import migrations

SEARCHED = ("amis", "client_token")


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in SEARCHED:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS imports_search_{column}_trgm "
            f"ON imports_imageimport USING gin (UPPER({column}::text) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in SEARCHED:
        schema_editor.execute(f"DROP INDEX IF EXISTS imports_search_{column}_trgm")


class Migration(migrations.Migration):
    dependencies = [("imports", "0013_upload_completed_at")]

    operations = [migrations.RunPython(create_indexes, drop_indexes, elidable=False)]
