"""The WhatsApp-style preview of a template: its parts, filled with values or Meta's examples,
and the include that shows them as escaped text."""

from django.template.loader import render_to_string

from graph_simulator.seed import demo_templates
from templates_sync.models import Template
from templates_sync.preview import template_preview
from templates_sync.rendering import parse_parameters

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
    return template(DEMO[key]["components"], DEMO[key]["parameter_format"])


def test_an_image_header_template_shows_every_part_with_meta_examples():
    assert template_preview(demo("order_update/en_US")) == {
        "header": {"format": "IMAGE", "text": ""},
        "body": "Hi Asha, your order A-123 is on its way.",
        "footer": "",
        "buttons": [
            {"type": "URL", "text": "Track"},
            {"type": "QUICK_REPLY", "text": "Stop updates"},
        ],
    }


def test_given_values_replace_the_examples_and_blank_ones_keep_the_example():
    preview = template_preview(
        demo("seasonal_promo/en_US"), {"body.1": "  Ravi ", "body.2": "", "body.9": "x"}
    )
    assert preview["body"] == "Hi Ravi, use code FALL25 for 20% off this week."


def test_named_text_header_footer_and_phone_button():
    assert template_preview(demo("welcome_named/en_US"), {"body.first_name": "Mei"}) == {
        "header": None,
        "body": "Welcome Mei! Your member id is M-1001.",
        "footer": "Reply STOP to opt out",
        "buttons": [],
    }
    event = template_preview(demo("event_reminder/en_US"), {"header.1": "Demo day"})
    assert event["header"] == {"format": "TEXT", "text": "Reminder: Demo day"}
    assert event["buttons"][1] == {"type": "PHONE_NUMBER", "text": "Call us"}


def test_a_variable_without_value_or_example_stays_as_written():
    preview = template_preview(template([{"type": "BODY", "text": "Hi {{1}} and {{2}}"}]))
    assert preview["body"] == "Hi {{1}} and {{2}}"
    assert template_preview(template([]))["body"] == ""


def test_the_include_shows_values_as_text_never_as_markup():
    bad = template(
        [
            {"type": "HEADER", "format": "TEXT", "text": "<b>{{1}}</b>"},
            {"type": "BODY", "text": "Hi {{1}}\nsecond line"},
            {"type": "FOOTER", "text": "<template>footer"},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "<i>Yes</i>"}]},
        ]
    )
    html = render_to_string(
        "templates_sync/_preview.html",
        {
            "preview": template_preview(
                bad, {"header.1": "x", "body.1": "<script>alert(1)</script>"}
            )
        },
    )
    assert "<script>" not in html and "<template>" not in html and "<b>" not in html
    assert "Hi &lt;script&gt;alert(1)&lt;/script&gt;<br>second line" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "&lt;template&gt;footer" in html
    assert "&lt;i&gt;Yes&lt;/i&gt;" in html
    assert "wac/preview.css" in html


def test_the_include_shows_a_placeholder_for_a_media_header_and_loads_no_media():
    html = render_to_string(
        "templates_sync/_preview.html", {"preview": template_preview(demo("order_update/en_US"))}
    )
    assert 'aria-label="Image header"' in html
    assert "example.invalid/h.jpg" not in html
    assert "Track" in html and "Stop updates" in html
