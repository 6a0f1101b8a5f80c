"""Metrics by kind: `retrieval` (pairs, copied segments), `image` (PSNR-Y), `correlation`
(quality scores against labels)."""
