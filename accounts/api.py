"""REST API for the caller's workspaces."""

from rest_framework import generics, serializers

from accounts.models import Workspace


class WorkspaceSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Workspace
        fields = ["id", "name", "slug", "role", "time_zone", "created_at"]

    def get_role(self, workspace) -> str:
        user = self.context["request"].user
        return next((m.role for m in workspace.memberships.all() if m.user_id == user.pk), "")


class WorkspaceList(generics.ListAPIView):
    serializer_class = WorkspaceSerializer

    def get_queryset(self):
        return Workspace.objects.filter(memberships__user=self.request.user).prefetch_related(
            "memberships"
        )


class WorkspaceDetail(generics.RetrieveAPIView):
    serializer_class = WorkspaceSerializer

    def get_queryset(self):
        return Workspace.objects.filter(memberships__user=self.request.user).prefetch_related(
            "memberships"
        )
