# The disk file's S3 key gets a column of its own, for the history's search
# (migration 0018 fills it and indexes it). Alone in its migration, so that
# ALTER TABLE's lock on the imports table, which stops even reads, is let go
# at once: a column with a constant default is only a catalogue change on
# PostgreSQL 11 and later. Unsized on PostgreSQL, as the other long strings
# (imports.models.UnsizedCharField says why).

from django.db import migrations

import imports.models


class Migration(migrations.Migration):
    dependencies = [("imports", "0016_upload_fingerprint")]

    operations = [
        migrations.AddField(
            model_name="imageimport",
            name="disk_key",
            field=imports.models.UnsizedCharField(
                blank=True, default="", max_length=1024, verbose_name="disk file's S3 key"
            ),
        ),
    ]
