"""The OpenAPI schema documents what the API answers: its errors, the sync endpoint's shape,
and what a request body may not be (blank strings, empty lists)."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """The personas' passwords are hashed with a fast hasher: these tests are not about auth."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


WRITES = {"post", "put", "patch", "delete"}


@pytest.fixture
def schema(api, owner):
    response = api(owner).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def ref_of(response):
    return response["content"]["application/json"]["schema"]["$ref"]


def test_every_operation_documents_the_input_policys_400(schema):
    for path, method, operation in operations(schema):
        assert ref_of(operation["responses"]["400"]) == "#/components/schemas/ValidationError", (
            method,
            path,
        )


def test_operations_naming_an_object_document_404_and_writes_to_it_409(schema):
    for path, method, operation in operations(schema):
        codes = set(operation["responses"])
        names_object = "{" in path
        paged = any(p["name"] == "page" for p in operation.get("parameters", []))
        assert ("404" in codes) is (names_object or paged), (method, path)
        assert ("409" in codes) is (names_object and method in WRITES), (method, path)


def test_authenticated_operations_document_401_and_403(schema):
    responses = schema["paths"]["/api/numbers/"]["get"]["responses"]
    for code in ("401", "403", "404"):
        assert ref_of(responses[code]) == "#/components/schemas/ErrorDetail"
    assert schema["components"]["schemas"]["ErrorDetail"]["required"] == ["detail"]


def test_the_template_sync_state_is_documented_and_answered_as_a_plain_list(schema, api, owner):
    documented = schema["paths"]["/api/templates/sync/"]["get"]["responses"]["200"]
    assert documented["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/WabaSync"},
    }
    assert api(owner).get("/api/templates/sync/").json() == []


def test_required_strings_may_not_be_blank_and_lists_not_empty(schema):
    campaign = schema["components"]["schemas"]["CampaignWriteRequest"]["properties"]
    assert (campaign["name"]["minLength"], campaign["name"]["pattern"]) == (1, r"\S")
    assert campaign["numbers"]["minItems"] == 1
    assert campaign["templates"]["minItems"] == 1
    number = schema["components"]["schemas"]["NumberRequest"]["properties"]
    assert (number["access_token"]["minLength"], number["access_token"]["pattern"]) == (1, r"\S")
    # A validator's own pattern is kept; blank is allowed for the label, so it has none.
    assert number["phone_number_id"]["pattern"] == "^[0-9]{1,32}$"
    assert "pattern" not in number["label"]
