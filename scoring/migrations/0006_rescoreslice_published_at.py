from django.db import migrations, models
from django.utils import timezone


def mark_unfinished_sent(apps, schema_editor):
    # Jobs cut before this sent every slice at once.
    RescoreSlice = apps.get_model("scoring", "RescoreSlice")
    RescoreSlice.objects.exclude(status="done").update(published_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0005_rescore_slices"),
    ]

    operations = [
        migrations.AddField(
            model_name="rescoreslice",
            name="published_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(mark_unfinished_sent, migrations.RunPython.noop),
    ]
