"""Our id in a send's ``biz_opaque_callback_data``, echoed back by Meta in status webhooks.

It lets a status webhook find its recipient even when the send's answer (and
so the wamid) was lost: that is how ``unknown`` outcomes get resolved.
"""

PREFIX = "recipient:"


def callback_data_for(recipient_id: int) -> str:
    return f"{PREFIX}{recipient_id}"


def recipient_id_from(callback_data: str | None) -> int | None:
    """The recipient id in ``callback_data``, or None when it is not one of ours."""
    if not callback_data or not callback_data.startswith(PREFIX):
        return None
    tail = callback_data[len(PREFIX) :]
    return int(tail) if tail.isdigit() else None
