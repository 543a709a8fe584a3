"""Training log: one CSV row per record, mirrored to TensorBoard when the `tensorboard` package is installed."""
import csv
import os
from typing import Dict, Optional


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it)
    except ImportError:
        return False
    return True


class RunLog:
    """Appends records to ``log_dir/log.csv``; a new key later in the run rewrites the header (the file is small)."""

    def __init__(self, log_dir: Optional[str], tensorboard: bool = True):
        self.path = os.path.join(log_dir, "log.csv") if log_dir else None
        self.rows = []
        self.columns = []
        self.writer = None
        if log_dir:
            os.makedirs(log_dir, exist_ok=True)
            if os.path.exists(self.path):  # resumed run: keep earlier rows
                with open(self.path, newline="") as f:
                    reader = csv.DictReader(f)
                    self.columns = list(reader.fieldnames or [])
                    self.rows = list(reader)
            if tensorboard and tensorboard_available():
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(log_dir)

    def log(self, step: int, values: Dict[str, float]) -> None:
        row = {"step": step, **values}
        self.rows.append(row)
        new_columns = [k for k in row if k not in self.columns]
        if self.path:
            if new_columns:
                self.columns += new_columns
                self._rewrite()
            else:
                with open(self.path, "a", newline="") as f:
                    csv.DictWriter(f, self.columns).writerow(row)
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    def _rewrite(self) -> None:
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, self.columns)
            writer.writeheader()
            writer.writerows(self.rows)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
