"""The EMS's domain types: what its services take and give, below HTTP.

The API's request and response bodies are these same types (so the OpenAPI document is
theirs); the services and the store import them from here, never from the routes.
"""

from pydantic import BaseModel, ConfigDict


class Body(BaseModel):
    """A body a client sends: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")
