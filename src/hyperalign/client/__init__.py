"""A typed Python client for hyperalign's profiles API, sync (`ProfilesClient`) and async (`AsyncProfilesClient`), on
httpx. Requests and answers are the server's own pydantic models (hyperalign.service.schemas), so the types match
the service exactly; it imports neither FastAPI nor anything else of the server. Chat goes through the openai SDK,
pointed at the service's /v1."""

from ..service.schemas import (
    Delivery,
    DeliveryPage,
    DiffOut,
    EditIn,
    ExampleIn,
    ExamplesOut,
    ExportOut,
    Job,
    ProfileOut,
    ReviewLink,
    StoredExample,
    UserPage,
    VersionOut,
    WebhookCreated,
    WebhookList,
    WebhookOut,
)
from .client import (
    APIError,
    AsyncProfilesClient,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ProfilesClient,
    RateLimitError,
)

__all__ = [
    "APIError", "AsyncProfilesClient", "AuthenticationError", "ConflictError", "Delivery", "DeliveryPage", "DiffOut",
    "EditIn", "ExampleIn", "ExamplesOut", "ExportOut", "Job", "NotFoundError", "ProfileOut", "ProfilesClient",
    "RateLimitError", "ReviewLink", "StoredExample", "UserPage", "VersionOut", "WebhookCreated", "WebhookList",
    "WebhookOut",
]
