"""The upload-time service (`vq serve`): FastAPI app, durable job queue, one processor."""
