# The portal's record of one import is an "image import" (it ends as an
# Image Builder image), so that it is never confused with EC2's "VM import
# task"; its stored ImportVmImage request is its "payload", never to be read
# as Django's `request`. Renames only: no data moves.

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("imports", "0002_verbose_names"),
    ]

    operations = [
        migrations.RenameModel("VmImport", "ImageImport"),
        migrations.RenameField("imageimport", "request", "payload"),
        migrations.RenameField("auditevent", "vm_import", "image_import"),
        migrations.AlterModelOptions(
            name="imageimport",
            options={"ordering": ["-created_at", "-id"], "verbose_name": "image import"},
        ),
        migrations.AlterField(
            model_name="imageimport",
            name="submitted_by",
            field=models.ForeignKey(
                on_delete=models.deletion.PROTECT,
                related_name="image_imports",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
