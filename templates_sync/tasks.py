"""Celery tasks of the templates app: the periodic template sync."""

from celery import shared_task

from accounts.models import Workspace
from numbers.models import Number
from templates_sync.services import templates_sync


@shared_task(queue="periodic", ignore_result=True)
def sync_all_templates() -> int:
    """Queue a template sync per workspace with numbers (beat, every 15 minutes)."""
    ids = list(
        Number.objects.order_by("workspace_id").values_list("workspace_id", flat=True).distinct()
    )
    for workspace_id in ids:
        sync_workspace_templates.delay(workspace_id)
    return len(ids)


@shared_task(queue="periodic", ignore_result=True)
def sync_workspace_templates(workspace_id: int) -> None:
    """Sync every WABA of one workspace; failures are recorded per WABA, never raised."""
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is not None:
        templates_sync(workspace=workspace)
