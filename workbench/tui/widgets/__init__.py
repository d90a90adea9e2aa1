"""Widgets of the triage app."""

from .queue_list import QueueHeader, QueueList

__all__ = ["QueueHeader", "QueueList"]
