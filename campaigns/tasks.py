"""Background work for campaigns: big contact imports, starting scheduled campaigns when
due, and deleting wizard uploads that were never imported."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from campaigns.csvio import CsvFileError
from campaigns.importer import ImportBusy, ImportRefused, import_job_run, stored_opener
from campaigns.models import ImportJob
from campaigns.services import campaigns_start_due
from campaigns.wizard import wizard_uploads_prune

logger = logging.getLogger(__name__)

# A million rows take about a minute; the default task limits (2 minutes) are too tight.
IMPORT_SOFT_TIME_LIMIT = 1800
IMPORT_TIME_LIMIT = 1900


@shared_task(
    bind=True,
    queue="default",
    ignore_result=True,
    max_retries=None,
    soft_time_limit=IMPORT_SOFT_TIME_LIMIT,
    time_limit=IMPORT_TIME_LIMIT,
)
def import_contacts_task(self, job_id: int) -> None:
    """Runs a queued import; a retry after a crash resumes after its last committed batch."""
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        return
    try:
        import_job_run(job=job, opener=stored_opener(job))
    except ImportBusy as busy:
        # Another import into the same campaign (or this one, redelivered) runs now.
        raise self.retry(countdown=10) from busy
    except (CsvFileError, ImportRefused) as error:
        logger.info("import %s failed: %s", job_id, error)


@shared_task(queue="periodic", ignore_result=True, expires=60)
def start_due_campaigns() -> int:
    """Starts scheduled campaigns whose time has come (see ``campaigns_start_due``)."""
    return campaigns_start_due()


@shared_task(queue="periodic", ignore_result=True, expires=3600)
def prune_wizard_uploads() -> int:
    """Hourly: deletes wizard uploads never imported after WIZARD_UPLOAD_TTL_HOURS."""
    return wizard_uploads_prune(older_than_seconds=settings.WIZARD_UPLOAD_TTL_HOURS * 3600)
