from django.urls import include, path
from rest_framework import routers, serializers, viewsets

from accounts.tenancy import WorkspaceScopedMixin
from config.urls import urlpatterns as project_urls
from tests.testapp.models import Gadget


class GadgetSerializer(serializers.ModelSerializer):
    class Meta:
        model = Gadget
        fields = ["id", "name", "api_key"]
        extra_kwargs = {"api_key": {"write_only": True}}


class GadgetViewSet(WorkspaceScopedMixin, viewsets.ModelViewSet):
    queryset = Gadget.objects.order_by("pk")
    serializer_class = GadgetSerializer


router = routers.SimpleRouter()
router.register("gadgets", GadgetViewSet)
urlpatterns = [path("api/test/", include(router.urls)), *project_urls]
