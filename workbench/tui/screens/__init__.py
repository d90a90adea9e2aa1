"""Screens of the triage app: queue, detail, overview, and the modal dialogs."""

from .detail import DetailScreen
from .dialogs import ErrorScreen, FilterDialog, HelpScreen, TextDialog
from .overview import OverviewScreen
from .queue import QueueScreen

__all__ = ["DetailScreen", "ErrorScreen", "FilterDialog", "HelpScreen", "OverviewScreen", "QueueScreen", "TextDialog"]
