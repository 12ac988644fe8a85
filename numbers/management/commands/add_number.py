"""manage.py add_number: add a WhatsApp number to a workspace after a test connection."""

import getpass
import sys

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Workspace
from numbers.services import NumberError, number_add


class Command(BaseCommand):
    help = (
        "Add a WhatsApp number to a workspace. The access token is read from --token, or "
        "else prompted for (or read from standard input), so it stays out of shell history."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="workspace slug")
        parser.add_argument("--phone-number-id", required=True)
        parser.add_argument("--waba-id", required=True, help="WhatsApp Business Account id")
        parser.add_argument("--label", default="", help="default: Meta's verified name")
        parser.add_argument("--token", default=None, help="access token (default: prompt)")

    def handle(self, *args, **options):
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"no workspace with slug {options['workspace']!r}")
        token = options["token"]
        if token is None:
            token = (
                getpass.getpass("Access token: ") if sys.stdin.isatty() else sys.stdin.readline()
            )
        try:
            number = number_add(
                workspace=workspace,
                label=options["label"],
                phone_number_id=options["phone_number_id"],
                waba_id=options["waba_id"],
                access_token=token,
            )
        except NumberError as error:
            raise CommandError(error.message) from error
        self.stdout.write(
            f"added number {number.pk}: {number.display_phone_number} ({number.verified_name}), "
            f"quality {number.quality_rating or '-'}, tier {number.messaging_limit_tier or '-'}, "
            f"{number.max_mps} msg/s"
        )
