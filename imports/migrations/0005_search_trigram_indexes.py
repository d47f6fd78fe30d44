# The history's search is `UPPER(column::text) LIKE UPPER('%q%')` on three
# columns; a leading wildcard defeats a B-tree, so on PostgreSQL each column
# gets a pg_trgm GIN index on that very expression. SQLite keeps the plain
# scan (the embedded default holds a team's history, not a company's).

from django.db import migrations

SEARCHED = ("name", "image_arn", "vm_import_task_id")


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
    dependencies = [("imports", "0004_api_token_prefix")]

    operations = [migrations.RunPython(create_indexes, drop_indexes, elidable=False)]
