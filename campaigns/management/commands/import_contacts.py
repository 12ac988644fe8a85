"""manage.py import_contacts CAMPAIGN FILE"""

from __future__ import annotations

import contextlib
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from campaigns.csvio import CsvFileError
from campaigns.importer import ImportBusy, ImportRefused
from campaigns.models import Campaign, ImportJob
from campaigns.selectors import import_answer
from campaigns.services import contacts_import
from config.progress import Progress


class Command(BaseCommand):
    help = (
        "Imports a CSV of contacts into a campaign (id), streamed; shows a progress bar on "
        "a terminal and plain lines otherwise. Exits non-zero when the file is refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", type=int, help="campaign id")
        parser.add_argument("file", type=Path, help="CSV file")
        parser.add_argument("--errors", type=int, default=20, help="problems listed at the end")

    def handle(self, *args, campaign, file, errors, **options):
        found = Campaign.objects.filter(pk=campaign).first()
        if found is None:
            raise CommandError(f"no campaign {campaign}")
        if not file.is_file():
            raise CommandError(f"no file {file}")
        progress = Progress(self.stdout)

        def show(job: ImportJob) -> None:
            progress.show(job.progress, f"{job.data_rows:,} rows, {job.accepted:,} accepted")

        with contextlib.ExitStack() as files:

            def opener():
                return files.enter_context(file.open("rb"))

            try:
                job = contacts_import(
                    campaign=found,
                    user=None,
                    opener=opener,
                    filename=file.name,
                    size=file.stat().st_size,
                    progress=show,
                )
            except (CsvFileError, ImportRefused, ImportBusy) as error:
                raise CommandError(str(error)) from None
        progress.close()
        answer = import_answer(job, errors=errors)
        self.stdout.write(
            f"import {job.pk}: {job.data_rows} rows: {job.accepted} accepted, {job.rejected} "
            f"rejected, {job.duplicates} duplicates, {job.suppressed} suppressed "
            f"(encoding {job.encoding}, {job.delimiter}-separated)"
        )
        for note in job.notes:
            self.stdout.write(f"note: {note}")
        for problem in answer["errors"]:
            self.stdout.write(
                f"row {problem['row']}: {problem['kind']}: {problem['phone']}: {problem['reason']}"
            )
        if answer["errors_truncated"]:
            self.stdout.write(
                f"... {answer['errors_total'] - len(answer['errors'])} more: "
                f"GET /api/campaigns/{found.pk}/import-errors.csv"
            )
