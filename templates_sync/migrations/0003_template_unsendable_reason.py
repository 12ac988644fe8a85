# The shapes the product cannot send are marked at sync; GIF and PRODUCT headers.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("templates_sync", "0002_template_quality_and_category_changes"),
    ]

    operations = [
        migrations.AddField(
            model_name="template",
            name="unsendable_reason",
            field=models.CharField(blank=True, max_length=300),
        ),
        migrations.AlterField(
            model_name="template",
            name="header_format",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "None"),
                    ("TEXT", "Text"),
                    ("IMAGE", "Image"),
                    ("VIDEO", "Video"),
                    ("DOCUMENT", "Document"),
                    ("LOCATION", "Location"),
                    ("GIF", "Gif"),
                    ("PRODUCT", "Product"),
                ],
                default="",
                max_length=16,
            ),
        ),
    ]
