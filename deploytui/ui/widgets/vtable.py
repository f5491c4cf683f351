"""VirtualTable: a table that renders only the visible rows and redraws only changed rows.

Textual's DataTable repaints every visible cell on any ``update_cell`` (35-45 ms at 200x50) and
blocks for about a second when 10,000 rows arrive at once. Panes here hold their data outside the
widget and hand it over as a list of frozen :class:`Row` values; :meth:`VirtualTable.set_rows`
compares them with what is shown and repaints only the lines that changed (nothing at all when
the data is equal), so a steady fleet writes nothing to the terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

__all__ = ["Column", "Row", "VirtualTable"]


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int = 0           # fixed width in cells; 0 = flexible (shares what is left)
    min_width: int = 4
    align: str = "left"      # left | right


@dataclass(frozen=True)
class Row:
    """One row. ``cells`` are strings or rich Text; ``style`` a rich style for the whole row."""

    key: str
    cells: tuple[str | Text, ...]
    style: str = ""


class VirtualTable(ScrollView, can_focus=True):
    """A read-only, keyboard-driven table over a list of rows held by the caller."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("enter", "select", "Details", show=True),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "vtable--header",
        "vtable--cursor",
        "vtable--cursor-blurred",
    }

    DEFAULT_CSS = """
    VirtualTable {
        height: 1fr;
        background: $surface;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
    }
    VirtualTable > .vtable--header {
        text-style: bold;
        color: $text-muted;
    }
    VirtualTable > .vtable--cursor {
        background: $primary 40%;
        text-style: bold;
    }
    VirtualTable > .vtable--cursor-blurred {
        background: $primary 15%;
    }
    VirtualTable.-no-cursor > .vtable--cursor, VirtualTable.-no-cursor > .vtable--cursor-blurred {
        background: transparent;
        text-style: none;
    }
    """

    cursor_row: reactive[int] = reactive(0, always_update=False, repaint=False)

    class RowHighlighted(Message):
        """The cursor moved to another row (``key`` is None when the table is empty)."""

        def __init__(self, table: VirtualTable, key: str | None) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> VirtualTable:
            return self.table

    class RowSelected(Message):
        """Enter was pressed on a row."""

        def __init__(self, table: VirtualTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> VirtualTable:
            return self.table

    def __init__(self, columns: Sequence[Column] = (), *, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._columns: tuple[Column, ...] = tuple(columns)
        self._rows: tuple[Row, ...] = ()
        self._index: dict[str, int] = {}
        self._widths: tuple[int, ...] = ()
        # index -> (row, is_cursor, focused, width, strip); rows may hold rich Text (unhashable),
        # so the cache is keyed by position and checked against the row by equality.
        self._line_cache: dict[int, tuple[Row, bool, bool, int, Strip]] = {}
        self._header_cache: Strip | None = None
        self.repaints = 0  # rows repainted by set_rows (tests and benchmarks read it)

    # --- data -------------------------------------------------------------------------------

    @property
    def rows(self) -> tuple[Row, ...]:
        return self._rows

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def cursor_key(self) -> str | None:
        if not self._rows:
            return None
        return self._rows[min(self.cursor_row, len(self._rows) - 1)].key

    def set_columns(self, columns: Sequence[Column]) -> None:
        columns = tuple(columns)
        if columns == self._columns:
            return
        self._columns = columns
        self._layout_columns()
        self.refresh()

    def set_rows(self, rows: Sequence[Row]) -> int:
        """Show ``rows``; repaint only the visible lines that changed. Returns that count.

        The cursor stays on the same row key when that row is still there.
        """
        new = tuple(rows)
        old = self._rows
        if new == old:
            return 0
        keep_key = self.cursor_key
        self._rows = new
        self._index = {row.key: i for i, row in enumerate(new)}
        if len(self._line_cache) > 4 * max(self.size.height, 50):
            self._line_cache.clear()  # bounded: only lines seen recently are worth keeping
        changed_rows = 0
        if len(new) != len(old):
            self.virtual_size = Size(self.size.width, len(new) + 1)
            changed_rows = len(new)
            self.refresh()
        else:
            top = int(self.scroll_y)
            visible = max(0, self.size.height - 1)
            lines = [offset for offset in range(min(visible, len(new) - top))
                     if new[top + offset] != old[top + offset]]
            changed_rows = len(lines)
            if changed_rows > visible // 2:
                self.refresh()  # rows moved: one repaint is cheaper than many line regions
            else:
                for offset in lines:
                    self.refresh(Region(0, offset + 1, self.size.width, 1))
        self.repaints += changed_rows
        target = self._index.get(keep_key, None) if keep_key is not None else None
        if target is not None and target != self.cursor_row:
            self._move_cursor(target, scroll=False)
        elif self.cursor_row >= len(new):
            self._move_cursor(max(0, len(new) - 1), scroll=False)
        elif keep_key is None or target is None:
            self.post_message(self.RowHighlighted(self, self.cursor_key))
        return changed_rows

    def move_to_key(self, key: str) -> bool:
        index = self._index.get(key)
        if index is None:
            return False
        self._move_cursor(index)
        return True

    # --- layout -----------------------------------------------------------------------------

    def on_resize(self) -> None:
        self._layout_columns()
        self.virtual_size = Size(self.size.width, len(self._rows) + 1)

    def _layout_columns(self) -> None:
        width = max(1, self.scrollable_content_region.width)
        gaps = max(0, len(self._columns) - 1)
        fixed = sum(c.width for c in self._columns if c.width)
        flex = [c for c in self._columns if not c.width]
        left = max(0, width - fixed - gaps)
        share = left // len(flex) if flex else 0
        widths = []
        extra = left - share * len(flex) if flex else 0
        for c in self._columns:
            if c.width:
                widths.append(c.width)
            else:
                w = share + (1 if extra > 0 else 0)
                extra -= 1
                widths.append(max(c.min_width, w))
        self._widths = tuple(widths)
        self._line_cache.clear()
        self._header_cache = None

    # --- rendering --------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if not self._widths:
            self._layout_columns()
        if y == 0:
            if self._header_cache is None or self._header_cache.cell_length != width:
                style = self.get_component_rich_style("vtable--header")
                cells = [Text(c.label, style=style) for c in self._columns]
                self._header_cache = self._strip(cells, style, width)
            return self._header_cache
        index = int(self.scroll_y) + y - 1
        if index >= len(self._rows):
            return Strip.blank(width, self.rich_style)
        row = self._rows[index]
        is_cursor = index == self.cursor_row
        focused = self.has_focus
        cached = self._line_cache.get(index)
        if (cached is not None and cached[1] == is_cursor and cached[2] == focused
                and cached[3] == width and (cached[0] is row or cached[0] == row)):
            return cached[4]
        base = self.rich_style + Style.parse(row.style) if row.style else self.rich_style
        if is_cursor:
            cls = "vtable--cursor" if self.has_focus else "vtable--cursor-blurred"
            base = base + self.get_component_rich_style(cls)
        cells = [c if isinstance(c, Text) else Text(str(c)) for c in row.cells]
        strip = self._strip(cells, base, width)
        self._line_cache[index] = (row, is_cursor, focused, width, strip)
        return strip

    def _strip(self, cells: list[Text], style: Style, width: int) -> Strip:
        segments: list[Segment] = []
        console = self.app.console
        for i, col in enumerate(self._columns):
            w = self._widths[i] if i < len(self._widths) else col.min_width
            text = cells[i].copy() if i < len(cells) else Text("")
            text.no_wrap = True
            text.overflow = "ellipsis"
            text.justify = "right" if col.align == "right" else "left"
            if text.cell_len > w:
                text.truncate(w, overflow="ellipsis")
            text.align(col.align if col.align in ("left", "right") else "left", w)
            segments.extend(text.render(console))
            if i < len(self._columns) - 1:
                segments.append(Segment(" "))
        strip = Strip(segments).crop_extend(0, width, None).apply_style(style)
        return strip.simplify()

    # --- cursor -----------------------------------------------------------------------------

    def _move_cursor(self, index: int, scroll: bool = True) -> None:
        if not self._rows:
            return
        index = max(0, min(index, len(self._rows) - 1))
        old = self.cursor_row
        self.cursor_row = index
        self._refresh_row(old)
        self._refresh_row(index)
        if scroll:
            self._scroll_to_cursor()
        self.post_message(self.RowHighlighted(self, self.cursor_key))

    def _refresh_row(self, index: int) -> None:
        y = index - int(self.scroll_y) + 1
        if 1 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def _scroll_to_cursor(self) -> None:
        visible = max(1, self.size.height - 1)
        top = int(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False)

    def on_focus(self) -> None:
        self._refresh_row(self.cursor_row)

    def on_blur(self) -> None:
        self._refresh_row(self.cursor_row)

    def action_cursor_up(self) -> None:
        self._move_cursor(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self._move_cursor(self.cursor_row + 1)

    def action_page_up(self) -> None:
        self._move_cursor(self.cursor_row - max(1, self.size.height - 2))

    def action_page_down(self) -> None:
        self._move_cursor(self.cursor_row + max(1, self.size.height - 2))

    def action_first(self) -> None:
        self._move_cursor(0)

    def action_last(self) -> None:
        self._move_cursor(len(self._rows) - 1)

    def action_select(self) -> None:
        key = self.cursor_key
        if key is not None:
            self.post_message(self.RowSelected(self, key))

    def on_click(self, event: object) -> None:
        y = getattr(event, "y", None)
        if isinstance(y, int) and y >= 1:
            self._move_cursor(int(self.scroll_y) + y - 1, scroll=False)
