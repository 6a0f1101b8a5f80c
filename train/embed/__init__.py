"""Copy-detection frame embedding: MoCo self-supervision on copy-disguise edits."""
