"""The key bar: the active screen's bindings on one line, like Textual's Footer, as a single widget.

Footer rebuilds one widget per key whenever the bindings change or a screen is shown again; with a
dozen keys that alone cost ~25 ms per screen switch here. This renders one Text instead.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget

__all__ = ["KeyBar"]


class KeyBar(Widget):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        background: $footer-background;
        color: $footer-foreground;
    }
    KeyBar > .keybar--key { color: $footer-key-foreground; text-style: bold; }
    KeyBar > .keybar--description { color: $footer-description-foreground; }
    KeyBar > .keybar--disabled { color: $text-disabled; }
    """
    COMPONENT_CLASSES = {"keybar--key", "keybar--description", "keybar--disabled"}

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _changed(self, _screen: Any) -> None:
        self.refresh()

    def render(self) -> Text:
        key_style = self.get_component_rich_style("keybar--key")
        description_style = self.get_component_rich_style("keybar--description")
        disabled_style = self.get_component_rich_style("keybar--disabled")
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        seen: set[str] = set()
        palette: Text | None = None
        active = self.screen.active_bindings
        for _node, binding, enabled, _tooltip in active.values():
            if binding.action == "app.command_palette" or binding.key == self.app.COMMAND_PALETTE_BINDING:
                palette = Text.assemble(
                    (f" {self.app.get_key_display(binding)} ", key_style), ("palette ", description_style)
                )
                continue
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            text.append(f" {self.app.get_key_display(binding)} ", disabled_style if not enabled else key_style)
            text.append(f"{binding.description} ", disabled_style if not enabled else description_style)
        if palette is not None and self.app.ENABLE_COMMAND_PALETTE:
            room = self.size.width - palette.cell_len
            if text.cell_len <= room:
                text.append(" " * (room - text.cell_len))
                text.append_text(palette)
        return text
