"""Built-in demo data for the Graph API simulator, and loading a seed file instead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEMO_WABA_ID = "100000000000001"
DEMO_PHONE_NUMBER_IDS = ("200000000000001", "200000000000002")
DEMO_TOKEN = "demo-token"  # noqa: S105 - the simulator's public demo credential


def _template(
    template_id: str,
    name: str,
    language: str,
    category: str,
    components: list[dict[str, Any]],
    *,
    status: str = "APPROVED",
    parameter_format: str = "POSITIONAL",
) -> dict[str, Any]:
    return {
        "id": template_id,
        "name": name,
        "language": language,
        "status": status,
        "category": category,
        "parameter_format": parameter_format,
        "components": components,
    }


def demo_templates() -> list[dict[str, Any]]:
    """Templates covering every parameter shape the product sends, in several statuses."""
    body_2 = {
        "type": "BODY",
        "text": "Hi {{1}}, use code {{2}} for 20% off this week.",
        "example": {"body_text": [["Asha", "FALL25"]]},
    }
    return [
        _template("300000000000001", "seasonal_promo", "en_US", "MARKETING", [body_2]),
        _template(
            "300000000000002",
            "seasonal_promo",
            "es",
            "MARKETING",
            [
                {
                    "type": "BODY",
                    "text": "Hola {{1}}, usa el código {{2}} esta semana.",
                    "example": {"body_text": [["Asha", "FALL25"]]},
                }
            ],
        ),
        _template(
            "300000000000003",
            "welcome_named",
            "en_US",
            "MARKETING",
            [
                {
                    "type": "BODY",
                    "text": "Welcome {{first_name}}! Your member id is {{member_id}}.",
                    "example": {
                        "body_text_named_params": [
                            {"param_name": "first_name", "example": "Asha"},
                            {"param_name": "member_id", "example": "M-1001"},
                        ]
                    },
                },
                {"type": "FOOTER", "text": "Reply STOP to opt out"},
            ],
            parameter_format="NAMED",
        ),
        _template(
            "300000000000004",
            "order_update",
            "en_US",
            "UTILITY",
            [
                {
                    "type": "HEADER",
                    "format": "IMAGE",
                    "example": {"header_handle": ["https://example.invalid/h.jpg"]},
                },
                {
                    "type": "BODY",
                    "text": "Hi {{1}}, your order {{2}} is on its way.",
                    "example": {"body_text": [["Asha", "A-123"]]},
                },
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {
                            "type": "URL",
                            "text": "Track",
                            "url": "https://shop.example.invalid/{{1}}",
                            "example": ["https://shop.example.invalid/track/123"],
                        },
                        {"type": "QUICK_REPLY", "text": "Stop updates"},
                    ],
                },
            ],
        ),
        _template(
            "300000000000005",
            "event_reminder",
            "en_US",
            "UTILITY",
            [
                {
                    "type": "HEADER",
                    "format": "TEXT",
                    "text": "Reminder: {{1}}",
                    "example": {"header_text": ["Launch party"]},
                },
                {"type": "BODY", "text": "See you soon. Tap below if you cannot make it."},
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "QUICK_REPLY", "text": "Cannot come"},
                        {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+15550000000"},
                    ],
                },
            ],
        ),
        _template(
            "300000000000006",
            "hello_world",
            "en_US",
            "UTILITY",
            [{"type": "BODY", "text": "Hello from the simulator."}],
        ),
        _template(
            "300000000000007",
            "summer_sale",
            "en_US",
            "MARKETING",
            [body_2],
            status="PENDING",
        ),
        _template(
            "300000000000008",
            "crypto_giveaway",
            "en_US",
            "MARKETING",
            [body_2],
            status="REJECTED",
        ),
        _template(
            "300000000000009",
            "flash_sale",
            "en_US",
            "MARKETING",
            [body_2],
            status="PAUSED",
        ),
        _template(
            "300000000000010",
            "old_newsletter",
            "en_US",
            "MARKETING",
            [body_2],
            status="DISABLED",
        ),
    ]


def shape_templates() -> list[dict[str, Any]]:
    """One template of each richer shape Meta sends (not in the demo seed, whose template
    counts tests rely on; add them with SimulatorControl.upsert_templates)."""
    image_card = {
        "type": "HEADER",
        "format": "IMAGE",
        "example": {"header_handle": ["https://example.invalid/card.jpg"]},
    }
    return [
        _template(
            "300000000000101",
            "coupon_offer",
            "en_US",
            "MARKETING",
            [
                {
                    "type": "BODY",
                    "text": "Hi {{1}}, tap to copy your code.",
                    "example": {"body_text": [["Asha"]]},
                },
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "QUICK_REPLY", "text": "Stop promotions"},
                        {"type": "COPY_CODE", "example": "FALL25"},
                    ],
                },
            ],
        ),
        _template(
            "300000000000102",
            "flash_offer",
            "en_US",
            "MARKETING",
            [
                {
                    "type": "HEADER",
                    "format": "IMAGE",
                    "example": {"header_handle": ["https://example.invalid/sale.jpg"]},
                },
                {
                    "type": "LIMITED_TIME_OFFER",
                    "limited_time_offer": {"text": "Ends soon!", "has_expiration": True},
                },
                {
                    "type": "BODY",
                    "text": "Good news {{1}}! 30% off everything.",
                    "example": {"body_text": [["Asha"]]},
                },
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "COPY_CODE", "example": "FLASH30"},
                        {
                            "type": "URL",
                            "text": "Shop",
                            "url": "https://shop.example.invalid/{{1}}",
                            "example": ["https://shop.example.invalid/sale"],
                        },
                    ],
                },
            ],
        ),
        _template(
            "300000000000103",
            "summer_carousel",
            "en_US",
            "MARKETING",
            [
                {
                    "type": "BODY",
                    "text": "Hi {{1}}, our summer picks.",
                    "example": {"body_text": [["Asha"]]},
                },
                {
                    "type": "CAROUSEL",
                    "cards": [
                        {
                            "components": [
                                image_card,
                                {
                                    "type": "BODY",
                                    "text": "{{1}} for just {{2}}",
                                    "example": {"body_text": [["Sandals", "$20"]]},
                                },
                                {
                                    "type": "BUTTONS",
                                    "buttons": [
                                        {"type": "QUICK_REPLY", "text": "More like this"},
                                        {
                                            "type": "URL",
                                            "text": "Buy",
                                            "url": "https://shop.example.invalid/p/{{1}}",
                                            "example": ["https://shop.example.invalid/p/1"],
                                        },
                                    ],
                                },
                            ]
                        },
                        {
                            "components": [
                                {**image_card, "format": "VIDEO"},
                                {"type": "BODY", "text": "Hats, all sizes"},
                                {
                                    "type": "BUTTONS",
                                    "buttons": [
                                        {"type": "QUICK_REPLY", "text": "More like this"},
                                        {
                                            "type": "URL",
                                            "text": "Buy",
                                            "url": "https://shop.example.invalid/p/{{1}}",
                                            "example": ["https://shop.example.invalid/p/2"],
                                        },
                                    ],
                                },
                            ]
                        },
                    ],
                },
            ],
        ),
        _template(
            "300000000000104",
            "bundle_picks",
            "en_US",
            "MARKETING",
            [
                {"type": "HEADER", "format": "TEXT", "text": "Our bundles"},
                {
                    "type": "BODY",
                    "text": "Hi {{1}}, picked for you.",
                    "example": {"body_text": [["Asha"]]},
                },
                {"type": "BUTTONS", "buttons": [{"type": "MPM", "text": "View items"}]},
            ],
        ),
        _template(
            "300000000000105",
            "catalog_intro",
            "en_US",
            "MARKETING",
            [
                {"type": "BODY", "text": "Browse our catalog."},
                {"type": "BUTTONS", "buttons": [{"type": "CATALOG", "text": "View catalog"}]},
            ],
        ),
        _template(
            "300000000000106",
            "gif_hello",
            "en_US",
            "MARKETING",
            [
                {
                    "type": "HEADER",
                    "format": "GIF",
                    "example": {"header_handle": ["https://example.invalid/hi.gif"]},
                },
                {"type": "BODY", "text": "Hello {{1}}!", "example": {"body_text": [["Asha"]]}},
            ],
        ),
        _template(
            "300000000000107",
            "product_spotlight",
            "en_US",
            "MARKETING",
            [
                {"type": "HEADER", "format": "PRODUCT"},
                {"type": "BODY", "text": "Back in stock."},
                {"type": "BUTTONS", "buttons": [{"type": "SPM", "text": "View"}]},
            ],
        ),
        _template(
            "300000000000108",
            "invoice_ready",
            "en_US",
            "UTILITY",
            [
                {
                    "type": "HEADER",
                    "format": "DOCUMENT",
                    "example": {"header_handle": ["https://example.invalid/invoice.pdf"]},
                },
                {
                    "type": "BODY",
                    "text": "Your invoice {{1}} is attached.",
                    "example": {"body_text": [["INV-1"]]},
                },
            ],
        ),
        _template(
            "300000000000109",
            "survey_flow",
            "en_US",
            "MARKETING",
            [
                {"type": "BODY", "text": "Tell us how we did."},
                {
                    "type": "BUTTONS",
                    "buttons": [{"type": "FLOW", "text": "Start", "flow_id": "1234567890"}],
                },
            ],
        ),
        _template(
            "300000000000110",
            "login_code",
            "en_US",
            "AUTHENTICATION",
            [
                {"type": "BODY", "text": "{{1}} is your verification code."},
                {
                    "type": "BUTTONS",
                    "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy code"}],
                },
            ],
        ),
    ]


def demo_seed() -> dict[str, Any]:
    """The data served when no seed file is given (see the README's simulator section)."""
    return {
        "wabas": [
            {
                "id": DEMO_WABA_ID,
                "name": "Demo Business",
                "currency": "USD",
                "timezone_id": "1",
                "phone_numbers": [
                    {
                        "id": DEMO_PHONE_NUMBER_IDS[0],
                        "display_phone_number": "+1 555-000-0001",
                        "verified_name": "Demo Shop",
                        "quality_rating": "GREEN",
                        "code_verification_status": "VERIFIED",
                        "name_status": "APPROVED",
                        "throughput": {"level": "HIGH"},
                        "messaging_limit_tier": "TIER_100K",
                        "platform_type": "CLOUD_API",
                        "status": "CONNECTED",
                        "mps": 1000,
                    },
                    {
                        "id": DEMO_PHONE_NUMBER_IDS[1],
                        "display_phone_number": "+1 555-000-0002",
                        "verified_name": "Demo Shop Support",
                        "quality_rating": "YELLOW",
                        "code_verification_status": "VERIFIED",
                        "name_status": "APPROVED",
                        "throughput": {"level": "STANDARD"},
                        "messaging_limit_tier": "TIER_1K",
                        "platform_type": "CLOUD_API",
                        "status": "CONNECTED",
                        "mps": 80,
                    },
                ],
                "templates": demo_templates(),
            }
        ],
        "tokens": [{"token": DEMO_TOKEN}],
    }


def load_seed(path: str | Path | None) -> dict[str, Any]:
    """Return the seed file's data, or the demo data when `path` is None.

    A seed file has the demo data's shape: `wabas` (each with `phone_numbers` and
    `templates` in Graph's own format), `tokens` and an optional `faults` object.
    """
    if path is None:
        return demo_seed()
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict) or not isinstance(data.get("wabas"), list):
        raise ValueError(f"{path}: a seed needs a 'wabas' list")
    return data
