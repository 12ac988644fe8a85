"""manage.py sync_templates: sync message templates from Meta, one line per WABA."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Workspace
from numbers.models import Number
from templates_sync.models import SyncState
from templates_sync.services import WabaResult, templates_sync


class Command(BaseCommand):
    help = "Sync message templates from Meta for one number's WABA, a workspace, or everything."

    def add_arguments(self, parser):
        parser.add_argument("--number", type=int, help="sync only this number's WABA (number id)")
        parser.add_argument("--workspace", help="sync only this workspace (slug)")

    def handle(self, *args, **options):
        number = None
        workspaces = Workspace.objects.filter(
            pk__in=Number.objects.values("workspace_id")
        ).order_by("pk")
        if options["workspace"]:
            workspaces = workspaces.filter(slug=options["workspace"])
            if not Workspace.objects.filter(slug=options["workspace"]).exists():
                raise CommandError(f"no workspace with slug {options['workspace']!r}")
        if options["number"] is not None:
            number = Number.objects.select_related("workspace").filter(pk=options["number"]).first()
            if number is None or (
                options["workspace"] and number.workspace.slug != options["workspace"]
            ):
                raise CommandError(f"no number with id {options['number']}")
            workspaces = [number.workspace]

        failed = 0
        for workspace in workspaces:
            self.stdout.write(f"workspace {workspace.slug}:")
            result = templates_sync(workspace=workspace, number=number, progress=self._report)
            failed += len(result.errors)
        if failed:
            raise CommandError(f"{failed} WABA sync(s) failed; see above")

    def _report(self, result: WabaResult) -> None:
        where = f"  WABA {result.waba_id} via number {result.number_id}"
        if result.state == SyncState.OK:
            self.stdout.write(
                f"{where}: {result.seen} templates, {result.created} created, "
                f"{result.updated} updated, {result.removed} removed"
            )
        else:
            self.stdout.write(f"{where}: {result.state}: {result.error}")
