"""Template sync from Meta, per WABA: fetch every page, then write it all in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Workspace
from messaging.graph import ErrorClass, GraphError
from numbers.models import Number, NumberStatus
from numbers.services import describe_graph_error, number_record_graph_error
from templates_sync.models import (
    REMOVED,
    StatusSource,
    SyncState,
    Template,
    TemplateStatusChange,
    WabaSync,
)
from templates_sync.rendering import header_format_of, parse_parameters, unsendable_reason
from templates_sync.signals import template_category_changed, template_status_changed

logger = logging.getLogger(__name__)

# Graph's maximum page size for this edge: fewest calls against the WABA's hourly limit.
PAGE_SIZE = 100


@dataclass
class WabaResult:
    """The outcome of syncing one WABA."""

    waba_id: str
    number_id: int | None
    state: str
    created: int = 0
    updated: int = 0
    removed: int = 0
    seen: int = 0
    error: str = ""
    error_code: int | None = None


@dataclass
class SyncResult:
    created: int = 0
    updated: int = 0
    removed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    wabas: list[WabaResult] = field(default_factory=list)

    def add(self, result: WabaResult) -> None:
        self.wabas.append(result)
        self.created += result.created
        self.updated += result.updated
        self.removed += result.removed
        if result.state != SyncState.OK:
            self.errors.append(
                {
                    "waba_id": result.waba_id,
                    "number": result.number_id,
                    "state": result.state,
                    "code": result.error_code,
                    "message": result.error,
                }
            )


def template_status_record(
    *,
    template: Template,
    status: str,
    source: str,
    reason: str = "",
    at: datetime | None = None,
) -> bool:
    """Set ``template.status`` and record the change with its time; False if unchanged.

    The caller saves the template (this sets ``status`` and ``status_changed_at`` only).
    Sends ``template_status_changed``: the same rules follow a change whichever
    path (sync or webhook) learnt it.
    """
    if template.status == status:
        return False
    at = at or timezone.now()
    old = template.status
    TemplateStatusChange.objects.create(
        template=template, old=old, new=status, at=at, reason=reason, source=source
    )
    template.status = status
    template.status_changed_at = at
    template_status_changed.send(
        sender=Template, template=template, old=old, new=status, reason=reason, source=source
    )
    return True


def _candidates(numbers: Iterable[Number]) -> dict[str, list[Number]]:
    """The workspace's numbers per WABA, usable ones first: any of them may sync it."""
    by_waba: dict[str, list[Number]] = {}
    for number in sorted(numbers, key=lambda n: (n.status != NumberStatus.ACTIVE, n.pk)):
        by_waba.setdefault(number.waba_id, []).append(number)
    return by_waba


def templates_sync(
    *,
    workspace: Workspace,
    number: Number | None = None,
    page_size: int = PAGE_SIZE,
    progress: Callable[[WabaResult], None] | None = None,
) -> SyncResult:
    """Sync the templates of every WABA of ``workspace`` (or only ``number``'s WABA).

    Meta's errors never raise: a WABA whose sync failed keeps its templates as they
    were and its WabaSync row (and the result's ``errors``) says why. ``progress`` is
    called after each WABA.
    """
    if number is not None:
        if number.workspace_id != workspace.pk:
            raise ValueError("the number belongs to another workspace")
        plan = {number.waba_id: [number]}
    else:
        plan = _candidates(Number.objects.filter(workspace=workspace))
    result = SyncResult()
    for waba_id, numbers in sorted(plan.items()):
        waba_result = _sync_waba(workspace, waba_id, numbers, page_size)
        result.add(waba_result)
        if progress is not None:
            progress(waba_result)
    return result


def _fetch(
    waba_id: str, numbers: list[Number], page_size: int
) -> tuple[Number, list[dict[str, Any]] | GraphError]:
    """Every template of the WABA through the first number whose token works.

    An auth failure tries the next number (numbers of one WABA may hold different
    tokens); any other failure stops at once, as retrying would hit the same limit.
    """
    error: GraphError | None = None
    for number in numbers:
        try:
            return number, list(number.graph_client().list_templates(waba_id, limit=page_size))
        except GraphError as exc:
            error = exc
            logger.info("template sync of WABA %s via number %s: %r", waba_id, number.pk, exc)
            if exc.error_class is ErrorClass.AUTH:
                number_record_graph_error(number=number, error=exc)
                continue
            return number, exc
    assert error is not None
    return numbers[-1], error


def _state_for(error: GraphError) -> str:
    if error.error_class is ErrorClass.THROTTLE:
        return SyncState.THROTTLED
    if error.error_class is ErrorClass.AUTH:
        return SyncState.AUTH_FAILED
    return SyncState.FAILED


def _sync_waba(
    workspace: Workspace, waba_id: str, numbers: list[Number], page_size: int
) -> WabaResult:
    sync, _ = WabaSync.objects.get_or_create(workspace=workspace, waba_id=waba_id)
    started = timezone.now()
    # No Graph call inside a transaction: fetch every page first, then write.
    number, fetched = _fetch(waba_id, numbers, page_size)
    if isinstance(fetched, GraphError):
        result = WabaResult(
            waba_id=waba_id,
            number_id=number.pk,
            state=_state_for(fetched),
            error=describe_graph_error(fetched),
            error_code=fetched.code,
        )
        WabaSync.objects.filter(pk=sync.pk).update(
            number=number,
            state=result.state,
            started_at=started,
            finished_at=timezone.now(),
            created=0,
            updated=0,
            removed=0,
            error=result.error,
            error_code=result.error_code,
        )
        return result
    with transaction.atomic():
        # The lock orders concurrent syncs of one WABA (beat and a button press).
        sync = WabaSync.objects.select_for_update().get(pk=sync.pk)
        if sync.data_as_of is not None and sync.data_as_of > started:
            # A sync that fetched later has already written: ours is older news.
            return WabaResult(waba_id=waba_id, number_id=number.pk, state=SyncState.OK)
        result = _apply(workspace, waba_id, number, fetched, timezone.now())
        sync.number = number
        sync.state = SyncState.OK
        sync.started_at = started
        sync.finished_at = timezone.now()
        sync.last_success_at = sync.finished_at
        sync.data_as_of = started
        sync.created, sync.updated, sync.removed = result.created, result.updated, result.removed
        sync.error, sync.error_code = "", None
        sync.save()
    logger.info(
        "templates of WABA %s synced: %d created, %d updated, %d removed",
        waba_id,
        result.created,
        result.updated,
        result.removed,
    )
    return result


def _fields_from(item: dict[str, Any]) -> dict[str, Any]:
    components = item.get("components") or []
    parameter_format = str(item.get("parameter_format") or "POSITIONAL").upper()
    return {
        "meta_id": str(item.get("id") or ""),
        "category": str(item.get("category") or "").upper(),
        "parameter_format": parameter_format,
        "components": components,
        "parameters": parse_parameters(components, parameter_format),
        "header_format": header_format_of(components),
        # Marked here, once: pre-flight refuses it instead of Meta failing every row.
        "unsendable_reason": unsendable_reason(components, parameter_format)[:300],
    }


def _apply(
    workspace: Workspace,
    waba_id: str,
    number: Number,
    items: list[dict[str, Any]],
    now: datetime,
) -> WabaResult:
    result = WabaResult(waba_id=waba_id, number_id=number.pk, state=SyncState.OK)
    existing = {
        (t.name, t.language): t
        for t in Template.objects.select_for_update().filter(workspace=workspace, waba_id=waba_id)
    }
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        if not item.get("name") or not item.get("language"):
            logger.warning("WABA %s returned a template without name or language", waba_id)
            continue
        latest[(str(item["name"]), str(item["language"]))] = item
    result.seen = len(latest)

    for key, item in latest.items():
        fields = _fields_from(item)
        status = str(item.get("status") or "").upper()
        template = existing.get(key)
        if template is None:
            template = Template.objects.create(
                workspace=workspace,
                number=number,
                waba_id=waba_id,
                name=key[0],
                language=key[1],
                status=status,
                synced_at=now,
                last_seen_at=now,
                status_changed_at=now,
                **fields,
            )
            TemplateStatusChange.objects.create(
                template=template, old="", new=status, at=now, source=StatusSource.SYNC
            )
            result.created += 1
            continue
        changed = any(getattr(template, name) != value for name, value in fields.items())
        old_category = template.category
        for name, value in fields.items():
            setattr(template, name, value)
        if old_category and template.category and old_category != template.category:
            template_category_changed.send(
                sender=Template, template=template, old=old_category, new=template.category
            )
        if template.removed_at is not None:
            TemplateStatusChange.objects.create(
                template=template,
                old=REMOVED,
                new=status,
                at=now,
                reason="returned by Meta again",
                source=StatusSource.SYNC,
            )
            template.status = status
            template.status_changed_at = now
            template.removed_at = None
            changed = True
        elif template_status_record(
            template=template, status=status, source=StatusSource.SYNC, at=now
        ):
            changed = True
        template.number = number
        template.last_seen_at = now
        if changed:
            template.synced_at = now
            result.updated += 1
        template.save()

    for key, template in existing.items():
        if key in latest or template.removed_at is not None:
            continue
        TemplateStatusChange.objects.create(
            template=template,
            old=template.status,
            new=REMOVED,
            at=now,
            reason="no longer returned by Meta",
            source=StatusSource.SYNC,
        )
        template.removed_at = now
        template.status_changed_at = now
        template.save(update_fields=["removed_at", "status_changed_at"])
        result.removed += 1
    return result
