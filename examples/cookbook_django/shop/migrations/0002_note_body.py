from __future__ import annotations

from typing import ClassVar

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies: ClassVar[list[tuple[str, str]]] = [("shop", "0001_initial")]
    operations: ClassVar[list[migrations.operations.base.Operation]] = [
        migrations.AddField(model_name="note", name="body", field=models.TextField(default="")),
    ]
