"""The price table: credits per second of output video.

Credits are kept as integer millicredits (1 credit = 1000) so that holds,
captures and releases add up exactly.

| model | without audio | with audio |
| --- | --- | --- |
| kling-3-standard-text2video | 0.080 / s | 0.120 / s |
| kling-3-standard-image2video | 0.080 / s | 0.120 / s |
"""

from __future__ import annotations

from reelserve.catalog.params import JobParams

MILLICREDITS_PER_SECOND = {False: 80, True: 120}


def price_millicredits(params: JobParams) -> int:
    """What a job costs, held at submit and captured when it completes."""
    return params.duration * MILLICREDITS_PER_SECOND[params.generate_audio]
