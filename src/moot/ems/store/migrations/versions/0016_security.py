"""Security hardening (issue 13): throttles kept in the store.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03

`throttles` counts the attempts of one key (a user name, an address, a meeting and an
address) in its current window; an attempt is reserved by one conditional UPDATE, so
parallel attempts on any number of EMS nodes never exceed the limit.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "throttles",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
    )
    op.create_index("ix_throttles_window_start", "throttles", ["window_start"])


def downgrade() -> None:
    op.drop_index("ix_throttles_window_start", "throttles")
    op.drop_table("throttles")
