"""The before/after plot of a change: its worst-hit deployment's p99 and error % from a few
minutes before the change to a few minutes after, against seconds from the change (0)."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from console.changes.effect import Series


class ChangePlot(PlotextPlot):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.series: Series | None = None
        self.draws = 0

    @property
    def has_data(self) -> bool:
        return self.series is not None and any(v is not None for v in self.series.p99_ms)

    def show(self, series: Series | None, title: str) -> None:
        self.series = series
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if series is None or not self.has_data:
            plt.title(f"{title}: no numbers from around this change")
        else:
            plt.title(f"{title}: p99 ms, before | after")
            xs = [x for x, y in zip(series.at, series.p99_ms, strict=True) if y is not None]
            ys = [y for y in series.p99_ms if y is not None]
            # Two markers, not only two colours: readable without colour (NO_COLOR).
            plt.plot(xs, ys, label="p99 ms", color="red", marker="hd")
            errors = [(x, e) for x, e in zip(series.at, series.error_percent, strict=True) if e]
            if errors:
                plt.plot(
                    [x for x, _ in errors],
                    [e for _, e in errors],
                    label="5xx %",
                    color="orange",
                    marker="braille",
                )
            plt.vline(0.0, "white")
            plt.xlabel("seconds from the change")
        self.display = self.has_data  # no numbers: the detail beside it takes the width
        self.draws += 1
        self.refresh()
