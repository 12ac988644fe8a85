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
