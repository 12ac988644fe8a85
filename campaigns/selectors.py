"""Reads for campaigns: counts and split derived from recipient rows, import answers, exports."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

from django.db.models import Count

from campaigns.models import (
    NOT_DONE_STATES,
    Campaign,
    ImportJob,
    ImportRowError,
    Recipient,
    RecipientStatus,
)

ERRORS_IN_ANSWER = 100
COUNT_KEYS = [*RecipientStatus.values, "total", "replied"]


def campaign_counts(campaign_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Per campaign: contacts by status, ``total`` and ``replied``, exact (from the rows)."""
    ids = list(campaign_ids)
    counts: dict[int, dict[str, int]] = {pk: dict.fromkeys(COUNT_KEYS, 0) for pk in ids}
    rows = (
        Recipient.objects.filter(campaign_id__in=ids)
        .values_list("campaign_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for campaign_id, status, n in rows:
        counts[campaign_id][status] = n
        counts[campaign_id]["total"] += n
    replied = (
        Recipient.objects.filter(campaign_id__in=ids, replied_at__isnull=False)
        .values_list("campaign_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for campaign_id, n in replied:
        counts[campaign_id]["replied"] = n
    return counts


def progress_of(counts: dict[str, int]) -> int:
    """Percent of contacts with a final outcome (sent or later, failed, unknown, cancelled)."""
    total = counts["total"]
    return progress_percent(total - sum(counts[status] for status in NOT_DONE_STATES), total)


def progress_percent(done: int, total: int) -> int:
    """``done`` of ``total`` as the whole percent a progress bar shows (0 for no contacts)."""
    return int(done * 100 / total) if total else 0


def campaign_split(campaign_ids: Iterable[int]) -> dict[int, dict[str, list[dict]]]:
    """Per campaign: how many contacts each template and each number has."""
    ids = list(campaign_ids)
    campaigns = Campaign.objects.filter(pk__in=ids).prefetch_related(
        "campaign_templates__template", "numbers"
    )
    by_template: dict[tuple[int, int], int] = defaultdict(int)
    by_number: dict[tuple[int, int], int] = defaultdict(int)
    rows = (
        Recipient.objects.filter(campaign_id__in=ids)
        .values_list("campaign_id", "template_id", "number_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for campaign_id, template_id, number_id, n in rows:
        by_template[campaign_id, template_id] += n
        by_number[campaign_id, number_id] += n
    split = {}
    for campaign in campaigns:
        split[campaign.pk] = {
            "templates": [
                {
                    "template": use.template_id,
                    "name": use.template.name,
                    "language": use.template.language,
                    "weight": use.weight,
                    "contacts": by_template[campaign.pk, use.template_id],
                }
                for use in campaign.campaign_templates.all()
            ],
            "numbers": [
                {
                    "number": number.pk,
                    "label": str(number),
                    "contacts": by_number[campaign.pk, number.pk],
                }
                for number in sorted(campaign.numbers.all(), key=lambda n: n.pk)
            ],
        }
    return split


def import_answer(job: ImportJob, *, errors: int = ERRORS_IN_ANSWER) -> dict:
    """The answer to an upload: counts, the first ``errors`` problems, progress and notes."""
    first = list(
        ImportRowError.objects.filter(job=job)
        .order_by("row", "pk")
        .values("row", "phone", "kind", "reason")[:errors]
    )
    problems = job.rejected + job.duplicates + job.suppressed
    return {
        "id": job.pk,
        "campaign": job.campaign_id,
        "status": job.status,
        "filename": job.filename,
        "rows": job.data_rows,
        "accepted": job.accepted,
        "rejected": job.rejected,
        "duplicates": job.duplicates,
        "suppressed": job.suppressed,
        "errors": first,
        "errors_total": problems,
        "errors_truncated": problems > len(first),
        "encoding": job.encoding,
        "delimiter": job.delimiter,
        "notes": job.notes,
        "error": job.error,
        "progress": job.progress,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


# A recipient as exports and the messages API show it (after its id and CSV row).
RECIPIENT_FIELDS = (
    "phone",
    "template",
    "number",
    "status",
    "wamid",
    "attempts",
    "error_code",
    "error_title",
    "error_details",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
    "replied_at",
)
REPORT_HEADER = ["id", "row", *RECIPIENT_FIELDS]


def report_rows(campaign: Campaign, status: str | None = None) -> Iterator[tuple]:
    """One tuple per recipient, in REPORT_HEADER's order, streamed from the database."""
    rows = Recipient.objects.filter(campaign=campaign)
    if status:
        rows = rows.filter(status=status)
    names = {
        use.template_id: use.template.name
        for use in campaign.campaign_templates.select_related("template")
    }
    labels = {number.pk: str(number) for number in campaign.numbers.all()}
    for row in (
        rows.order_by("pk")
        .values_list("pk", "row_number", *RECIPIENT_FIELDS)
        .iterator(chunk_size=5000)
    ):
        (pk, line, phone, template_id, number_id, *rest) = row
        yield (
            pk,
            line,
            phone,
            names.get(template_id, template_id),
            labels.get(number_id, number_id),
            *(_iso(value) for value in rest),
        )


def _iso(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


IMPORT_ERRORS_HEADER = ["import", "row", "kind", "phone", "reason"]


def import_error_rows(campaign: Campaign, job_id: int | None = None) -> Iterator[tuple]:
    rows = ImportRowError.objects.filter(job__campaign=campaign)
    if job_id is not None:
        rows = rows.filter(job_id=job_id)
    return (
        rows.order_by("job_id", "row", "pk")
        .values_list("job_id", "row", "kind", "phone", "reason")
        .iterator(chunk_size=5000)
    )
