"""Progress bars: tqdm when it is installed, otherwise a small line printer with the same calling pattern."""
import sys
import time


class _LineProgress:
    """Prints `desc: n/total [elapsed, rate] postfix`; rewrites one line on a terminal, prints ~10 lines otherwise."""

    def __init__(self, total: int, desc: str, stream=sys.stderr):
        self.total, self.desc, self.stream = total, desc, stream
        self.count, self.postfix, self.start = 0, "", time.perf_counter()
        self.tty = stream.isatty()
        self._next_report = max(1, total // 10)

    def update(self, n: int = 1) -> None:
        self.count += n
        if self.tty or self.count >= self._next_report or self.count == self.total:
            self._next_report = self.count + max(1, self.total // 10)
            self._print(end="\r" if self.tty else "\n")

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def _print(self, end: str) -> None:
        elapsed = time.perf_counter() - self.start
        rate = self.count / elapsed if elapsed > 0 else 0.0
        self.stream.write(f"{self.desc}: {self.count}/{self.total} [{elapsed:.0f}s, {rate:.1f} it/s] {self.postfix}{end}")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self._print(end="\n")


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, enabled: bool = True, initial: int = 0):
    if not enabled:
        return _Silent()
    try:
        from tqdm import tqdm
    except ImportError:
        bar = _LineProgress(total, desc)
        bar.count = initial
        return bar
    return tqdm(total=total, desc=desc, initial=initial, leave=True, dynamic_ncols=True)
