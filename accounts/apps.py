from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Workspaces"

    def ready(self) -> None:
        # Connects the login lockout's failure counter to user_login_failed.
        from accounts import lockout  # noqa: F401
        from config.beat import install_periodic_tasks

        # Once per migrate run (sender = this app), after every app's tables exist.
        post_migrate.connect(install_periodic_tasks, sender=self, dispatch_uid="install_periodic")
