from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Workspaces"

    def ready(self) -> None:
        from config.beat import install_periodic_tasks

        # Once per migrate run (sender = this app), after every app's tables exist.
        post_migrate.connect(install_periodic_tasks, sender=self, dispatch_uid="install_periodic")
