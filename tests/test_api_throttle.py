"""API writes are throttled per user at API_WRITE_RATE, counted in Redis; reads are not."""

import pytest

from config.redis import get_redis
from tests.testapp.models import Gadget

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.testapp.urls")]

GADGETS = "/api/test/gadgets/"


@pytest.fixture(autouse=True)
def three_writes_a_minute(settings):
    settings.API_WRITE_RATE = "3/min"


def test_writes_past_the_rate_are_429_with_retry_after_and_change_nothing(api, owner):
    client = api(owner)
    for name in ["a", "b", "c"]:
        assert client.post(GADGETS, {"name": name}, format="json").status_code == 201
    refused = client.post(GADGETS, {"name": "d"}, format="json")
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    assert refused.json()["detail"].startswith("Request was throttled.")
    gadget = Gadget.objects.order_by("pk").first()
    assert client.patch(f"{GADGETS}{gadget.pk}/", {"name": "z"}, format="json").status_code == 429
    assert client.delete(f"{GADGETS}{gadget.pk}/").status_code == 429
    assert sorted(Gadget.objects.values_list("name", flat=True)) == ["a", "b", "c"]


def test_reads_are_not_throttled(api, owner):
    client = api(owner)
    for _ in range(3):
        client.post(GADGETS, {"name": "x"}, format="json")
    for _ in range(10):
        assert client.get(GADGETS).status_code == 200


def test_each_user_has_their_own_count_kept_in_redis(api, owner, outsider):
    for _ in range(3):
        api(owner).post(GADGETS, {"name": "x"}, format="json")
    assert api(owner).post(GADGETS, {"name": "x"}, format="json").status_code == 429
    assert api(outsider).post(GADGETS, {"name": "y"}, format="json").status_code == 201
    # Django's cache is the shared Redis, so every web worker sees the same counts.
    assert get_redis().exists(f"cache:1:throttle_write_{owner.pk}")
