"""Annotation quality and model assistance: task copies (gold, double-labelled) and model suggestions.

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``annotation_tasks.copy_kind`` and ``reference_task_id``, and ``label_features.suggestion``."""
    with op.batch_alter_table("annotation_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("copy_kind", sa.String(length=8), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("reference_task_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_annotation_tasks_reference_task_id"), ["reference_task_id"], unique=False)
        batch_op.create_foreign_key("fk_annotation_tasks_reference_task_id", "annotation_tasks",
                                    ["reference_task_id"], ["id"], ondelete="CASCADE")
    with op.batch_alter_table("label_features", schema=None) as batch_op:
        batch_op.add_column(sa.Column("suggestion", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    """Drop the columns again."""
    with op.batch_alter_table("label_features", schema=None) as batch_op:
        batch_op.drop_column("suggestion")
    with op.batch_alter_table("annotation_tasks", schema=None) as batch_op:
        batch_op.drop_constraint("fk_annotation_tasks_reference_task_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_annotation_tasks_reference_task_id"))
        batch_op.drop_column("reference_task_id")
        batch_op.drop_column("copy_kind")
