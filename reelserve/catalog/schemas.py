"""Request and response schemas, per direction, for the OpenAPI document and clients.

Validation itself is ``catalog.params.parse_submit`` (it names the field and
the rule in every message); these models describe the same shapes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Duration = Literal["3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15"]


class Segment(BaseModel):
    prompt: str = Field(max_length=512)
    duration: Duration | int = "5"


class ElementSpec(BaseModel):
    frontal_image_url: str | None = None
    reference_image_urls: list[str] = Field(default_factory=list, max_length=3)


class Text2VideoRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    prompt: str = Field(min_length=1, max_length=2500)
    negative_prompt: str = "blur, distort, and low quality"
    duration: Duration | int = "5"
    aspect_ratio: Literal["16:9", "9:16", "1:1"] = "16:9"
    cfg_scale: float = Field(0.5, ge=0, le=1)
    generate_audio: bool = True
    multi_prompt: list[Segment] | None = Field(None, max_length=5)
    shot_type: Literal["customize", "intelligent"] = "customize"
    voice_ids: list[str] | None = Field(None, max_length=2)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)


class Image2VideoRequest(Text2VideoRequest):
    start_image_url: str
    end_image_url: str | None = None
    elements: list[ElementSpec] | None = Field(None, max_length=3)


State = Literal["QUEUED", "PROCESSING", "COMPLETED", "FAILED"]


class ResponseBody(BaseModel):
    """What the API serves: exactly these fields (the fuzz run checks every answer)."""

    model_config = ConfigDict(extra="forbid")


class SubmitResponse(ResponseBody):
    request_id: str
    status_url: str
    response_url: str
    poll_url: str


class StatusBody(ResponseBody):
    request_id: str
    status: State
    progress: float = Field(0.0, ge=0, le=1)
    queue_position: int | None = Field(None, ge=1, description="while QUEUED; 1 runs next")
    error: str | None = Field(None, description="when FAILED")
    canceled: bool | None = Field(None, description="when FAILED: true if it was canceled")
    eta_seconds: float | None = Field(None, ge=0, description="seconds left, from the pace "
                                      "so far; null while queued or too early to tell")
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None


class ResultBody(StatusBody):
    """A COMPLETED request's output and metrics; otherwise its status body."""

    progress: float | None = Field(None, ge=0, le=1)  # type: ignore[assignment]
    output: str | None = None
    metrics: dict[str, Any] | None = None


class RequestItem(ResultBody):
    model: str
    prompt: str


class RequestList(ResponseBody):
    requests: list[RequestItem]


class WebhookLog(ResponseBody):
    request_id: str
    webhook_url: str | None
    deliveries: list[dict[str, Any]]


class WebhookSecret(ResponseBody):
    secret: str


class VoiceBody(ResponseBody):
    voice_id: str
    voice_name: str
    pitch_hz: float | None
    duration_s: float


class VoiceList(ResponseBody):
    voices: list[VoiceBody]


class HealthBody(ResponseBody):
    status: Literal["ok"]


class ReadyBody(ResponseBody):
    status: Literal["ready", "not ready"]
    error: str | None = None
    warnings: list[str] | None = Field(None, description="what the store found unsafe at "
                                       "startup, e.g. a Redis without AOF persistence")


class ErrorBody(BaseModel):
    error: str
    request_id: str | None = None
    status: Literal["FAILED"] | None = None
