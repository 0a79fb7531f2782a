"""Progress display for xlt's long calls: the C++ library's progress events become tqdm bars
(in notebooks and terminals) and/or calls of a user callback."""

import sys


def _interactive():
    """True in a notebook or when stderr is a terminal (where bars are wanted by default)."""
    if "ipykernel" in sys.modules:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _tqdm():
    """tqdm's notebook widget where ipywidgets can draw it, else the text bar (tqdm.auto would
    warn in a notebook without ipywidgets)."""
    if "ipykernel" in sys.modules:
        try:
            import ipywidgets  # noqa: F401
            from tqdm.notebook import tqdm

            return tqdm
        except ImportError:
            pass
    from tqdm.std import tqdm

    return tqdm


class ProgressEvents:
    """Receives the C++ events (dicts: kind, id, label, unit, done, total, postfix) and shows one
    tqdm bar per C++ progress bar; forwards every event to `callback` when given."""

    def __init__(self, progress=None, callback=None):
        if progress is None:
            progress = _interactive()
        self.show = bool(progress)
        self.callback = callback
        self.bars = {}

    def __call__(self, event):
        if self.callback is not None:
            self.callback(dict(event))
        if self.show:
            self._show(event)

    def _show(self, event):
        bar = self.bars.get(event["id"])
        if bar is None:
            bar = _tqdm()(
                desc=event["label"],
                total=event["total"] or None,
                unit=" " + event["unit"] if event["unit"] else "it",
                leave=True,
                file=sys.stderr,
            )
            self.bars[event["id"]] = bar
        bar.n = event["done"]
        if event["postfix"]:
            bar.set_postfix_str(event["postfix"], refresh=False)
        if event["kind"] == "finish":
            bar.close()
            del self.bars[event["id"]]
        else:
            bar.refresh()

    def close(self):
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
