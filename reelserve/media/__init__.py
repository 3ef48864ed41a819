"""Media plumbing: fetching input images, encoding and muxing video and audio."""
