"""Parsing parameters from Meta's components, rendering send components, previews."""

import pytest

from graph_simulator.seed import DEMO_PHONE_NUMBER_IDS, DEMO_TOKEN, demo_templates
from templates_sync.models import Template
from templates_sync.rendering import (
    RenderError,
    example_values,
    parse_parameters,
    preview_text,
    render_components,
    required_parameters,
    unused_values,
)

DEMO = {t["name"] + "/" + t["language"]: t for t in demo_templates()}


def template(components, parameter_format="POSITIONAL") -> Template:
    return Template(
        name="t",
        language="en_US",
        components=components,
        parameter_format=parameter_format,
        parameters=parse_parameters(components, parameter_format),
    )


def demo(key: str) -> Template:
    data = DEMO[key]
    made = template(data["components"], data["parameter_format"])
    made.name, made.language = data["name"], data["language"]
    return made


# -- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("seasonal_promo/en_US", ["body.1", "body.2"]),
        ("welcome_named/en_US", ["body.first_name", "body.member_id"]),
        ("order_update/en_US", ["header.1", "body.1", "body.2", "button.0"]),
        ("event_reminder/en_US", ["header.1"]),
        ("hello_world/en_US", []),
    ],
)
def test_parameters_of_the_demo_templates_are_parsed_exactly(key, expected):
    data = DEMO[key]
    assert parse_parameters(data["components"], data["parameter_format"]) == expected


def test_positional_variables_are_numbered_in_order_once_each():
    body = {"type": "BODY", "text": "{{2}} then {{10}} then {{1}} and {{ 2 }} again"}
    assert parse_parameters([body], "POSITIONAL") == ["body.1", "body.2", "body.10"]


def test_named_text_header_and_body_keep_the_names_in_order_of_use():
    components = [
        {"type": "HEADER", "format": "TEXT", "text": "Order {{order_id}}"},
        {"type": "BODY", "text": "Hi {{first_name}}, order {{order_id}} ships {{day}}."},
    ]
    assert parse_parameters(components, "NAMED") == [
        "header.order_id",
        "body.first_name",
        "body.order_id",
        "body.day",
    ]


@pytest.mark.parametrize("media", ["IMAGE", "VIDEO", "DOCUMENT"])
def test_a_media_header_needs_header_1_even_in_named_templates(media):
    components = [{"type": "HEADER", "format": media}, {"type": "BODY", "text": "Hi {{name}}"}]
    assert parse_parameters(components, "NAMED") == ["header.1", "body.name"]


def test_a_location_header_needs_latitude_and_longitude():
    components = [{"type": "HEADER", "format": "LOCATION"}, {"type": "BODY", "text": "Visit us"}]
    assert parse_parameters(components, "POSITIONAL") == ["header.latitude", "header.longitude"]


def test_only_url_buttons_with_a_variable_need_a_suffix_by_their_index():
    components = [
        {"type": "BODY", "text": "Hello"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "URL", "text": "Home", "url": "https://shop.example/"},
                {"type": "QUICK_REPLY", "text": "Stop"},
                {"type": "URL", "text": "Track", "url": "https://shop.example/t/{{1}}"},
                {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+15550000000"},
            ],
        },
    ]
    assert parse_parameters(components, "POSITIONAL") == ["button.2"]


# -- rendering ------------------------------------------------------------------------------

ORDER_VALUES = {
    "header.1": "https://cdn.example.com/order.jpg",
    "body.1": " Asha ",
    "body.2": "A-123",
    "button.0": "track/123",
}
ORDER_COMPONENTS = [
    {
        "type": "header",
        "parameters": [{"type": "image", "image": {"link": "https://cdn.example.com/order.jpg"}}],
    },
    {
        "type": "body",
        "parameters": [{"type": "text", "text": "Asha"}, {"type": "text", "text": "A-123"}],
    },
    {
        "type": "button",
        "sub_type": "url",
        "index": "0",
        "parameters": [{"type": "text", "text": "track/123"}],
    },
]


def test_media_header_body_and_url_button_render_exactly():
    order = demo("order_update/en_US")
    assert required_parameters(order) == ["header.1", "body.1", "body.2", "button.0"]
    assert render_components(order, ORDER_VALUES) == ORDER_COMPONENTS


def test_named_parameters_render_with_their_names():
    welcome = demo("welcome_named/en_US")
    assert render_components(welcome, {"body.first_name": "Asha", "body.member_id": "M-7"}) == [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "parameter_name": "first_name", "text": "Asha"},
                {"type": "text", "parameter_name": "member_id", "text": "M-7"},
            ],
        }
    ]


def test_a_text_header_renders_as_a_header_text_parameter():
    reminder = demo("event_reminder/en_US")
    assert render_components(reminder, {"header.1": "Launch"}) == [
        {"type": "header", "parameters": [{"type": "text", "text": "Launch"}]}
    ]


def test_a_template_without_parameters_renders_no_components():
    assert render_components(demo("hello_world/en_US"), {"anything": "x"}) == []


def test_missing_and_blank_values_are_all_reported_and_extra_values_ignored():
    order = demo("order_update/en_US")
    values = {"body.1": "Asha", "body.2": "   ", "coupon": "FALL25", "body.3": "x"}
    with pytest.raises(RenderError) as refused:
        render_components(order, values)
    assert refused.value.problems == {
        "header.1": "missing value",
        "body.2": "blank value",
        "button.0": "missing value",
    }
    assert unused_values(order, values) == ["body.3", "coupon"]
    assert render_components(order, {**ORDER_VALUES, "coupon": "FALL25"}) == ORDER_COMPONENTS


def test_bad_values_are_reported_per_parameter():
    order = demo("order_update/en_US")
    with pytest.raises(RenderError) as refused:
        render_components(
            order,
            {
                "header.1": "order.jpg",
                "body.1": "Asha\nSharma",
                "body.2": "A-1     23",
                "button.0": "track 123",
            },
        )
    assert refused.value.problems == {
        "header.1": "must be an http(s):// link to the media",
        "body.1": "must not contain new lines or tabs",
        "body.2": "must not contain more than 4 consecutive spaces",
        "button.0": "must not contain spaces (it is the end of a link)",
    }


def test_a_body_too_long_once_filled_in_is_reported():
    promo = demo("seasonal_promo/en_US")
    with pytest.raises(RenderError) as refused:
        render_components(promo, {"body.1": "A" * 1000, "body.2": "FALL25"})
    assert refused.value.problems == {
        "body": "text is 1043 characters with these values; the limit is 1024"
    }


def test_a_location_header_renders_coordinates_and_checks_them():
    visit = template(
        [{"type": "HEADER", "format": "LOCATION"}, {"type": "BODY", "text": "Visit us"}]
    )
    assert render_components(
        visit, {"header.latitude": "12.97", "header.longitude": "77.59", "header.name": "Store"}
    ) == [
        {
            "type": "header",
            "parameters": [
                {
                    "type": "location",
                    "location": {"latitude": "12.97", "longitude": "77.59", "name": "Store"},
                }
            ],
        }
    ]
    with pytest.raises(RenderError) as refused:
        render_components(visit, {"header.latitude": "97", "header.longitude": "east"})
    assert refused.value.problems == {
        "header.latitude": "must be a number between -90 and 90",
        "header.longitude": "must be a number between -180 and 180",
    }


# -- preview --------------------------------------------------------------------------------


def test_preview_shows_header_body_and_footer_text():
    assert (
        preview_text(demo("event_reminder/en_US"), {"header.1": "Launch party"})
        == "Reminder: Launch party\n\nSee you soon. Tap below if you cannot make it."
    )
    assert (
        preview_text(demo("welcome_named/en_US"), {"body.first_name": "Asha"})
        == "Welcome Asha! Your member id is {{member_id}}.\n\nReply STOP to opt out"
    )
    assert (
        preview_text(demo("order_update/en_US"), ORDER_VALUES)
        == "[IMAGE]\n\nHi Asha, your order A-123 is on its way."
    )


def test_example_values_come_from_metas_examples():
    assert example_values(demo("order_update/en_US")) == {
        "header.1": "https://example.invalid/h.jpg",
        "body.1": "Asha",
        "body.2": "A-123",
        "button.0": "track/123",
    }
    assert example_values(demo("welcome_named/en_US")) == {
        "body.first_name": "Asha",
        "body.member_id": "M-1001",
    }


# -- the simulator accepts what we render ---------------------------------------------------


@pytest.mark.parametrize(
    ("key", "values"),
    [
        ("order_update/en_US", ORDER_VALUES),
        ("welcome_named/en_US", {"body.first_name": "Asha", "body.member_id": "M-7"}),
        ("event_reminder/en_US", {"header.1": "Launch"}),
        ("seasonal_promo/es", {"body.1": "Asha", "body.2": "FALL25"}),
        ("hello_world/en_US", {}),
    ],
)
def test_rendered_components_are_accepted_by_the_graph_simulator(sim, key, values):
    from messaging.graph import GraphClient

    rendered = demo(key)
    components = render_components(rendered, values)
    GraphClient(DEMO_TOKEN).send_template(
        phone_number_id=DEMO_PHONE_NUMBER_IDS[0],
        to="919812345678",
        name=rendered.name,
        language=rendered.language,
        components=components,
    )
    [accepted] = sim.messages(to="919812345678")
    assert accepted["template"] == {"name": rendered.name, "language": rendered.language}
    assert accepted["components"] == (components or None)
