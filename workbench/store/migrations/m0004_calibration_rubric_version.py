"""0004: which rubric version a calibration used; judge scores indexed by rubric version and judge model.

Calibrations of different rubric versions must not be compared as one, and the judge's joins filter on
(rubric_id, rubric_version, judge_model), which the trace index alone does not serve.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

NAME = "0004_calibration_rubric_version"


def upgrade(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE calibrations ADD COLUMN rubric_version INTEGER"))
    conn.execute(text("CREATE INDEX ix_judge_scores_rubric ON judge_scores (rubric_id, rubric_version, judge_model)"))
