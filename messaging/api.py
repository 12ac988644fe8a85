"""REST API of the sending engine: GET /api/sending/."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging.selectors import sending_state


class SendingStateView(APIView):
    """The shared send rate and its recent changes, and each of your numbers' lanes."""

    @extend_schema(
        responses=inline_serializer(
            "SendingState",
            {
                "rate": serializers.FloatField(),
                "rate_min": serializers.FloatField(),
                "rate_max": serializers.FloatField(),
                "numbers": inline_serializer(
                    "LaneState",
                    {
                        "id": serializers.IntegerField(),
                        "max_mps": serializers.IntegerField(),
                        "lane_active": serializers.BooleanField(),
                        "due": serializers.IntegerField(),
                    },
                    many=True,
                ),
                "adjustments": inline_serializer(
                    "RateChange",
                    {
                        "at": serializers.DateTimeField(),
                        "old": serializers.FloatField(),
                        "new": serializers.FloatField(),
                        "reason": serializers.CharField(),
                    },
                    many=True,
                ),
            },
        )
    )
    def get(self, request):
        return Response(sending_state(user=request.user))
