"""reelserve: a self-hosted text-to-video and image-to-video API with the Kling 3.0 contract."""

__version__ = "0.1.0"
