"""Celery tasks of the inbox, on the ``replies`` queue: never behind a campaign backlog."""

from celery import shared_task

from conversations import services


@shared_task(name="conversations.reply_deliver", queue="replies")
def reply_deliver(message_id: int) -> str:
    # Redelivered after a lost worker, it finds the message unknown (marked before the
    # call) and sends nothing: only a reply still queued is sent.
    return services.reply_deliver(message_id)


@shared_task(name="conversations.read_receipt_send", queue="replies")
def read_receipt_send(conversation_id: int, wamid: str, typing: bool = False) -> bool:
    return services.read_receipt_send(conversation_id, wamid, typing)
