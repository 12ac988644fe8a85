"""Every template shape Meta sends: what a send needs, the exact components rendered, the
simulator accepting them (and refusing broken ones with Meta's codes), the shapes the
product cannot send marked at sync, refused by pre-flight and by the import."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from campaigns.importer import ImportRefused
from campaigns.models import Recipient
from campaigns.preflight import campaign_preflight
from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, shape_templates
from messaging.graph import GraphClient, GraphError
from templates_sync.models import Template
from templates_sync.rendering import (
    RenderError,
    column_aliases,
    example_values,
    optional_parameters,
    parse_parameters,
    render_components,
    unsendable_reason,
    unused_values,
)
from templates_sync.services import templates_sync
from tests.campaigns.conftest import run_import
from tests.factories import make_campaign, make_number, make_template

PNID = DEMO_PHONE_NUMBER_IDS[0]
SHAPES = {t["name"]: t for t in shape_templates()}
EXPIRY = "2099-01-01T00:00:00+00:00"
EXPIRY_MS = int(datetime(2099, 1, 1, tzinfo=UTC).timestamp() * 1000)


def shape(name: str) -> Template:
    data = SHAPES[name]
    return Template(
        name=name,
        language="en_US",
        components=copy.deepcopy(data["components"]),
        parameter_format=data["parameter_format"],
        parameters=parse_parameters(data["components"], data["parameter_format"]),
    )


def text(value: str) -> dict[str, str]:
    return {"type": "text", "text": value}


def body(*values: str) -> dict:
    return {"type": "body", "parameters": [text(v) for v in values]}


def url_button(index: int, suffix: str) -> dict:
    return {"type": "button", "sub_type": "url", "index": str(index), "parameters": [text(suffix)]}


def image(link: str) -> dict:
    return {"type": "header", "parameters": [{"type": "image", "image": {"link": link}}]}


# name -> (parameters, values, rendered components)
CASES = {
    "coupon_offer": (
        ["body.1", "button.1"],
        {"body.1": "Asha", "button.1": "FALL25"},
        [
            body("Asha"),
            {
                "type": "button",
                "sub_type": "copy_code",
                "index": "1",
                "parameters": [{"type": "coupon_code", "coupon_code": "FALL25"}],
            },
        ],
    ),
    "flash_offer": (
        ["header.1", "body.1", "lto.expiration", "button.0", "button.1"],
        {
            "header.1": "https://cdn.example.com/sale.jpg",
            "body.1": "Asha",
            "lto.expiration": EXPIRY,
            "button.0": "FLASH30",
            "button.1": "sale?ref=asha",
        },
        [
            image("https://cdn.example.com/sale.jpg"),
            body("Asha"),
            {
                "type": "limited_time_offer",
                "parameters": [
                    {
                        "type": "limited_time_offer",
                        "limited_time_offer": {"expiration_time_ms": EXPIRY_MS},
                    }
                ],
            },
            {
                "type": "button",
                "sub_type": "copy_code",
                "index": "0",
                "parameters": [{"type": "coupon_code", "coupon_code": "FLASH30"}],
            },
            url_button(1, "sale?ref=asha"),
        ],
    ),
    "summer_carousel": (
        [
            "body.1",
            "card.0.header",
            "card.0.body.1",
            "card.0.body.2",
            "card.0.button.1",
            "card.1.header",
            "card.1.button.1",
        ],
        {
            "body.1": "Asha",
            "card.0.header": "https://cdn.example.com/sandals.jpg",
            "card.0.body.1": "Sandals",
            "card.0.body.2": "$20",
            "card.0.button.1": "sandals",
            "card.1.header": "https://cdn.example.com/hats.mp4",
            "card.1.button.1": "hats",
        },
        [
            body("Asha"),
            {
                "type": "carousel",
                "cards": [
                    {
                        "card_index": 0,
                        "components": [
                            image("https://cdn.example.com/sandals.jpg"),
                            body("Sandals", "$20"),
                            url_button(1, "sandals"),
                        ],
                    },
                    {
                        "card_index": 1,
                        "components": [
                            {
                                "type": "header",
                                "parameters": [
                                    {
                                        "type": "video",
                                        "video": {"link": "https://cdn.example.com/hats.mp4"},
                                    }
                                ],
                            },
                            url_button(1, "hats"),
                        ],
                    },
                ],
            },
        ],
    ),
    "bundle_picks": (
        ["body.1", "button.0.sections"],
        {"body.1": "Asha", "button.0.sections": "Summer: SKU1, SKU2; Hats: SKU3"},
        [
            body("Asha"),
            {
                "type": "button",
                "sub_type": "mpm",
                "index": "0",
                "parameters": [
                    {
                        "type": "action",
                        "action": {
                            "thumbnail_product_retailer_id": "SKU1",
                            "sections": [
                                {
                                    "title": "Summer",
                                    "product_items": [
                                        {"product_retailer_id": "SKU1"},
                                        {"product_retailer_id": "SKU2"},
                                    ],
                                },
                                {
                                    "title": "Hats",
                                    "product_items": [{"product_retailer_id": "SKU3"}],
                                },
                            ],
                        },
                    }
                ],
            },
        ],
    ),
    "catalog_intro": (
        [],
        {"button.0.thumbnail": "SKU9"},
        [
            {
                "type": "button",
                "sub_type": "catalog",
                "index": "0",
                "parameters": [
                    {"type": "action", "action": {"thumbnail_product_retailer_id": "SKU9"}}
                ],
            }
        ],
    ),
    "gif_hello": (
        ["header.1", "body.1"],
        {"header.1": "https://cdn.example.com/hi.gif", "body.1": "Asha"},
        [
            {
                "type": "header",
                "parameters": [{"type": "gif", "gif": {"link": "https://cdn.example.com/hi.gif"}}],
            },
            body("Asha"),
        ],
    ),
    "product_spotlight": (
        ["header.product", "header.catalog_id"],
        {"header.product": "SKU-42", "header.catalog_id": "1234567890"},
        [
            {
                "type": "header",
                "parameters": [
                    {
                        "type": "product",
                        "product": {"product_retailer_id": "SKU-42", "catalog_id": "1234567890"},
                    }
                ],
            }
        ],
    ),
    "invoice_ready": (
        ["header.1", "body.1"],
        {"header.1": "https://files.example.com/invoices/inv-7.pdf", "body.1": "INV-7"},
        [
            {
                "type": "header",
                "parameters": [
                    {
                        "type": "document",
                        "document": {
                            "link": "https://files.example.com/invoices/inv-7.pdf",
                            "filename": "inv-7.pdf",
                        },
                    }
                ],
            },
            body("INV-7"),
        ],
    ),
    "survey_flow": (
        [],
        {"button.0": "survey-asha-1"},
        [
            {
                "type": "button",
                "sub_type": "flow",
                "index": "0",
                "parameters": [{"type": "action", "action": {"flow_token": "survey-asha-1"}}],
            }
        ],
    ),
    "login_code": (
        ["body.1"],
        {"body.1": "482913"},
        [body("482913"), url_button(0, "482913")],
    ),
}


@pytest.fixture
def client(sim):
    sim.upsert_templates(*shape_templates(), notify=False)
    return GraphClient(DEMO_TOKEN, base_url=sim.base_url, timeout=(1.0, 3.0))


def send(client, name, components, to="919812345678"):
    return client.send_template(
        phone_number_id=PNID, to=to, name=name, language="en_US", components=components
    )


# -- parse, render, send -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_shape_needs_exactly_these_parameters(name):
    assert shape(name).parameters == CASES[name][0]
    assert unsendable_reason(SHAPES[name]["components"], "POSITIONAL") == ""


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_shape_renders_exactly_and_the_simulator_accepts_it(client, sim, name):
    _, values, expected = CASES[name]
    rendered = render_components(shape(name), values)
    assert rendered == expected
    result = send(client, name, rendered)
    [accepted] = sim.messages()
    assert (accepted["wamid"], accepted["components"]) == (result.wamid, expected)
    assert accepted["template"] == {"name": name, "language": "en_US"}


def test_optional_values_default_as_meta_documents():
    # Document filename from the link; flow token "unused"; no catalog thumbnail.
    rendered = render_components(shape("survey_flow"), {})
    assert rendered[0]["parameters"] == [{"type": "action", "action": {"flow_token": "unused"}}]
    assert render_components(shape("catalog_intro"), {}) == [
        {"type": "button", "sub_type": "catalog", "index": "0"}
    ]
    named = render_components(
        shape("invoice_ready"),
        {
            "header.1": "https://files.example.com/get?id=7",
            "header.filename": "Invoice 7.pdf",
            "body.1": "INV-7",
        },
    )
    assert named[0]["parameters"][0]["document"]["filename"] == "Invoice 7.pdf"
    thumb = render_components(
        shape("bundle_picks"),
        {"body.1": "A", "button.0.sections": "All: S1, S2", "button.0.thumbnail": "S2"},
    )
    assert thumb[1]["parameters"][0]["action"]["thumbnail_product_retailer_id"] == "S2"


def test_optional_and_alias_keys_are_known():
    assert optional_parameters(shape("invoice_ready")) == ["header.filename"]
    assert optional_parameters(shape("bundle_picks")) == ["button.0.thumbnail"]
    assert optional_parameters(shape("survey_flow")) == ["button.0"]
    assert column_aliases(shape("coupon_offer"))["button.1"] == ["coupon_code", "coupon"]
    assert column_aliases(shape("flash_offer"))["lto.expiration"] == [
        "expiration",
        "offer_expiration",
        "expires_at",
    ]
    assert unused_values(shape("invoice_ready"), {"header.filename": "a.pdf", "x": "1"}) == ["x"]


@pytest.mark.parametrize(
    ("name", "values", "problems"),
    [
        pytest.param(
            "coupon_offer",
            {"body.1": "Asha", "button.1": "FALL-25!"},
            {"button.1": "must be letters and digits only, at most 15 characters"},
            id="coupon-characters",
        ),
        pytest.param(
            "flash_offer",
            {
                "header.1": "https://cdn.example.com/s.jpg",
                "body.1": "A",
                "lto.expiration": "2001-01-01T00:00:00Z",
                "button.0": "X1",
                "button.1": "s",
            },
            {"lto.expiration": "the offer has already expired"},
            id="offer-expired",
        ),
        pytest.param(
            "flash_offer",
            {
                "header.1": "https://cdn.example.com/s.jpg",
                "body.1": "A",
                "lto.expiration": "next tuesday",
                "button.0": "X1",
                "button.1": "s",
            },
            {"lto.expiration": "must be a date and time (2026-12-31T23:59:00+00:00) or epoch ms"},
            id="offer-not-a-date",
        ),
        pytest.param(
            "summer_carousel",
            {"body.1": "A", "card.0.header": "not a link"},
            {
                "card.0.header": "must be an http(s):// link to the media",
                "card.0.body.1": "missing value",
                "card.0.body.2": "missing value",
                "card.0.button.1": "missing value",
                "card.1.header": "missing value",
                "card.1.button.1": "missing value",
            },
            id="carousel-cards",
        ),
        pytest.param(
            "bundle_picks",
            {"body.1": "A", "button.0.sections": "SKU1, SKU2"},
            {
                "button.0.sections": 'must read "Section title: product_id, product_id; '
                'Other title: ..."'
            },
            id="mpm-no-title",
        ),
        pytest.param(
            "bundle_picks",
            {"body.1": "A", "button.0.sections": "All: " + ", ".join(f"S{i}" for i in range(31))},
            {
                "button.0.sections": "1 sections and 31 products; Meta shows at most 10 "
                "sections and 30 products"
            },
            id="mpm-too-many",
        ),
        pytest.param(
            "product_spotlight",
            {"header.product": "SKU-1", "header.catalog_id": "shop"},
            {"header.catalog_id": "must be the catalog's numeric id"},
            id="catalog-id",
        ),
        pytest.param(
            "invoice_ready",
            {"header.1": "https://files.example.com/download", "body.1": "I"},
            {
                "header.filename": "missing value: the link does not end in a file name, so "
                "give one (e.g. menu.pdf)"
            },
            id="document-no-filename",
        ),
        pytest.param(
            "login_code",
            {"body.1": "1234567890123456"},
            {"body.1": "must be letters and digits only, at most 15 characters"},
            id="otp-too-long",
        ),
    ],
)
def test_bad_values_for_each_shape_are_named(name, values, problems):
    with pytest.raises(RenderError) as caught:
        render_components(shape(name), values)
    assert caught.value.problems == problems


def test_example_values_fill_copy_code_and_carousel_cards():
    values = example_values(shape("summer_carousel"))
    assert values == {
        "body.1": "Asha",
        "card.0.header": "https://example.invalid/card.jpg",
        "card.0.body.1": "Sandals",
        "card.0.body.2": "$20",
        "card.0.button.1": "1",
        "card.1.header": "https://example.invalid/card.jpg",
        "card.1.button.1": "2",
    }
    assert example_values(shape("coupon_offer")) == {"body.1": "Asha", "button.1": "FALL25"}


# -- the simulator refuses broken shapes with Meta's codes --------------------------------


def _edit(name, change):
    components = copy.deepcopy(CASES[name][2])
    change(components)
    return components


def _drop(index):
    return lambda c: c.pop(index)


def _set(path, value):
    def change(components):
        target = components
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("name", "change", "code"),
    [
        pytest.param("coupon_offer", _drop(1), 132000, id="copy-code-missing"),
        pytest.param(
            "coupon_offer",
            _set([1, "parameters"], [{"type": "text", "text": "FALL25"}]),
            132012,
            id="copy-code-as-text",
        ),
        pytest.param(
            "coupon_offer",
            _set([1, "parameters", 0, "coupon_code"], "FALL 25"),
            131009,
            id="copy-code-bad",
        ),
        pytest.param("flash_offer", _drop(2), 131008, id="offer-expiration-missing"),
        pytest.param(
            "flash_offer",
            _set([2, "parameters", 0, "limited_time_offer", "expiration_time_ms"], "soon"),
            131009,
            id="offer-expiration-not-int",
        ),
        pytest.param(
            "flash_offer",
            _set([2, "parameters", 0, "limited_time_offer", "expiration_time_ms"], 1000),
            131009,
            id="offer-expired",
        ),
        pytest.param("summer_carousel", _drop(1), 132000, id="carousel-missing"),
        pytest.param(
            "summer_carousel", lambda c: c[1]["cards"].pop(), 132000, id="carousel-one-card"
        ),
        pytest.param(
            "summer_carousel",
            _set([1, "cards", 1, "card_index"], 0),
            131009,
            id="carousel-repeated-index",
        ),
        pytest.param(
            "summer_carousel",
            _set([1, "cards", 1, "components", 0], image("https://cdn.example.com/h.jpg")),
            132012,
            id="carousel-card-header-format",
        ),
        pytest.param(
            "summer_carousel",
            lambda c: c[1]["cards"][0]["components"][1]["parameters"].pop(),
            132000,
            id="carousel-card-body-count",
        ),
        pytest.param(
            "summer_carousel",
            lambda c: c[1]["cards"][0]["components"].pop(2),
            132000,
            id="carousel-card-url-missing",
        ),
        pytest.param(
            "bundle_picks",
            _set([1, "parameters", 0, "action", "sections"], []),
            131008,
            id="mpm-no-sections",
        ),
        pytest.param(
            "bundle_picks",
            lambda c: c[1]["parameters"][0]["action"].pop("thumbnail_product_retailer_id"),
            131008,
            id="mpm-no-thumbnail",
        ),
        pytest.param(
            "gif_hello",
            _set([0], image("https://cdn.example.com/hi.gif")),
            132012,
            id="gif-as-image",
        ),
        pytest.param(
            "product_spotlight",
            lambda c: c[0]["parameters"][0]["product"].pop("catalog_id"),
            131008,
            id="product-no-catalog",
        ),
        pytest.param(
            "invoice_ready",
            lambda c: c[0]["parameters"][0]["document"].pop("filename"),
            131008,
            id="document-no-filename",
        ),
        pytest.param(
            "survey_flow",
            _set([0, "parameters", 0, "action"], {}),
            131008,
            id="flow-no-token",
        ),
        pytest.param("survey_flow", _drop(0), 132000, id="flow-button-missing"),
        pytest.param("login_code", _drop(1), 132000, id="otp-button-missing"),
    ],
)
def test_the_simulator_refuses_broken_shapes_with_metas_code(client, sim, name, change, code):
    with pytest.raises(GraphError) as caught:
        send(client, name, _edit(name, change))
    assert caught.value.code == code
    assert sim.messages() == []


# -- shapes the product cannot send ---------------------------------------------------------

BODY = {"type": "BODY", "text": "Hi {{1}}"}
CARD = {"components": [{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "x"}]}


@pytest.mark.parametrize(
    ("components", "reason"),
    [
        pytest.param(
            [BODY, {"type": "BUTTONS", "buttons": [{"type": "APP", "text": "Open"}]}],
            "button 0 is APP, which the product cannot fill",
            id="app-button",
        ),
        pytest.param(
            [BODY, {"type": "CALL_PERMISSION_REQUEST"}],
            "it has a CALL_PERMISSION_REQUEST component, which the product cannot fill",
            id="unknown-component",
        ),
        pytest.param(
            [BODY, {"type": "CAROUSEL", "cards": [CARD]}],
            "its carousel has 1 cards; Meta sends 2 to 10",
            id="one-card",
        ),
        pytest.param(
            [
                BODY,
                {
                    "type": "CAROUSEL",
                    "cards": [
                        {"components": [{"type": "HEADER", "format": "PRODUCT"}]},
                        {"components": [{"type": "HEADER", "format": "PRODUCT"}]},
                    ],
                },
            ],
            "carousel card 0 has a PRODUCT header; the product sends image and video cards only",
            id="product-carousel",
        ),
        pytest.param(
            [
                {"type": "BODY", "text": "Your code"},
                {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE"}]},
            ],
            "its one-time-password button needs a body with exactly one variable",
            id="otp-without-code",
        ),
        pytest.param(
            [{"type": "HEADER", "format": "HOLOGRAM"}, BODY],
            "its header is HOLOGRAM, which the product cannot fill",
            id="unknown-header",
        ),
    ],
)
def test_unsupported_shapes_have_a_reason_and_never_render(components, reason):
    assert unsendable_reason(components, "POSITIONAL") == reason
    made = Template(components=components, parameter_format="POSITIONAL", parameters=[])
    with pytest.raises(RenderError) as caught:
        render_components(made, {"body.1": "Asha"})
    assert caught.value.problems == {"template": f"cannot be sent by this product: {reason}"}


APP_TEMPLATE = {
    "name": "open_app",
    "language": "en_US",
    "category": "MARKETING",
    "components": [BODY, {"type": "BUTTONS", "buttons": [{"type": "APP", "text": "Open"}]}],
}


@pytest.mark.django_db
def test_sync_marks_unsendable_shapes_and_keeps_the_sendable_ones_clean(sim, workspace, number):
    sim.upsert_templates(*shape_templates(), APP_TEMPLATE, notify=False)
    templates_sync(workspace=workspace, number=number)
    reasons = dict(
        Template.objects.filter(workspace=workspace).values_list("name", "unsendable_reason")
    )
    assert reasons["open_app"] == "button 0 is APP, which the product cannot fill"
    assert {name: reasons[name] for name in CASES} == dict.fromkeys(CASES, "")
    carousel = Template.objects.get(workspace=workspace, name="summer_carousel")
    assert carousel.parameters == CASES["summer_carousel"][0]
    assert Template.objects.get(name="gif_hello").header_format == "GIF"


@pytest.mark.django_db
def test_preflight_refuses_an_unsendable_template_once_not_row_by_row(workspace):
    number = make_number(workspace=workspace)
    good = make_template(workspace=workspace)
    bad = make_template(
        workspace=workspace,
        name="open_app",
        components=APP_TEMPLATE["components"],
        unsendable_reason="button 0 is APP, which the product cannot fill",
    )
    campaign = make_campaign(workspace=workspace, numbers=[number], templates=[good])
    run_import(campaign, "phone,1,2\n9812345678,Asha,A1\n9812345679,Ravi,R2\n")
    campaign.campaign_templates.update(template=bad)
    Recipient.objects.filter(campaign=campaign).update(template=bad)
    result = campaign_preflight(campaign=campaign, check_meta=False)
    assert result.problems == [
        "template 'open_app' (en_US) cannot be sent by this product: button 0 is APP, which "
        "the product cannot fill; replace it in the campaign"
    ]
    assert result.ok is False


@pytest.mark.django_db
def test_import_refuses_a_campaign_with_an_unsendable_template(workspace):
    number = make_number(workspace=workspace)
    bad = make_template(
        workspace=workspace,
        name="open_app",
        components=APP_TEMPLATE["components"],
        unsendable_reason="button 0 is APP, which the product cannot fill",
    )
    campaign = make_campaign(workspace=workspace, numbers=[number], templates=[bad])
    with pytest.raises(ImportRefused, match="'open_app' cannot be sent by this product"):
        run_import(campaign, "phone,1\n9812345678,Asha\n")
    assert not Recipient.objects.filter(campaign=campaign).exists()


# -- CSV columns for each shape -------------------------------------------------------------


def _campaign_with(workspace, name):
    data = SHAPES[name]
    template = make_template(
        workspace=workspace,
        name=name,
        components=data["components"],
        category=data["category"],
    )
    number = make_number(workspace=workspace)
    return make_campaign(workspace=workspace, numbers=[number], templates=[template])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "csv", "variables"),
    [
        pytest.param(
            "coupon_offer",
            "phone,1,coupon_code\n9812345678,Asha,FALL25\n",
            {"body.1": "Asha", "button.1": "FALL25"},
            id="coupon-code-column",
        ),
        pytest.param(
            "flash_offer",
            "phone,header,1,lto.expiration,button.0,button.1\n"
            f"9812345678,https://cdn.example.com/s.jpg,Asha,{EXPIRY},FLASH30,sale\n",
            {
                "header.1": "https://cdn.example.com/s.jpg",
                "body.1": "Asha",
                "lto.expiration": EXPIRY,
                "button.0": "FLASH30",
                "button.1": "sale",
            },
            id="offer-columns",
        ),
        pytest.param(
            "summer_carousel",
            "phone,1,card.0.header,card_0_body_1,card.0.body.2,card.0.button.1,card.1.header,"
            "card.1.button.1\n"
            "9812345678,Asha,https://c.example.com/a.jpg,Sandals,$20,sandals,"
            "https://c.example.com/h.mp4,hats\n",
            {
                "body.1": "Asha",
                "card.0.header": "https://c.example.com/a.jpg",
                "card.0.body.1": "Sandals",
                "card.0.body.2": "$20",
                "card.0.button.1": "sandals",
                "card.1.header": "https://c.example.com/h.mp4",
                "card.1.button.1": "hats",
            },
            id="card-columns",
        ),
        pytest.param(
            "bundle_picks",
            "phone,1,products,thumbnail\n9812345678,Asha,Summer: S1; Hats: S2,S2\n",
            {
                "body.1": "Asha",
                "button.0.sections": "Summer: S1; Hats: S2",
                "button.0.thumbnail": "S2",
            },
            id="mpm-columns",
        ),
        pytest.param(
            "invoice_ready",
            "phone,header,1,filename,name\n"
            "9812345678,https://f.example.com/get?id=1,INV-1,Invoice 1.pdf,Asha\n",
            {
                "header.1": "https://f.example.com/get?id=1",
                "body.1": "INV-1",
                "header.filename": "Invoice 1.pdf",
            },
            id="document-filename-column",
        ),
        pytest.param(
            "survey_flow",
            "phone,flow_token\n9812345678,tok-1\n",
            {"button.0": "tok-1"},
            id="flow-token-column",
        ),
        pytest.param(
            "survey_flow",
            "phone,name\n9812345678,Asha\n",
            {},
            id="optional-columns-may-be-absent",
        ),
    ],
)
def test_csv_columns_fill_each_shape(workspace, name, csv, variables):
    campaign = _campaign_with(workspace, name)
    job = run_import(campaign, csv)
    [recipient] = Recipient.objects.filter(campaign=campaign)
    assert recipient.variables == variables, job.notes
    render_components(recipient.template, recipient.variables)  # and it renders


@pytest.mark.django_db
def test_a_bad_shape_value_in_the_csv_rejects_that_row_with_the_reason(workspace):
    campaign = _campaign_with(workspace, "coupon_offer")
    job = run_import(campaign, "phone,1,coupon_code\n9812345678,Asha,FALL25\n9812345679,Ravi,X-1\n")
    assert [r.phone for r in Recipient.objects.filter(campaign=campaign)] == ["+919812345678"]
    assert (job.accepted, job.rejected) == (1, 1)
    [error] = job.row_errors.all()
    assert (error.row, error.phone) == (3, "+919812345679")
    assert error.reason == (
        "cannot fill template 'coupon_offer': button.1: must be letters and digits only, at "
        "most 15 characters (column 'coupon_code')"
    )
