"""manage.py create_workspace NAME --owner USERNAME [--password PW] [--time-zone ZONE]"""

from django.core.management.base import BaseCommand, CommandError

from accounts.services import WorkspaceError, workspace_create


class Command(BaseCommand):
    help = "Creates a workspace and its owner (the user is created when missing)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--owner", required=True, help="username of the owner")
        parser.add_argument("--password", help="password for a new owner (or to reset it)")
        parser.add_argument(
            "--time-zone",
            help="IANA time zone the workspace's times are shown and entered in, "
            "e.g. Asia/Kolkata (default: settings.TIME_ZONE)",
        )

    def handle(self, *args, name, owner, password, time_zone, **options):
        try:
            workspace, created = workspace_create(
                name=name, owner_username=owner, password=password, time_zone=time_zone
            )
        except WorkspaceError as error:
            raise CommandError(str(error)) from None
        who = "new user" if created else "existing user"
        self.stdout.write(
            f"workspace {workspace.name!r} (id {workspace.pk}, slug {workspace.slug}) "
            f"owned by {who} {owner!r}, time zone {workspace.time_zone}"
        )
