"""Contact import: CSV rows to recipients, checked, deduplicated, distributed, COPY-inserted in batches.

Every data row ends up counted exactly once: accepted, rejected (with the
reason), duplicate (of a contact accepted earlier, from this file or before)
or suppressed (opted out). Each batch commits its recipients, its error rows
and the job's counters together, so a job retried after a crash resumes after
the last committed line and counts nothing twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import BinaryIO

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Max
from django.utils import timezone

from campaigns.csvio import (
    DELIMITER_NAMES,
    CsvFileError,
    CsvReader,
    Encoding,
    Opener,
    Record,
    detect_encoding,
    normalize_header,
    phone_column_index,
)
from campaigns.locks import campaign_lock_release, campaign_lock_try
from campaigns.models import (
    IMPORTABLE_STATES,
    Campaign,
    ImportChunk,
    ImportJob,
    ImportStatus,
    Recipient,
    RowProblem,
)
from campaigns.phones import InvalidPhone, normalize_phone
from campaigns.signals import import_finished
from templates_sync.models import Template, TemplateCategory
from templates_sync.rendering import (
    RenderError,
    column_aliases,
    optional_parameters,
    render_components,
    surely_renders,
)

logger = logging.getLogger(__name__)

BATCH_ROWS = 5000
# A cell (or record) longer than this is no contact data: WhatsApp's whole body is 1024.
MAX_RECORD_CHARS = 65536
PHONE_CELL_KEPT = 64


class ImportRefused(Exception):
    """The campaign cannot take contacts now (the reason is for a person; the API answers 409)."""


@dataclass
class _Slot:
    """A campaign template during an import: where each parameter's value comes from."""

    template: Template
    weight: int
    count: int
    columns: dict[str, int | None]
    hints: dict[str, str]
    marketing: bool
    renders: Callable[[dict[str, str]], bool] = field(default=lambda values: False)


@dataclass
class Plan:
    header: list[str]
    phone_index: int
    slots: list[_Slot]
    numbers: list[list[int]]  # [number id, recipients assigned]
    notes: list[str] = field(default_factory=list)

    def pick_template(self) -> _Slot:
        """Deterministic weighted choice that keeps every template's share within one row of its weight.

        The template most behind its share (weight * (n + 1) / total weight)
        gets the next contact; ties go to the template listed first.
        """
        slots = self.slots
        if len(slots) == 1:
            return slots[0]
        assigned = sum(slot.count for slot in slots)
        total_weight = sum(slot.weight for slot in slots)
        best, best_key = slots[0], None
        for slot in slots:
            key = slot.weight * (assigned + 1) - total_weight * slot.count
            if best_key is None or key > best_key:
                best, best_key = slot, key
        return best

    def pick_number(self) -> int:
        """The number with the fewest contacts so far (the first listed on a tie)."""
        entry = min(self.numbers, key=lambda item: item[1])
        entry[1] += 1
        return entry[0]


def _candidate_columns(
    parameter: str, single_button: bool, aliases: list[str] | None = None
) -> list[str]:
    section, _, name = parameter.partition(".")
    names = [parameter, f"{section}_{name}"]
    if "." in name:
        # card.0.body.1, button.1.sections, ...: also with underscores throughout.
        names = [parameter, parameter.replace(".", "_")]
    elif name.isdigit():
        if section == "body":
            names += [name, f"var{name}"]
        elif section == "header":
            names += ["header", f"header{name}"]
        elif section == "button":
            names += [f"button{name}"] + (["button"] if single_button else [])
    else:
        names.append(name)
    names += aliases or []
    return [normalize_header(candidate) for candidate in names]


def build_plan(*, campaign: Campaign, header: list[str]) -> Plan:
    """Where each template parameter's value comes from, and the split so far.

    ``variable_mapping`` names a column for a parameter; otherwise the column
    is found by the parameter's name (``first_name``, ``1``/``var1``,
    ``header``, ``button.0``, ``body.first_name``, case-insensitive).
    Raises ImportRefused when the campaign has no templates or numbers.
    """
    phone_index = phone_column_index(header)
    positions: dict[str, int] = {}
    for index, name in enumerate(header):
        positions.setdefault(normalize_header(name), index)
    uses = list(campaign.campaign_templates.select_related("template").order_by("pk"))
    if not uses:
        raise ImportRefused("the campaign has no templates: add one before importing contacts")
    number_ids = list(campaign.numbers.order_by("pk").values_list("pk", flat=True))
    if not number_ids:
        raise ImportRefused("the campaign has no numbers: add one before importing contacts")

    template_counts = dict(
        campaign.recipients.values_list("template_id").annotate(n=Count("id")).order_by()
    )
    number_counts = dict(
        campaign.recipients.values_list("number_id").annotate(n=Count("id")).order_by()
    )
    mapping = campaign.variable_mapping or {}
    used_columns = {phone_index}
    slots = []
    for use in uses:
        template = use.template
        if template.unsendable_reason:
            raise ImportRefused(
                f"template {template.name!r} cannot be sent by this product: "
                f"{template.unsendable_reason}; replace it in the campaign"
            )
        explicit = mapping.get(str(template.pk)) or {}
        required = list(template.parameters or [])
        aliases = column_aliases(template)
        # Optional keys (a document's filename, a flow token, ...) are read when present.
        parameters = required + [p for p in optional_parameters(template) if p not in required]
        buttons = [p for p in required if p.startswith("button.") and p.count(".") == 1]
        columns: dict[str, int | None] = {}
        hints: dict[str, str] = {}
        for parameter in parameters:
            if parameter in explicit:
                wanted = [normalize_header(str(explicit[parameter]))]
                hints[parameter] = f"column {explicit[parameter]!r} from variable_mapping"
            elif parameter in required:
                wanted = _candidate_columns(
                    parameter, single_button=len(buttons) == 1, aliases=aliases.get(parameter)
                )
                hints[parameter] = "no column " + " or ".join(
                    repr(name) for name in dict.fromkeys(wanted)
                )
            else:
                # Optional: only its own name or an alias (a "name" column is a person's).
                wanted = [
                    normalize_header(n)
                    for n in (parameter, parameter.replace(".", "_"), *aliases.get(parameter, []))
                ]
            index = next((positions[name] for name in wanted if name in positions), None)
            if index is None and parameter not in required and parameter not in explicit:
                continue
            columns[parameter] = index
            if index is not None:
                hints[parameter] = f"column {header[index]!r}"
                used_columns.add(index)
        slots.append(
            _Slot(
                template=template,
                weight=use.weight,
                count=template_counts.get(template.pk, 0),
                columns=columns,
                hints=hints,
                marketing=template.category == TemplateCategory.MARKETING,
                renders=surely_renders(template),
            )
        )
    plan = Plan(
        header=header,
        phone_index=phone_index,
        slots=slots,
        numbers=[[pk, number_counts.get(pk, 0)] for pk in number_ids],
    )
    for slot in slots:
        missing = [p for p, index in slot.columns.items() if index is None]
        if missing:
            plan.notes.append(
                f"template {slot.template.name!r}: "
                + "; ".join(f"{p}: {slot.hints[p]}" for p in missing)
                + " (rows assigned to it are rejected)"
            )
    unused = [name for index, name in enumerate(header) if index not in used_columns and name]
    if unused:
        plan.notes.append(
            "columns not used by any template: " + ", ".join(repr(name) for name in unused)
        )
    return plan


@dataclass
class _Batch:
    recipients: list[tuple] = field(default_factory=list)
    problems: list[tuple] = field(default_factory=list)
    data_rows: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    suppressed: int = 0
    last_line: int = 0

    def problem(self, kind: str, line: int, phone: str, reason: str) -> None:
        self.problems.append((line, kind, phone[:PHONE_CELL_KEPT], reason))
        if kind == RowProblem.REJECTED:
            self.rejected += 1
        elif kind == RowProblem.DUPLICATE:
            self.duplicates += 1
        else:
            self.suppressed += 1


# (rejections as (line, phone cell, reason), valid rows as (record, E.164 phone)), in file order.
_Checked = tuple[list[tuple[int, str, str]], list[tuple[Record, str]]]


def check_rows(records: list[Record], phone_index: int, width: int, region: str) -> _Checked:
    """What needs no database: unreadable rows, extra fields, phone numbers to E.164.

    Pure (no database, no shared state), so it can run on the checking thread
    while the previous batch is written: phone parsing is about a third of an
    import's time.
    """
    rejected: list[tuple[int, str, str]] = []
    valid: list[tuple[Record, str]] = []
    for record in records:
        fields = record.fields
        if record.problem:
            rejected.append((record.line, "", record.problem))
            continue
        if len(fields) > width and any(cell.strip() for cell in fields[width:]):
            rejected.append(
                (
                    record.line,
                    fields[phone_index] if phone_index < len(fields) else "",
                    f"the row has {len(fields)} fields and the header {width}: "
                    "a value holding the delimiter must be quoted",
                )
            )
            continue
        raw = fields[phone_index] if phone_index < len(fields) else ""
        try:
            valid.append((record, normalize_phone(raw, region)))
        except InvalidPhone as error:
            rejected.append((record.line, raw.strip(), f"invalid phone: {error}"))
    return rejected, valid


class _Importer:
    def __init__(self, job: ImportJob, plan: Plan, region: str) -> None:
        self.job = job
        self.plan = plan
        self.region = region
        self.campaign_id = job.campaign_id
        self.workspace_id = job.campaign.workspace_id
        self.width = len(plan.header)

    def process(self, records: list[Record], checked: _Checked | None = None) -> _Batch:
        """The batch of ``records``; ``checked`` is check_rows(records) when already done."""
        if checked is None:
            checked = check_rows(records, self.plan.phone_index, self.width, self.region)
        rejected, valid = checked
        batch = _Batch(data_rows=len(records), last_line=records[-1].line if records else 0)
        plan = self.plan
        for line, phone, reason in rejected:
            batch.problem(RowProblem.REJECTED, line, phone, reason)

        phones = list({phone for _, phone in valid})
        existing = self._existing(phones)
        suppressed = self._suppressed(phones)
        accepted_at: dict[str, int] = {}
        campaign_id = self.campaign_id
        for record, phone in valid:
            line = record.line
            if phone in accepted_at:
                batch.problem(
                    RowProblem.DUPLICATE, line, phone, f"duplicate of row {accepted_at[phone]}"
                )
                continue
            if phone in existing:
                earlier_line, from_this_file = existing[phone]
                batch.problem(
                    RowProblem.DUPLICATE,
                    line,
                    phone,
                    f"duplicate of row {earlier_line}"
                    if from_this_file
                    else "already in this campaign (from an earlier import)",
                )
                continue
            if phone in suppressed:
                batch.problem(
                    RowProblem.SUPPRESSED,
                    line,
                    phone,
                    "opted out" + (f": {suppressed[phone]}" if suppressed[phone] else ""),
                )
                continue
            slot = plan.pick_template()
            if slot.marketing and phone.startswith("+1"):
                batch.problem(
                    RowProblem.REJECTED,
                    line,
                    phone,
                    f"template {slot.template.name!r} is a marketing template and Meta does "
                    "not deliver marketing templates to US (+1) numbers",
                )
                continue
            fields = record.fields
            values = {}
            for parameter, index in slot.columns.items():
                if index is not None and index < len(fields):
                    values[parameter] = fields[index].strip()
            try:
                if not slot.renders(values):
                    render_components(slot.template, values)
            except RenderError as error:
                reasons = "; ".join(
                    f"{parameter}: {message} ({slot.hints.get(parameter, 'not a parameter')})"
                    for parameter, message in error.problems.items()
                )
                batch.problem(
                    RowProblem.REJECTED,
                    line,
                    phone,
                    f"cannot fill template {slot.template.name!r}: {reasons}",
                )
                continue
            slot.count += 1
            accepted_at[phone] = line
            batch.recipients.append(
                (
                    campaign_id,
                    phone,
                    json.dumps(values, ensure_ascii=False),
                    slot.template.pk,
                    plan.pick_number(),
                    line,
                )
            )
        batch.accepted = len(batch.recipients)
        return batch

    # One array parameter instead of ``phone__in``: Django's per-element handling of a
    # 5,000-item IN list cost a tenth of the import's time.
    def _existing(self, phones: list[str]) -> dict[str, tuple[int, bool]]:
        """Phones already in the campaign: (row, added by this job)."""
        if not phones:
            return {}
        floor = self.job.recipient_id_floor or 0
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT phone, row_number, id FROM campaigns_recipient "
                "WHERE campaign_id = %s AND phone = ANY(%s)",
                [self.campaign_id, phones],
            )
            return {phone: (row, pk > floor) for phone, row, pk in cursor.fetchall()}

    def _suppressed(self, phones: list[str]) -> dict[str, str]:
        if not phones:
            return {}
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT phone, reason FROM campaigns_suppression "
                "WHERE workspace_id = %s AND phone = ANY(%s)",
                [self.workspace_id, phones],
            )
            return dict(cursor.fetchall())

    def write(self, batch: _Batch, bytes_read: int) -> None:
        """Commits one batch: recipients, error rows and counters together."""
        with transaction.atomic(), connection.cursor() as cursor:
            raw = cursor.cursor
            if batch.recipients:
                with raw.copy(
                    "COPY campaigns_recipient "
                    "(campaign_id, phone, variables, template_id, number_id, row_number) "
                    "FROM STDIN"
                ) as copy:
                    for row in batch.recipients:
                        copy.write_row(row)
            if batch.problems:
                with raw.copy(
                    "COPY campaigns_importrowerror (job_id, row, kind, phone, reason) FROM STDIN"
                ) as copy:
                    job_id = self.job.pk
                    for line, kind, phone, reason in batch.problems:
                        copy.write_row((job_id, line, kind, phone, reason))
            ImportJob.objects.filter(pk=self.job.pk).update(
                data_rows=F("data_rows") + batch.data_rows,
                accepted=F("accepted") + batch.accepted,
                rejected=F("rejected") + batch.rejected,
                duplicates=F("duplicates") + batch.duplicates,
                suppressed=F("suppressed") + batch.suppressed,
                processed_line=max(batch.last_line, self.job.processed_line),
                processed_bytes=bytes_read,
            )


def _header_and_records(reader: CsvReader) -> tuple[Record, Iterator[Record]]:
    records = reader.records()
    header = next(records, None)
    if header is None:
        raise CsvFileError("the file is empty")
    if header.problem:
        raise CsvFileError(f"line {header.line}: the header cannot be read: {header.problem}")
    return header, records


def import_inspect(*, campaign: Campaign, opener: Opener) -> tuple[Encoding, str, list[str]]:
    """Checks the file as a whole before anything is stored: (encoding, delimiter, header).

    Raises CsvFileError (empty, binary, no phone column, unreadable header) or
    ImportRefused (the campaign's state does not take contacts).
    """
    _check_importable(campaign)
    encoding = detect_encoding(opener)
    reader = CsvReader(opener, encoding, max_chars=MAX_RECORD_CHARS)
    header, _ = _header_and_records(reader)
    build_plan(campaign=campaign, header=header.fields)
    return encoding, reader.delimiter, header.fields


def _check_importable(campaign: Campaign) -> None:
    if campaign.status not in IMPORTABLE_STATES:
        raise ImportRefused(
            f"the campaign is {campaign.status}: contacts can be added only to a draft, "
            "scheduled or paused campaign"
        )


def import_job_create(
    *,
    campaign: Campaign,
    user,
    filename: str,
    size: int,
    chunks: Iterator[bytes] | None = None,
) -> ImportJob:
    """A queued import job; ``chunks`` (the file, piece by piece) are stored for a worker.

    The pieces go through COPY on the raw cursor, one at a time: an INSERT per piece
    would, with DEBUG on, leave each piece's SQL (the bytes as hex, twice their size) in
    the connection's query log until the next request: a 300 MB upload kept the web
    process at 722 MB that way.
    """
    with transaction.atomic():
        job = ImportJob.objects.create(
            campaign=campaign,
            created_by=user if getattr(user, "is_authenticated", False) else None,
            filename=filename[:255],
            size_bytes=size,
        )
        if chunks is not None:
            with connection.cursor() as cursor:
                raw = cursor.cursor
                with raw.copy(
                    f"COPY {ImportChunk._meta.db_table} (job_id, seq, data) FROM STDIN"
                ) as copy:
                    for seq, data in enumerate(chunks):
                        copy.write_row((job.pk, seq, data))
    return job


class ChunkStream:
    """Reads a stored upload back, one chunk (about 1 MB) in memory at a time."""

    def __init__(self, job_id: int) -> None:
        self._job_id = job_id
        self._seq = 0
        self._buffer = memoryview(b"")

    def read(self, size: int = -1) -> bytes:
        if not self._buffer:
            data = (
                ImportChunk.objects.filter(job_id=self._job_id, seq=self._seq)
                .values_list("data", flat=True)
                .first()
            )
            if data is None:
                return b""
            self._seq += 1
            self._buffer = memoryview(bytes(data))
        if size < 0:
            size = len(self._buffer)
        piece, self._buffer = self._buffer[:size], self._buffer[size:]
        return piece.tobytes()


def stored_opener(job: ImportJob) -> Opener:
    def opener() -> BinaryIO:
        return ChunkStream(job.pk)  # type: ignore[return-value]

    return opener


class ImportBusy(Exception):
    """Another import into the same campaign holds its lock."""


def import_job_run(
    *,
    job: ImportJob,
    opener: Opener,
    progress: Callable[[ImportJob], None] | None = None,
) -> ImportJob:
    """Runs (or resumes) ``job`` over the file ``opener`` opens; returns it refreshed.

    Raises ImportBusy when another import into the campaign is running. A file
    problem or a refused campaign marks the job failed with the reason (and
    raises CsvFileError or ImportRefused); any other exception leaves it
    running, so a retry resumes after the last committed batch.
    """
    if not campaign_lock_try(job.campaign_id):
        raise ImportBusy(f"another import into campaign {job.campaign_id} is running")
    try:
        job.refresh_from_db()
        if job.status in (ImportStatus.DONE, ImportStatus.FAILED):
            return job
        campaign = Campaign.objects.get(pk=job.campaign_id)
        job.campaign = campaign
        try:
            _check_importable(campaign)
            encoding = detect_encoding(opener)
            reader = CsvReader(opener, encoding, max_chars=MAX_RECORD_CHARS)
            header, records = _header_and_records(reader)
            plan = build_plan(campaign=campaign, header=header.fields)
        except (CsvFileError, ImportRefused) as error:
            _finish(job, ImportStatus.FAILED, error=str(error))
            raise
        if job.recipient_id_floor is None:
            job.recipient_id_floor = Recipient.objects.aggregate(top=Max("pk"))["top"] or 0
        job.status = ImportStatus.RUNNING
        job.started_at = job.started_at or timezone.now()
        job.encoding = encoding.label
        job.delimiter = DELIMITER_NAMES[reader.delimiter]
        job.notes = [*encoding.notes, *plan.notes]
        if header.line > 1:
            job.notes.append(f"{header.line - 1} blank lines before the header were skipped")
        job.save(
            update_fields=[
                "status",
                "started_at",
                "encoding",
                "delimiter",
                "notes",
                "recipient_id_floor",
            ]
        )
        importer = _Importer(job, plan, settings.DEFAULT_PHONE_REGION)
        _run_batches(importer, _batches(records, reader, job.processed_line), progress)
        _finish(job, ImportStatus.DONE)
        if not job.data_rows:
            job.notes.append("the file has a header but no data rows")
            job.save(update_fields=["notes"])
        return job
    finally:
        campaign_lock_release(job.campaign_id)


def _batches(
    records: Iterator[Record], reader: CsvReader, resume_after: int
) -> Iterator[tuple[list[Record], int]]:
    """(records, bytes read when the batch was complete) per BATCH_ROWS rows after ``resume_after``.

    Always ends with one (possibly empty) last batch, so even a file without
    new rows commits its counters once.
    """
    pending: list[Record] = []
    for record in records:
        if record.line <= resume_after:
            continue
        pending.append(record)
        if len(pending) >= BATCH_ROWS:
            yield pending, reader.bytes_read
            pending = []
    yield pending, reader.bytes_read


def _run_batches(
    importer: _Importer,
    batches: Iterator[tuple[list[Record], int]],
    progress: Callable[[ImportJob], None] | None,
) -> None:
    """Checks batch N+1 on a second thread while batch N is looked up and written on this one.

    Writing waits on PostgreSQL (about 40% of an import), and psycopg releases
    the GIL while it waits, so the phone parsing of the next batch (about a
    third) runs in that time: bench/import.py's 1M rows took 77 s without the
    overlap and 59 s with it (2 cores). Only the pure check_rows() runs on the
    other thread; reading the file (a stored upload is read from the database),
    the duplicate and suppression lookups and the writes stay on this thread
    and its connection, and batches are still written one at a time, in order.
    At most two batches are in memory: the one being written and the one being
    checked (RSS 96 MB instead of 93 MB, flat).
    """
    plan = importer.plan
    check = partial(
        check_rows, phone_index=plan.phone_index, width=importer.width, region=importer.region
    )
    checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-check")
    try:
        ahead = None
        while True:
            try:
                item = next(batches, None)
            except Exception:
                # As without the overlap: every batch read whole before the error is committed.
                if ahead is not None:
                    _commit(importer, *ahead, progress)
                raise
            if item is None:
                break
            records, bytes_read = item
            checking = (records, checker.submit(check, records), bytes_read)
            if ahead is not None:
                _commit(importer, *ahead, progress)
            ahead = checking
        if ahead is not None:
            _commit(importer, *ahead, progress)
    finally:
        # On an error this waits for the batch being checked (never more than one)
        # and drops anything queued, so no thread outlives the import.
        checker.shutdown(wait=True, cancel_futures=True)


def _commit(
    importer: _Importer,
    records: list[Record],
    checked: Future[_Checked],
    bytes_read: int,
    progress: Callable[[ImportJob], None] | None,
) -> None:
    importer.write(importer.process(records, checked.result()), bytes_read)
    importer.job.refresh_from_db()
    if progress is not None:
        progress(importer.job)


def _finish(job: ImportJob, status: str, *, error: str = "") -> None:
    with transaction.atomic():
        job.status = status
        job.error = error
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "error", "finished_at"])
        ImportChunk.objects.filter(job=job).delete()
        job.refresh_from_db()
        # In the same transaction: the notification is written with the outcome.
        import_finished.send(sender=ImportJob, campaign=job.campaign, result=job)
