"""Community statistics: each server sample counts community connections, sign-ins and
instant messages (never their text).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07

Room servers report their community connections, and the sign-ins and messages since their
previous report, in every status; the sampler keeps the highest connections and the sums
per interval in the row it already writes per server and minute.
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

COLUMNS = ("community_connections", "community_signins", "community_messages")


def upgrade() -> None:
    with op.batch_alter_table("server_samples") as table:
        for name in COLUMNS:
            table.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("server_samples") as table:
        for name in reversed(COLUMNS):
            table.drop_column(name)
