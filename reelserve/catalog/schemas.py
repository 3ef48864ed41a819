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


class SubmitResponse(BaseModel):
    request_id: str
    status_url: str
    response_url: str
    poll_url: str


class StatusBody(BaseModel):
    request_id: str
    status: Literal["QUEUED", "PROCESSING", "COMPLETED", "FAILED"]
    progress: float = 0.0
    queue_position: int | None = None
    # a QUEUED job that no live worker claims: "a worker for <slug>"
    waiting_for: str | None = None
    error: str | None = None


class ResultBody(BaseModel):
    request_id: str
    status: Literal["QUEUED", "PROCESSING", "COMPLETED", "FAILED"]
    output: str | None = None
    metrics: dict[str, Any] | None = None
    error: str | None = None


class ErrorBody(BaseModel):
    error: str
