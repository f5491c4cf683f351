"""VirtualTable: only changed visible rows repaint; rich Text cells work; the cursor follows keys."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult

from deploytui.ui.widgets.vtable import Column, Row, VirtualTable


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield VirtualTable([Column("name", "NAME", 10), Column("state", "STATE")], id="t")


def rows(n: int, changed: dict[int, str] | None = None) -> list[Row]:
    changed = changed or {}
    return [Row(f"k{i}", (f"svc{i}", Text(changed.get(i, "ok"), style="green"))) for i in range(n)]


async def test_equal_rows_repaint_nothing_and_one_change_repaints_one_row() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 20)) as pilot:
        table = app.query_one(VirtualTable)
        assert table.set_rows(rows(5000)) == 5000  # first arrival
        await pilot.pause()
        assert table.set_rows(rows(5000)) == 0     # a steady fleet: nothing to draw
        assert table.set_rows(rows(5000, {3: "down"})) == 1
        assert table.set_rows(rows(5000, {3: "down", 4000: "down"})) == 0  # row 4000 is off screen
        await pilot.pause()
        assert "down" in table.render_line(4).text  # header is line 0, row 3 is line 4


async def test_cursor_stays_on_the_same_key_when_rows_reorder() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 20)) as pilot:
        table = app.query_one(VirtualTable)
        table.set_rows(rows(10))
        table.focus()
        await pilot.press("down", "down")
        assert table.cursor_key == "k2"
        table.set_rows(list(reversed(rows(10))))
        await pilot.pause()
        assert table.cursor_key == "k2"
        await pilot.press("end")
        assert table.cursor_key == "k0"


class SelectApp(TableApp):
    selected: list[str]

    def on_virtual_table_row_selected(self, message: VirtualTable.RowSelected) -> None:
        self.selected.append(message.key)


async def test_enter_selects_the_cursor_row() -> None:
    app = SelectApp()
    app.selected = []
    async with app.run_test(size=(60, 20)) as pilot:
        table = app.query_one(VirtualTable)
        table.set_rows(rows(10))
        table.focus()
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.selected == ["k1"]
